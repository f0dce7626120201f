import { FieldValue } from '@google-cloud/firestore';
import { z } from 'zod';
import {
  classifyDocument,
  defineMigration,
  FAILURE_SEVERITY,
  patchPaths,
  replaceDocument,
  skip,
  TransformError,
  type Classification,
  type DocData,
  type Transform,
} from '../../functions/src/definitions';

const Skill = z.object({ id: z.string(), name: z.string(), level: z.enum(['beginner', 'intermediate', 'advanced', 'expert']) });
const LegacyTrade = z.object({
  creatorId: z.string(),
  participantId: z.string().nullable().optional(),
  offeredSkills: z.array(z.union([z.string(), z.object({ name: z.string() })])),
  title: z.string().min(3).optional(),
});
const TradeV2 = z.object({
  participants: z.object({ creator: z.string(), participant: z.string().nullable() }),
  skillsOffered: z.array(Skill),
  schemaVersion: z.literal('2.0'),
});

const tradesUp: Transform = (doc) => {
  if (doc.status === 'archived') return skip('archived trades are left alone');
  const skills = doc.offeredSkills as Array<string | { name: string }>;
  return {
    participants: { creator: doc.creatorId, participant: doc.participantId ?? null },
    skillsOffered: skills.map((s) => (typeof s === 'string' ? { id: s, name: s, level: 'intermediate' } : { id: s.name, name: s.name, level: 'intermediate' })),
  };
};

const trades = (up: Transform = tradesUp, to: z.ZodType = TradeV2) =>
  defineMigration({
    id: 'trades-v2',
    version: '2.0',
    description: 'TradeYa trades to v2',
    target: { collection: 'trades' },
    marker: { field: 'schemaVersion', from: null, to: '2.0' },
    from: LegacyTrade,
    to,
    up,
  });

const ctx = { path: 'trades/t1', id: 't1' };
const legacy = (): DocData => ({ creatorId: 'alice-7', participantId: null, offeredSkills: ['guitar', { name: 'cooking' }], status: 'open' });
const classify = (doc: DocData, up?: Transform, validate = true, to?: z.ZodType) => classifyDocument(trades(up, to), doc, ctx, { validate });

function failureOf(classification: Classification) {
  if (classification.outcome !== 'fail') throw new Error(`expected a failure, got ${classification.outcome}`);
  return classification.failure;
}

describe('classifyDocument', () => {
  it('migrates a legacy document: the change carries the marker and after is the written document', () => {
    const doc = legacy();
    expect(classify(doc)).toEqual({
      outcome: 'migrate',
      change: {
        kind: 'patch',
        entries: [
          { path: ['participants'], value: { creator: 'alice-7', participant: null }, delete: false },
          {
            path: ['skillsOffered'],
            value: [
              { id: 'guitar', name: 'guitar', level: 'intermediate' },
              { id: 'cooking', name: 'cooking', level: 'intermediate' },
            ],
            delete: false,
          },
          { path: ['schemaVersion'], value: '2.0', delete: false },
        ],
      },
      after: {
        creatorId: 'alice-7',
        participantId: null,
        offeredSkills: ['guitar', { name: 'cooking' }],
        status: 'open',
        participants: { creator: 'alice-7', participant: null },
        skillsOffered: [
          { id: 'guitar', name: 'guitar', level: 'intermediate' },
          { id: 'cooking', name: 'cooking', level: 'intermediate' },
        ],
        schemaVersion: '2.0',
      },
    });
    expect(doc).toEqual(legacy());
  });

  it('leaves a document whose marker is already the target alone, without parsing it', () => {
    expect(classify({ schemaVersion: '2.0', anything: 'at all' })).toEqual({ outcome: 'already-at-target' });
  });

  it('derives a document at the target version again when asked (rederive): every new-shape field, or only the named ones', () => {
    const skillsOffered = [{ id: 'guitar', name: 'guitar', level: 'intermediate' }, { id: 'cooking', name: 'cooking', level: 'intermediate' }];
    const edited = { ...legacy(), participantId: 'bob-2', participants: { creator: 'alice-7', participant: null }, skillsOffered, schemaVersion: '2.0' };
    const entriesOf = (classification: Classification) => {
      if (classification.outcome !== 'migrate' || classification.change.kind !== 'patch') throw new Error(`expected a patch, got ${classification.outcome}`);
      return classification.change.entries.map((entry) => [entry.path.join('.'), entry.value]);
    };
    const all = classifyDocument(trades(), edited, ctx, { validate: true, rederive: true });
    expect(entriesOf(all)).toEqual([
      ['participants', { creator: 'alice-7', participant: 'bob-2' }],
      ['skillsOffered', skillsOffered],
      ['schemaVersion', '2.0'],
    ]);
    expect(all.outcome === 'migrate' && all.after.participants).toEqual({ creator: 'alice-7', participant: 'bob-2' });
    const only = classifyDocument(trades(), edited, ctx, { validate: true, rederive: { only: ['participants'] } });
    expect(entriesOf(only)).toEqual([
      ['participants', { creator: 'alice-7', participant: 'bob-2' }],
      ['schemaVersion', '2.0'],
    ]);
    // `only` narrows a re-derive, never the migration of a document in the old shape.
    expect(entriesOf(classifyDocument(trades(), legacy(), ctx, { validate: true, rederive: { only: ['participants'] } })).map(([path]) => path)).toEqual(['participants', 'skillsOffered', 'schemaVersion']);
  });

  it('treats any other marker value as the old shape', () => {
    expect(classify({ ...legacy(), schemaVersion: '1.5' }).outcome).toBe('migrate');
  });

  it('reports a document that does not match `from` with paths and codes, never its values', () => {
    const failure = failureOf(classify({ participantId: 'bob-secret', offeredSkills: 'guitar-secret', title: 'ab' }));
    expect(failure).toEqual({
      errorClass: 'invalid-source',
      severity: 'medium',
      message:
        'does not match the source schema: creatorId: invalid_type (expected string, got nothing (missing)); ' +
        'offeredSkills: invalid_type (expected array, got string); title: too_small (string minimum 3)',
    });
    expect(failure.message).not.toMatch(/secret|ab\b/);
  });

  it('describes union, enum and unknown-key issues structurally', () => {
    const strictFrom = z.strictObject({ kind: z.enum(['a', 'b']), value: z.union([z.string(), z.number()]) });
    const migration = defineMigration({ ...trades(), from: strictFrom });
    const failure = failureOf(classifyDocument(migration, { kind: 'c-secret', value: true, 'extra.key': 1 }, ctx, { validate: true }));
    expect(failure.message).toBe(
      'does not match the source schema: kind: invalid_value (expected "a" | "b"); value: invalid_union (no alternative matched); (document): unrecognized_keys (`extra.key`)',
    );
  });

  it('records only the class and location of an error thrown by up(), since its message may quote values', () => {
    const failure = failureOf(
      classify(legacy(), (doc) => {
        throw new RangeError(`cannot parse ${String(doc.creatorId)}`);
      }),
    );
    expect(failure.errorClass).toBe('transform-error');
    expect(failure.severity).toBe('high');
    expect(failure.message).toMatch(
      /^up\(\) threw RangeError at test\/unit\/definitions\.classify\.test\.ts:\d+:\d+ \(message not recorded: it may contain document values; throw TransformError for a recorded message\)$/,
    );
    expect(failure.message).not.toContain('alice');
  });

  it('records the message of a TransformError, which the transform author writes for the record', () => {
    const text = `offeredSkills has an entry without a name ${'.'.repeat(300)}`;
    const failure = failureOf(
      classify(legacy(), () => {
        throw new TransformError(text);
      }),
    );
    expect(failure.errorClass).toBe('transform-error');
    expect(failure.message).toBe(`up() rejected the document: ${text.slice(0, 199)}…`);
    const short = failureOf(
      classify(legacy(), () => {
        throw new TransformError('short');
      }),
    );
    expect(short.message).toBe('up() rejected the document: short');
  });

  it('names a thrown non-Error value by its type', () => {
    const failure = failureOf(
      classify(legacy(), () => {
        throw 'alice-7 is broken';
      }),
    );
    expect(failure.message).toBe(
      'up() threw a string (not an Error) (message not recorded: it may contain document values; throw TransformError for a recorded message)',
    );
  });

  it('reports a result that cannot be written as invalid-result', () => {
    const failure = failureOf(classify(legacy(), () => ({ updatedAt: FieldValue.serverTimestamp() })));
    expect(failure).toEqual({
      errorClass: 'invalid-result',
      severity: 'high',
      message:
        'up() result at updatedAt: FieldValue.serverTimestamp() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly',
    });
  });

  it('validates the written document against `to` only when validation is enabled', () => {
    const badUp: Transform = (doc) => ({ participants: { creator: doc.creatorId } });
    expect(failureOf(classify(legacy(), badUp, true))).toEqual({
      errorClass: 'invalid-result',
      severity: 'high',
      message:
        'the migrated document does not match the target schema: participants.participant: invalid_type (expected string, got nothing (missing)); ' +
        'skillsOffered: invalid_type (expected array, got nothing (missing))',
    });
    const unvalidated = classify(legacy(), badUp, false);
    expect(unvalidated.outcome).toBe('migrate');
    expect(unvalidated.outcome === 'migrate' && unvalidated.after.participants).toEqual({ creator: 'alice-7' });
  });

  it('passes a skip through with its reason', () => {
    expect(classify({ ...legacy(), status: 'archived' })).toEqual({ outcome: 'skip', reason: 'archived trades are left alone' });
  });

  it('adds the marker to a replacement, and validates the replacement as the whole document', () => {
    const up: Transform = (doc) =>
      replaceDocument({ participants: { creator: doc.creatorId, participant: null }, skillsOffered: [] });
    expect(classify(legacy(), up)).toEqual({
      outcome: 'migrate',
      change: { kind: 'replace', data: { participants: { creator: 'alice-7', participant: null }, skillsOffered: [], schemaVersion: '2.0' } },
      after: { participants: { creator: 'alice-7', participant: null }, skillsOffered: [], schemaVersion: '2.0' },
    });
  });

  it('lets up() set the marker to its target value, and refuses any other write to the marker', () => {
    const setsTarget = classify(legacy(), (doc) => ({ ...(tradesUp(doc, ctx) as DocData), schemaVersion: '2.0' }));
    expect(setsTarget.outcome === 'migrate' && setsTarget.change).toEqual({
      kind: 'patch',
      entries: [
        expect.objectContaining({ path: ['participants'] }),
        expect.objectContaining({ path: ['skillsOffered'] }),
        { path: ['schemaVersion'], value: '2.0', delete: false },
      ],
    });
    const suffix = '; the engine writes the version marker "2.0" itself';
    expect(failureOf(classify(legacy(), () => ({ schemaVersion: '3.0' }))).message).toBe(
      `up() result at schemaVersion: sets the version marker field to another value${suffix}`,
    );
    expect(failureOf(classify(legacy(), () => ({ schemaVersion: FieldValue.delete() }))).message).toBe(
      `up() result at schemaVersion: sets the version marker field to another value${suffix}`,
    );
    expect(failureOf(classify(legacy(), () => patchPaths([[['schemaVersion', 'major'], 2]]))).message).toBe(
      `up() result at schemaVersion: writes inside the version marker field${suffix}`,
    );
    expect(failureOf(classify(legacy(), () => replaceDocument({ schemaVersion: '1.0' }))).message).toBe(
      `up() result at schemaVersion: sets the version marker field to another value${suffix}`,
    );
  });

  it('gives up() its own copy of the document, so mutating it changes neither the input nor the validated result', () => {
    const doc = legacy();
    const result = classify(doc, (input) => {
      (input.offeredSkills as unknown[]).push('mutated');
      input.creatorId = 'mutated';
      return { participants: { creator: 'alice-7', participant: null }, skillsOffered: [] };
    });
    expect(doc).toEqual(legacy());
    expect(result.outcome === 'migrate' && result.after.creatorId).toBe('alice-7');
    expect(result.outcome === 'migrate' && result.after.offeredSkills).toEqual(['guitar', { name: 'cooking' }]);
  });

  it('reports a source schema that cannot be checked synchronously as invalid-source', () => {
    const asyncFrom = z.object({ creatorId: z.string().refine(async () => true) });
    const migration = defineMigration({ ...trades(), from: asyncFrom });
    expect(failureOf(classifyDocument(migration, legacy(), ctx, { validate: true }))).toEqual({
      errorClass: 'invalid-source',
      severity: 'medium',
      message: 'does not match the source schema: the schema check threw Error',
    });
  });

  it('maps each failure class to one severity', () => {
    expect(FAILURE_SEVERITY).toEqual({ 'invalid-source': 'medium', 'transform-error': 'high', 'invalid-result': 'high' });
    expect(Object.isFrozen(FAILURE_SEVERITY)).toBe(true);
  });
});
