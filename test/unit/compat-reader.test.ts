import { DocumentReference, GeoPoint, Timestamp } from '@google-cloud/firestore';
import { z } from 'zod';
import { readInNewShape, type NewShapeRead } from '../../functions/src/compat/reader';
import { classifyDocument } from '../../functions/src/definitions/classify';
import { defineMigration } from '../../functions/src/definitions/define';
import { applyChange, normalizeTransformResult } from '../../functions/src/definitions/normalize';
import { skip } from '../../functions/src/definitions/results';
import type { DocData, Migration, TransformContext } from '../../functions/src/definitions/types';
import { DemoDataset, type GeneratedDoc } from '../../functions/src/demo/seed-data';
import { conversationsV2 } from '../../functions/src/migrations/tradeya/conversations';
import { SKILL_LEVELS, TRADE_STATUSES } from '../../functions/src/migrations/tradeya/schemas';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';

/** Typed, key-sorted text of a document: equal texts mean equal Firestore values, whatever the key order. */
function canonical(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `s:${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value}:${String(value)}`;
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value instanceof Timestamp) return `t:${value.seconds}.${value.nanoseconds}`;
  if (value instanceof GeoPoint) return `g:${value.latitude},${value.longitude}`;
  if (value instanceof DocumentReference) return `r:${value.path}`;
  if (Buffer.isBuffer(value)) return `b:${value.toString('base64')}`;
  if (typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const map = value as Record<string, unknown>;
    return `{${Object.keys(map).sort().map((key) => `${JSON.stringify(key)}:${canonical(map[key])}`).join(',')}}`;
  }
  throw new Error(`canonical: unexpected ${Object.prototype.toString.call(value)}`);
}

/** Every string in a document, except the schemas' own literals. */
function stringValues(value: unknown, out: string[] = []): string[] {
  const literals = new Set<string>([...SKILL_LEVELS, ...TRADE_STATUSES]);
  if (typeof value === 'string') {
    if (!literals.has(value) && value.trim().length > 2) out.push(value);
  } else if (Array.isArray(value)) value.forEach((item) => stringValues(item, out));
  else if (value !== null && typeof value === 'object' && !(value instanceof Timestamp)) Object.values(value).forEach((item) => stringValues(item, out));
  return out;
}

const contextOf = (collection: string, id: string): TransformContext => ({ path: `${collection}/${id}`, id });

/** The document as the engine would write it (classification + change, validated). */
function migratedTwin(migration: Migration, doc: DocData, ctx: TransformContext): DocData {
  const result = classifyDocument(migration, doc, ctx, { validate: true });
  if (result.outcome !== 'migrate') throw new Error(`${ctx.path}: expected migrate, got ${result.outcome}`);
  return applyChange(doc, result.change);
}

/** The legacy document a v2 one was upgraded from: the migration's own `down`, and no marker. */
function legacyTwin(migration: Migration, doc: DocData, ctx: TransformContext): DocData {
  const reverted = applyChange(doc, normalizeTransformResult(migration.down!(doc, ctx), { transform: 'down' }));
  delete reverted[migration.marker.field];
  return reverted;
}

function expectReadable(read: NewShapeRead, shape: 'new' | 'legacy'): DocData {
  if (read.shape === 'invalid') throw new Error(`expected ${shape}, got invalid: ${read.message}`);
  expect(read.shape).toBe(shape);
  return read.data;
}

const NOW = new Date('2026-03-01T12:00:00.000Z');
// Two full blocks: every case of the demo data, more than once.
const dataset = new DemoDataset({ docs: 200, seed: 20260301, now: NOW });

interface Fixture {
  name: string;
  migration: Migration;
  collection: string;
  docs: Array<GeneratedDoc<{ kind: string }>>;
  malformed: Record<string, Array<{ path: string; code: string }>>;
}

const fixtures: Fixture[] = [
  {
    name: 'trades',
    migration: tradesV2,
    collection: 'trades',
    docs: [...dataset.trades()],
    malformed: {
      missingCreator: [{ path: 'creatorId', code: 'invalid_type' }],
      skillsNotArray: [{ path: 'offeredSkills', code: 'invalid_type' }],
    },
  },
  {
    name: 'conversations',
    migration: conversationsV2,
    collection: 'conversations',
    docs: [...dataset.conversations()],
    malformed: { participantWithoutId: [{ path: 'participants[1].id', code: 'custom' }] },
  },
];

describe.each(fixtures)('readInNewShape over every demo $name case', ({ migration, collection, docs, malformed }) => {
  it('reads a legacy document and its migrated twin as identical new-shape data', () => {
    const legacy = docs.filter((doc) => doc.case.kind === 'legacy');
    expect(legacy.length).toBeGreaterThan(docs.length * 0.9);
    for (const doc of legacy) {
      const ctx = contextOf(collection, doc.id);
      const before = canonical(doc.data);
      const fromLegacy = expectReadable(readInNewShape(migration, doc.data, ctx), 'legacy');
      const twin = migratedTwin(migration, doc.data, ctx);
      const fromTwin = expectReadable(readInNewShape(migration, twin, ctx), 'new');
      expect({ path: ctx.path, data: canonical(fromLegacy) }).toEqual({ path: ctx.path, data: canonical(fromTwin) });
      expect({ path: ctx.path, data: canonical(fromLegacy) }).toEqual({ path: ctx.path, data: canonical(twin) });
      expect(migration.to.safeParse(fromLegacy).success).toBe(true);
      // Pure: the input is untouched, and the result shares nothing with it.
      expect(canonical(doc.data)).toBe(before);
      fromLegacy.title = 'changed by the caller';
      expect(canonical(doc.data)).toBe(before);
    }
  });

  it('reads a document already at v2 as stored, and identically to its legacy twin', () => {
    const v2 = docs.filter((doc) => doc.case.kind === 'alreadyV2');
    expect(v2.length).toBeGreaterThanOrEqual(5);
    for (const doc of v2) {
      const ctx = contextOf(collection, doc.id);
      const asStored = expectReadable(readInNewShape(migration, doc.data, ctx), 'new');
      expect(canonical(asStored)).toBe(canonical(doc.data));
      const twin = legacyTwin(migration, doc.data, ctx);
      expect(twin[migration.marker.field]).toBeUndefined();
      const fromTwin = expectReadable(readInNewShape(migration, twin, ctx), 'legacy');
      expect({ path: ctx.path, data: canonical(fromTwin) }).toEqual({ path: ctx.path, data: canonical(asStored) });
    }
  });

  it('reads a malformed document as invalid, with the zod issue paths and no document values', () => {
    const kinds = Object.keys(malformed);
    const bad = docs.filter((doc) => kinds.includes(doc.case.kind));
    expect(new Set(bad.map((doc) => doc.case.kind))).toEqual(new Set(kinds));
    for (const doc of bad) {
      const ctx = contextOf(collection, doc.id);
      const read = readInNewShape(migration, doc.data, ctx);
      if (read.shape !== 'invalid') throw new Error(`${ctx.path}: expected invalid, got ${read.shape}`);
      expect({ path: ctx.path, reason: read.reason, issues: read.issues }).toEqual({ path: ctx.path, reason: 'invalid-source', issues: malformed[doc.case.kind] });
      expect(canonical(read.data)).toBe(canonical(doc.data));
      for (const value of stringValues(doc.data)) {
        expect([ctx.path, value, read.message.includes(value)]).toEqual([ctx.path, value, false]);
        expect([ctx.path, value, JSON.stringify(read.issues).includes(value)]).toEqual([ctx.path, value, false]);
      }
      // The engine would not migrate it either.
      expect(classifyDocument(migration, doc.data, ctx, { validate: true }).outcome).toBe('fail');
    }
  });
});

describe('the demo data covers every case the reader was compared on', () => {
  it('every trade and conversation case value occurs', () => {
    const trades = [...dataset.trades()].map((doc) => doc.case);
    const legacyTrades = trades.filter((c) => c.kind === 'legacy');
    expect(new Set(trades.map((c) => c.kind))).toEqual(new Set(['legacy', 'alreadyV2', 'missingCreator', 'skillsNotArray']));
    expect(new Set(legacyTrades.map((c) => c.skills))).toEqual(new Set(['strings', 'objects', 'mixed']));
    expect(new Set(legacyTrades.map((c) => c.participant))).toEqual(new Set(['present', 'null', 'absent']));
    expect(new Set(legacyTrades.map((c) => c.orphan))).toEqual(new Set(['none', 'creator', 'participant']));
    const conversations = [...dataset.conversations()].map((doc) => doc.case);
    const legacyConversations = conversations.filter((c) => c.kind === 'legacy');
    expect(new Set(conversations.map((c) => c.kind))).toEqual(new Set(['legacy', 'alreadyV2', 'participantWithoutId']));
    expect(new Set(legacyConversations.map((c) => c.keys))).toEqual(new Set(['idName', 'userIdDisplayName', 'mixed']));
    expect(new Set(legacyConversations.map((c) => c.duplicateParticipant))).toEqual(new Set([true, false]));
    expect(new Set(legacyConversations.map((c) => c.orphanParticipant))).toEqual(new Set([true, false]));
  });
});

describe('readInNewShape edge cases', () => {
  const createdAt = Timestamp.fromMillis(Date.parse('2025-11-02T09:30:00.000Z'));
  const legacyTrade = (): DocData => ({
    title: 'Guitar for a résumé review',
    status: 'open',
    creatorId: 'user-7',
    offeredSkills: ['Guitar'],
    requestedSkills: [{ name: 'Résumé Writing', level: 'Expert' }],
    createdAt,
  });
  const ctx = contextOf('trades', 't1');

  it('a document carrying the v2 marker without matching the v2 schema is invalid-target, with issue paths', () => {
    const read = readInNewShape(tradesV2, { ...legacyTrade(), schemaVersion: '2.0' }, ctx);
    expect(read.shape).toBe('invalid');
    if (read.shape !== 'invalid') return;
    expect(read.reason).toBe('invalid-target');
    expect(read.issues).toEqual([
      { path: 'skillsOffered', code: 'invalid_type' },
      { path: 'skillsWanted', code: 'invalid_type' },
      { path: 'participants', code: 'invalid_type' },
    ]);
    expect(read.message).not.toContain('user-7');
  });

  it('a transform that throws, or skips, or produces an invalid result gives invalid with that reason', () => {
    const base = {
      version: '1',
      description: 'test',
      target: { collection: 'things' },
      marker: { field: 'v', from: null, to: '2' },
      from: z.looseObject({ name: z.string() }),
      to: z.looseObject({ name: z.string(), size: z.number() }),
    };
    const throwing = defineMigration({ ...base, id: 'throws', up: (doc) => ({ size: JSON.parse(doc.name as string) as number }) });
    const skipping = defineMigration({ ...base, id: 'skips', up: () => skip('not ours') });
    const wrong = defineMigration({ ...base, id: 'wrong', up: () => ({ size: 'large' }) });
    const doc = { name: 'secret-value-42' };
    const thingCtx = contextOf('things', 'x');

    const thrown = readInNewShape(throwing, doc, thingCtx);
    expect(thrown).toMatchObject({ shape: 'invalid', reason: 'transform-error', issues: [] });
    const skipped = readInNewShape(skipping, doc, thingCtx);
    expect(skipped).toMatchObject({ shape: 'invalid', reason: 'skipped', issues: [], message: 'up() skipped the document: not ours' });
    const invalid = readInNewShape(wrong, doc, thingCtx);
    expect(invalid).toMatchObject({ shape: 'invalid', reason: 'invalid-result', issues: [{ path: 'size', code: 'invalid_type' }] });
    for (const read of [thrown, skipped, invalid]) {
      expect(read.data).toEqual(doc);
      if (read.shape === 'invalid') expect(read.message).not.toContain('secret-value-42');
    }
  });

  it('plain data needs its context; a snapshot of a missing document is refused by path', () => {
    expect(() => readInNewShape(tradesV2, legacyTrade(), undefined as unknown as TransformContext)).toThrow(/needs its context/);
    const missing = { id: 'gone', ref: { path: 'trades/gone' }, data: () => undefined };
    expect(() => readInNewShape(tradesV2, missing)).toThrow('trades/gone does not exist');
  });

  it('a snapshot gives the transform its path and id', () => {
    const seen: TransformContext[] = [];
    const recording = defineMigration({
      id: 'records-context',
      version: '1',
      description: 'test',
      target: { collection: 'things' },
      marker: { field: 'v', from: null, to: '2' },
      from: z.looseObject({}),
      to: z.looseObject({}),
      up: (_doc, context) => {
        seen.push(context);
        return {};
      },
    });
    const read = readInNewShape(recording, { id: 'a1', ref: { path: 'things/a1' }, data: () => ({ n: 1 }) });
    expect(read).toEqual({ shape: 'legacy', data: { n: 1, v: '2' } });
    expect(seen).toEqual([{ path: 'things/a1', id: 'a1' }]);
  });

  it('a cleaned-up document (the contract step removed the legacy fields) reads as new; one missing only some is invalid-target', () => {
    const migrated = readInNewShape(tradesV2, legacyTrade(), ctx);
    expect(migrated.shape).toBe('legacy');
    const v2: DocData = { ...migrated.data, schemaVersion: '2.0' };
    const cleaned = Object.fromEntries(Object.entries(v2).filter(([field]) => !tradesV2.legacyFields!.includes(field)));
    expect(Object.keys(cleaned)).not.toContain('creatorId');
    expect(readInNewShape(tradesV2, { ...cleaned, firemigrateCleanup: '2.0' }, ctx)).toEqual({ shape: 'new', data: { ...cleaned, firemigrateCleanup: '2.0' } });

    const { creatorId: _creator, ...half } = v2;
    const read = readInNewShape(tradesV2, half, ctx);
    expect(read.shape).toBe('invalid');
    if (read.shape !== 'invalid') return;
    expect(read.reason).toBe('invalid-target');
    expect(read.issues).toEqual([{ path: 'creatorId', code: 'invalid_type' }]);

    const { skillsWanted: _wanted, ...brokenClean } = cleaned;
    expect(readInNewShape(tradesV2, brokenClean, ctx)).toMatchObject({ shape: 'invalid', reason: 'invalid-target' });
  });
});
