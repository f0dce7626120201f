import { FieldPath, FieldValue, Firestore, GeoPoint, Timestamp, VectorValue } from '@google-cloud/firestore';
import {
  applyChange,
  normalizeTransformResult,
  patchPaths,
  replaceDocument,
  skip,
  TransformResultError,
  type NormalizedChange,
} from '../../functions/src/definitions';

const normalize = (result: unknown) => normalizeTransformResult(result, { transform: 'up' });

function refusal(result: unknown): TransformResultError {
  try {
    normalize(result);
  } catch (error) {
    if (error instanceof TransformResultError) return error;
    throw error;
  }
  throw new Error('normalizeTransformResult accepted the result');
}

describe('normalizeTransformResult', () => {
  it('turns a plain object into top-level entries with literal keys', () => {
    expect(normalize({ title: 'x', 'a.b': 1, legacy: FieldValue.delete(), nested: { deep: [1, { k: null }] } })).toEqual({
      kind: 'patch',
      entries: [
        { path: ['title'], value: 'x', delete: false },
        { path: ['a.b'], value: 1, delete: false },
        { path: ['legacy'], value: undefined, delete: true },
        { path: ['nested'], value: { deep: [1, { k: null }] }, delete: false },
      ],
    });
  });

  it('keeps nested literal paths of patchPaths, also from a FieldPath', () => {
    expect(
      normalize(
        patchPaths([
          [['participants', 'creator'], 'u1'],
          [new FieldPath('meta', 'x.y'), 2],
          [['legacy', 'old'], FieldValue.delete()],
        ]),
      ),
    ).toEqual({
      kind: 'patch',
      entries: [
        { path: ['participants', 'creator'], value: 'u1', delete: false },
        { path: ['meta', 'x.y'], value: 2, delete: false },
        { path: ['legacy', 'old'], value: undefined, delete: true },
      ],
    });
  });

  it('passes skip and replace through', () => {
    expect(normalize(skip('already fine'))).toEqual({ kind: 'skip', reason: 'already fine' });
    expect(normalize(replaceDocument({ a: 1, b: { c: [true] } }))).toEqual({ kind: 'replace', data: { a: 1, b: { c: [true] } } });
  });

  it('accepts every Firestore value type, turning a Date into a Timestamp', () => {
    const db = new Firestore({ projectId: 'demo-normalize' });
    const ref = db.doc('users/u1');
    const at = Timestamp.fromMillis(1_700_000_000_123);
    const point = new GeoPoint(52.5, 13.4);
    const vector = FieldValue.vector([1, 2]);
    const change = normalize({
      at,
      when: new Date(1_700_000_000_123),
      point,
      ref,
      vector,
      bytes: Buffer.from([1, 2]),
      raw: new Uint8Array([3]),
      big: 2n ** 64n,
      nan: NaN,
      nothing: null,
      inside: { list: [at, { ref }] },
    }) as Extract<NormalizedChange, { kind: 'patch' }>;
    const value = Object.fromEntries(change.entries.map((entry) => [entry.path[0], entry.value]));

    expect(value.at).toBe(at);
    expect(value.when).toBeInstanceOf(Timestamp);
    expect((value.when as Timestamp).isEqual(at)).toBe(true);
    expect(value.point).toBe(point);
    expect(value.ref).toBe(ref);
    expect(value.vector).toBeInstanceOf(VectorValue);
    expect((value.vector as VectorValue).toArray()).toEqual([1, 2]);
    expect(Buffer.from(value.bytes as Uint8Array)).toEqual(Buffer.from([1, 2]));
    expect(Buffer.from(value.raw as Uint8Array)).toEqual(Buffer.from([3]));
    expect(value.big).toBe(18446744073709551616n);
    expect(value.nan).toBeNaN();
    expect(value.nothing).toBeNull();
    expect(value.inside).toEqual({ list: [at, { ref }] });
  });

  it('copies values, so a result that shares objects with the input cannot alias it', () => {
    const skills = [{ name: 'js' }];
    const change = normalize({ skills }) as Extract<NormalizedChange, { kind: 'patch' }>;
    skills[0].name = 'changed';
    expect(change.entries[0].value).toEqual([{ name: 'js' }]);
  });

  it.each<[string, () => unknown, string]>([
    ['serverTimestamp', () => ({ meta: { updatedAt: FieldValue.serverTimestamp() } }), 'up() result at meta.updatedAt: FieldValue.serverTimestamp() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly'],
    ['increment', () => ({ count: FieldValue.increment(1) }), 'up() result at count: FieldValue.increment() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly'],
    ['arrayUnion', () => patchPaths([[['a', 'b.c'], FieldValue.arrayUnion('x')]]), 'up() result at a.`b.c`: FieldValue.arrayUnion() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly'],
    ['arrayRemove in a list', () => ({ tags: [FieldValue.arrayRemove('x')] }), 'up() result at tags[0]: FieldValue.arrayRemove() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly'],
    ['a sentinel in a replacement', () => replaceDocument({ at: FieldValue.serverTimestamp() }), 'up() result at at: FieldValue.serverTimestamp() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly'],
    ['delete inside a map', () => ({ meta: { old: FieldValue.delete() } }), 'up() result at meta.old: FieldValue.delete() is only allowed as a whole field entry, not inside a map or array value; delete the nested path with patchPaths([[path, FieldValue.delete()]])'],
    ['delete inside a list', () => ({ list: [FieldValue.delete()] }), 'up() result at list[0]: FieldValue.delete() is only allowed as a whole field entry, not inside a map or array value; delete the nested path with patchPaths([[path, FieldValue.delete()]])'],
    ['undefined', () => ({ a: { b: undefined } }), 'up() result at a.b: undefined is not a Firestore value; leave the field out, or remove it with FieldValue.delete()'],
    ['a function', () => ({ fn: () => 1 }), 'up() result at fn: a function is not a Firestore value'],
    ['a symbol', () => ({ s: Symbol('x') }), 'up() result at s: a symbol is not a Firestore value'],
    ['a Map', () => ({ m: new Map() }), 'up() result at m: a Map instance is not a Firestore value'],
    ['a class instance', () => ({ skill: new (class Skill {})() }), 'up() result at skill: a Skill instance is not a Firestore value'],
    ['an invalid Date', () => ({ when: new Date('nope') }), 'up() result at when: an invalid Date is not a Firestore value'],
    ['nested arrays', () => ({ grid: [[1]] }), 'up() result at grid[0]: Firestore does not store arrays directly inside arrays; wrap the inner array in a map'],
    ['an empty field name', () => ({ meta: { '': 1 } }), 'up() result at meta: a field name must not be empty'],
    ['overlapping patch paths', () => patchPaths([[['a'], { b: 1 }], [['a', 'b'], 2]]), 'up() result at a.b: overlaps the patch entry a, which already sets the whole map; write either the map or its nested fields'],
    ['a path written twice', () => patchPaths([[['a', 'b'], 1], [['a', 'b'], 2]]), 'up() result at a.b: this field is written by two patch entries'],
    ['an empty patch path', () => patchPaths([[[], 1]]), 'up() result: a patch path must be a non-empty array of non-empty field names'],
    ['an empty segment', () => patchPaths([[['a', ''], 1]]), 'up() result: a patch path must be a non-empty array of non-empty field names'],
    ['undefined as the result', () => undefined, 'up() result: undefined is not a result; return a plain object of fields, patchPaths(...), replaceDocument(...) or skip(reason)'],
    ['null as the result', () => null, 'up() result: null is not a result; return a plain object of fields, patchPaths(...), replaceDocument(...) or skip(reason)'],
    ['an array as the result', () => [1], 'up() result: an array is not a result; return a plain object of fields, patchPaths(...), replaceDocument(...) or skip(reason)'],
    ['a Promise as the result', () => Promise.resolve({}), 'up() result: a Promise (transforms must be synchronous) is not a result; return a plain object of fields, patchPaths(...), replaceDocument(...) or skip(reason)'],
    ['a class instance as the result', () => new Map(), 'up() result: a Map instance is not a result; return a plain object of fields, patchPaths(...), replaceDocument(...) or skip(reason)'],
    ['a replacement that is not an object', () => replaceDocument([] as never), 'up() result: replaceDocument() needs a plain object, got an array'],
  ])('refuses %s, naming the field', (_what, build, message) => {
    const error = refusal(build());
    expect(error.message).toBe(message);
    expect(error.transform).toBe('up');
  });

  it('names the transform that produced the result', () => {
    expect(() => normalizeTransformResult({ a: undefined }, { transform: 'down' })).toThrow(
      'down() result at a: undefined is not a Firestore value; leave the field out, or remove it with FieldValue.delete()',
    );
  });

  it('sees FieldValue.delete() from another copy of the SDK as a delete, and its other sentinels as sentinels', () => {
    // Another copy (an app's own firebase-admin) has other classes with the same names and methods.
    class DeleteTransform {
      get methodName() {
        return 'FieldValue.delete';
      }
    }
    class ServerTimestampTransform {
      get methodName() {
        return 'FieldValue.serverTimestamp';
      }
    }
    expect(normalize({ old: new DeleteTransform() })).toEqual({ kind: 'patch', entries: [{ path: ['old'], value: undefined, delete: true }] });
    expect(refusal({ at: new ServerTimestampTransform() }).message).toBe(
      'up() result at at: FieldValue.serverTimestamp() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly',
    );
    // A map that happens to have a field named methodName is data.
    expect(normalize({ meta: { methodName: 'FieldValue.delete' } })).toEqual({
      kind: 'patch',
      entries: [{ path: ['meta'], value: { methodName: 'FieldValue.delete' }, delete: false }],
    });
  });
});

describe('applyChange', () => {
  const doc = () => ({ name: 'n', meta: { a: 1, b: { c: 2 } }, tags: ['x'], label: 'plain' });

  it('sets, creates nested maps, replaces a non-map in the way and deletes, leaving the input untouched', () => {
    const before = doc();
    const after = applyChange(before, {
      kind: 'patch',
      entries: [
        { path: ['title'], value: { t: 1 }, delete: false },
        { path: ['meta', 'b', 'c'], value: 3, delete: false },
        { path: ['fresh', 'x', 'y'], value: true, delete: false },
        { path: ['label', 'inner'], value: 1, delete: false },
        { path: ['name'], value: undefined, delete: true },
        { path: ['meta', 'a'], value: undefined, delete: true },
      ],
    });
    expect(after).toEqual({ meta: { b: { c: 3 } }, tags: ['x'], label: { inner: 1 }, title: { t: 1 }, fresh: { x: { y: true } } });
    expect(before).toEqual(doc());
    expect(after.tags).not.toBe(before.tags);
  });

  it('deletes a missing path without creating its parents', () => {
    const after = applyChange(doc(), {
      kind: 'patch',
      entries: [
        { path: ['missing', 'deep'], value: undefined, delete: true },
        { path: ['label', 'inner'], value: undefined, delete: true },
      ],
    });
    expect(after).toEqual(doc());
  });

  it('replaces the whole document, and leaves it as it is on skip', () => {
    const data = { only: { one: 1 } };
    const replaced = applyChange(doc(), { kind: 'replace', data });
    expect(replaced).toEqual({ only: { one: 1 } });
    expect(replaced.only).not.toBe(data.only);
    expect(applyChange(doc(), { kind: 'skip', reason: 'x' })).toEqual(doc());
  });
});
