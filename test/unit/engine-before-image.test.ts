import {
  applyChange,
  backupChunkName,
  backupWrites,
  captureBeforeImage,
  changesNothing,
  IMAGE_CHUNK_BYTES,
  imageHash,
  matchesBeforeImage,
  readBackup,
  restoreWrite,
  type BackupRecord,
  type RawChange,
  widenBeforeImage,
} from '../../functions/src/engine/before-image';
import { fieldsAfterRestore } from '../../functions/src/engine/restore';
import { canonicalFields } from '../../functions/src/engine/wire/canonical';
import type { RawFields, RawValue } from '../../functions/src/engine/wire/types';

const int = (n: number | string): RawValue => ({ integerValue: String(n) });
const dbl = (n: number): RawValue => ({ doubleValue: n });
const str = (s: string): RawValue => ({ stringValue: s });
const map = (fields: RawFields): RawValue => ({ mapValue: { fields } });
const NAME = 'projects/p/databases/(default)/documents/c/d';
const UPDATE_TIME = { seconds: '100', nanos: 5000 };

const doc: RawFields = {
  price: dbl(1),
  'a.b': str('literal'),
  nested: map({ x: int(1), deep: map({ y: int('9007199254740993') }) }),
  flag: { booleanValue: true },
};
const patch = (...entries: Array<[string[], RawValue | undefined]>): RawChange => ({ kind: 'patch', entries: entries.map(([path, value]) => ({ path, value })) });

describe('before-image capture', () => {
  it('captures the raw prior value of each written path (a double 1.0 stays a double)', () => {
    const image = captureBeforeImage(doc, patch([['price'], str('1 EUR')], [['a.b'], undefined], [['nested', 'deep', 'y'], int(2)]));
    expect(image).toEqual({ mode: 'patch', values: { price: dbl(1), '`a.b`': str('literal'), 'nested.deep.y': int('9007199254740993') }, absent: [] });
    expect(image.values.price).toBe(doc.price);
  });

  it('records a missing path as absent at its highest missing ancestor, once', () => {
    const image = captureBeforeImage(doc, patch([['a', 'b'], int(1)], [['a', 'c', 'd'], int(2)], [['nested', 'new', 'z'], int(3)], [['schemaVersion'], str('2')]));
    expect(image.values).toEqual({});
    expect(image.absent).toEqual(['a', 'nested.new', 'schemaVersion']);
  });

  it('captures a non-map parent that a nested write replaces', () => {
    const image = captureBeforeImage(doc, patch([['flag', 'sub'], int(1)], [['price', 'currency'], undefined]));
    // Deleting under a non-map value changes nothing, but capturing it is harmless and exact.
    expect(image.values).toEqual({ flag: { booleanValue: true }, price: dbl(1) });
    expect(image.absent).toEqual([]);
  });

  it('takes the whole document for a replace', () => {
    const image = captureBeforeImage(doc, { kind: 'replace', fields: { only: int(1) } });
    expect(image).toEqual({ mode: 'replace', values: doc, absent: [] });
  });
});

describe('after state, hashes and matching', () => {
  const change = patch([['a', 'b'], int(1)], [['nested', 'x'], undefined], [['flag', 'sub'], str('s')], [['price'], str('p')]);
  const image = captureBeforeImage(doc, change);
  const after = applyChange(doc, change);

  it('applies a patch as Firestore does, without touching the input', () => {
    expect(after).toEqual({
      price: str('p'),
      'a.b': str('literal'),
      a: map({ b: int(1) }),
      nested: map({ deep: map({ y: int('9007199254740993') }) }),
      flag: map({ sub: str('s') }),
    });
    expect(doc.nested).toEqual(map({ x: int(1), deep: map({ y: int('9007199254740993') }) }));
  });

  it('hashes only the image paths: other fields may change without a conflict, migrated ones may not', () => {
    const hash = imageHash(after, image);
    expect(imageHash({ ...after, unrelated: int(5) }, image)).toBe(hash);
    expect(imageHash({ ...after, price: str('edited') }, image)).not.toBe(hash);
    expect(imageHash({ ...after, price: dbl(1) }, image)).not.toBe(hash);
    const { a: _a, ...withoutA } = after;
    expect(imageHash(withoutA, image)).not.toBe(hash);
  });

  it('matches a document holding its before-image at the captured paths, and nothing at absent ones', () => {
    expect(matchesBeforeImage(doc, image)).toBe(true);
    expect(matchesBeforeImage({ ...doc, unrelated: int(1) }, image)).toBe(true);
    expect(matchesBeforeImage(after, image)).toBe(false);
    expect(matchesBeforeImage({ ...doc, a: map({}) }, image)).toBe(false);
    expect(matchesBeforeImage({ ...doc, price: int(1) }, image)).toBe(false);
    const replaced = captureBeforeImage(doc, { kind: 'replace', fields: {} });
    expect(matchesBeforeImage({ ...doc }, replaced)).toBe(true);
    expect(matchesBeforeImage({ ...doc, extra: int(1) }, replaced)).toBe(false);
  });

  it('restores with a mask of exactly the captured paths (absent ones deleted) under an update-time precondition', () => {
    const write = restoreWrite(NAME, image, UPDATE_TIME);
    expect([...write.updateMask!.fieldPaths!].sort()).toEqual(['a', 'flag', 'nested.x', 'price']);
    expect(write.update!.fields).toEqual({ price: dbl(1), flag: { booleanValue: true }, nested: map({ x: int(1) }) });
    expect(write.currentDocument).toEqual({ updateTime: UPDATE_TIME });
    const whole = restoreWrite(NAME, captureBeforeImage(doc, { kind: 'replace', fields: {} }), UPDATE_TIME);
    expect(whole.updateMask).toBeUndefined();
    expect(whole.update!.fields).toBe(doc);
  });
});

describe('a run writing a document again: the earliest before-image, widened', () => {
  // The run's first write added `participants` and the marker; its second rewrites `participants`
  // and adds `skills` — and in between the app set `title`, which neither write touches.
  const original: RawFields = { title: str('Guitar'), participantId: str('bob'), price: dbl(1) };
  const first = patch([['participants'], map({ participant: { nullValue: 'NULL_VALUE' } })], [['schemaVersion'], str('2.0')]);
  const firstImage = captureBeforeImage(original, first);
  const between = { ...applyChange(original, first), title: str('Guitar lessons'), participantId: str('carol') };
  const second = patch([['participants', 'participant'], str('carol')], [['schemaVersion'], str('2.0')], [['skills'], str('s')], [['price'], int(2)]);

  it('keeps what the first write found and adds only the paths the second adds, at their values before it', () => {
    const widened = widenBeforeImage(firstImage, between, second);
    expect(widened).toEqual({ mode: 'patch', values: { price: dbl(1) }, absent: expect.arrayContaining(['participants', 'schemaVersion', 'skills']) });
    expect(widened.absent).toHaveLength(3);
    // Restoring it into the document after both writes gives the document before the run, the app's own edits kept.
    const afterBoth = applyChange(between, second);
    expect(imageHash(afterBoth, widened)).not.toBe(imageHash(between, widened));
    const restored = restoreWrite(NAME, widened, UPDATE_TIME);
    expect([...restored.updateMask!.fieldPaths!].sort()).toEqual(['participants', 'price', 'schemaVersion', 'skills']);
    expect(restored.update!.fields).toEqual({ price: dbl(1) });
    const restoredDocument = fieldsAfterRestore(afterBoth, widened);
    expect(restoredDocument).toEqual({ title: str('Guitar lessons'), participantId: str('carol'), price: dbl(1) });
    expect(matchesBeforeImage(restoredDocument, widened)).toBe(true);
  });

  it('keeps an earlier whole-document image, and makes a later replace one of the document before the run', () => {
    const whole = captureBeforeImage(original, { kind: 'replace', fields: { only: int(1) } });
    expect(widenBeforeImage(whole, between, second)).toBe(whole);
    expect(widenBeforeImage(firstImage, between, { kind: 'replace', fields: { only: int(1) } })).toEqual({
      mode: 'replace',
      values: { title: str('Guitar lessons'), participantId: str('carol'), price: dbl(1) },
      absent: [],
    });
  });

  it('tells a change that leaves every value as it is (a double 1.0 rewritten as the integer 1 is a change)', () => {
    expect(changesNothing(between, patch([['title'], str('Guitar lessons')], [['participants'], map({ participant: { nullValue: 'NULL_VALUE' } })]))).toBe(true);
    expect(changesNothing(between, patch([['title'], str('Guitar')]))).toBe(false);
    expect(changesNothing(between, patch([['price'], int(1)]))).toBe(false);
    expect(changesNothing(between, patch([['missing'], undefined]))).toBe(true);
  });
});

describe('backup documents', () => {
  const record = (values: RawFields, mode: 'patch' | 'replace' = 'patch'): BackupRecord => ({
    path: 'c/d',
    image: { mode, values, absent: mode === 'patch' ? ['a', '`x.y`'] : [] },
    beforeUpdateTime: UPDATE_TIME,
    afterHash: 'abc',
    migrationId: 'm',
    runId: 'r',
  });

  it('stores a small record inline as ONE bytes field beside the path (two index entries, both named by the exemptions)', () => {
    const { writes, bytes } = backupWrites(`${NAME}-backup`, record(doc));
    expect(writes).toHaveLength(1);
    const fields = writes[0].update!.fields as RawFields;
    expect(Object.keys(fields).sort()).toEqual(['image', 'path']);
    expect(fields.path).toEqual(str('c/d'));
    expect(fields.image.bytesValue!.length).toBe(bytes);
    expect(writes[0].currentDocument).toBeUndefined();
    const back = readBackup(fields);
    expect(back.image.mode).toBe('patch');
    expect(back.image.absent).toEqual(['a', '`x.y`']);
    expect(canonicalFields(back.image.values)).toBe(canonicalFields(doc));
    expect(back).toMatchObject({ path: 'c/d', afterHash: 'abc', migrationId: 'm', runId: 'r', beforeUpdateTime: UPDATE_TIME });
  });

  it('keeps an empty image and refuses a document that holds no backup record', () => {
    const back = readBackup(backupWrites('b', record({}, 'replace')).writes[0].update!.fields as RawFields);
    expect(back.image).toEqual({ mode: 'replace', values: {}, absent: [] });
    expect(() => readBackup({ path: str('c/d') })).toThrow('not a backup document');
    expect(() => readBackup({ path: str('c/d'), image: { bytesValue: Buffer.from([0xff, 0xff, 0xff]) } })).toThrow('damaged');
  });

  it('splits an image too large for one document into chunk documents and reassembles it', () => {
    const large: RawFields = { blob: str('z'.repeat(IMAGE_CHUNK_BYTES * 2 + 10)), d: dbl(1) };
    const { writes } = backupWrites('base', record(large, 'replace'));
    expect(writes.map((write) => write.update!.name)).toEqual(['base', backupChunkName('base', 0), backupChunkName('base', 1), backupChunkName('base', 2)]);
    expect(backupChunkName('base', 1)).toBe('base/backupChunks/0001');
    const main = writes[0].update!.fields as RawFields;
    expect(main.image).toBeUndefined();
    expect(main.chunks).toEqual({ integerValue: '3' });
    const chunks = writes.slice(1).map((write) => write.update!.fields as RawFields);
    for (const chunk of chunks) expect(chunk.image.bytesValue!.length).toBeLessThanOrEqual(IMAGE_CHUNK_BYTES);
    const back = readBackup(main, chunks);
    expect(back.image.mode).toBe('replace');
    expect(canonicalFields(back.image.values)).toBe(canonicalFields(large));
    expect(() => readBackup(main, chunks.slice(0, 2))).toThrow('has 3 chunks, 2 given');
    expect(() => readBackup(main, [chunks[0], chunks[1], chunks[1]])).toThrow('damaged');
  });
});
