import { FieldValue, Timestamp } from '@google-cloud/firestore';
import { classifyDocument, type Classification } from '../../functions/src/definitions/classify';
import { applyChange, normalizeTransformResult } from '../../functions/src/definitions/normalize';
import type { DocData, Migration } from '../../functions/src/definitions/types';
import { DemoDataset, demoManifest, type DemoManifest } from '../../functions/src/demo/seed-data';
import { projectMigrations } from '../../functions/src/migrations';
import { conversationsV2 } from '../../functions/src/migrations/tradeya/conversations';
import { SKILL_LEVELS, TRADE_STATUSES } from '../../functions/src/migrations/tradeya/schemas';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const createdAt = Timestamp.fromMillis(Date.parse('2025-11-02T09:30:00.000Z'));

function classify(migration: Migration, doc: DocData, id = 'doc1'): Classification {
  const collection = 'collection' in migration.target ? migration.target.collection : migration.target.collectionGroup;
  return classifyDocument(migration, doc, { path: `${collection}/${id}`, id }, { validate: true });
}

/** The document as the migration leaves it; fails the test with the classification otherwise. */
function migrated(migration: Migration, doc: DocData): DocData {
  const result = classify(migration, doc);
  if (result.outcome !== 'migrate') throw new Error(`expected migrate, got ${JSON.stringify(result)}`);
  return result.after;
}

function failureOf(migration: Migration, doc: DocData) {
  const result = classify(migration, doc);
  if (result.outcome !== 'fail') throw new Error(`expected fail, got ${result.outcome}`);
  return result.failure;
}

/** Every string in a document, except the schemas' own literals (a message may name what it expected). */
function stringValues(value: unknown, out: string[] = []): string[] {
  const literals = new Set<string>([...SKILL_LEVELS, ...TRADE_STATUSES]);
  if (typeof value === 'string') {
    if (!literals.has(value)) out.push(value);
  } else if (Array.isArray(value)) value.forEach((item) => stringValues(item, out));
  else if (value !== null && typeof value === 'object' && !(value instanceof Timestamp)) {
    Object.values(value).forEach((item) => stringValues(item, out));
  }
  return out;
}

function legacyTrade(overrides: DocData = {}): DocData {
  return {
    title: 'Guitar lessons for a résumé review',
    status: 'active',
    creatorId: 'user-creator-7',
    participantId: 'user-participant-9',
    offeredSkills: ['Guitar'],
    requestedSkills: [{ id: 'sk-resume', name: 'Résumé Writing', level: 'advanced', category: 'business' }],
    location: 'Lisbon',
    createdAt,
    ...overrides,
  };
}

function legacyConversation(participants: DocData[], overrides: DocData = {}): DocData {
  return { participants, lastMessage: 'See you Saturday', createdAt, updatedAt: createdAt, ...overrides };
}

describe('tradeya-trades-v2 up', () => {
  it('turns a string skill s into {id: s, name: s, level: intermediate}', () => {
    const after = migrated(tradesV2, legacyTrade({ offeredSkills: ['Guitar', 'C++ Programming'] }));
    expect(after.skillsOffered).toEqual([
      { id: 'Guitar', name: 'Guitar', level: 'intermediate' },
      { id: 'C++ Programming', name: 'C++ Programming', level: 'intermediate' },
    ]);
  });

  it('keeps a complete skill object as it is', () => {
    const after = migrated(tradesV2, legacyTrade());
    expect(after.skillsWanted).toEqual([{ id: 'sk-resume', name: 'Résumé Writing', level: 'advanced', category: 'business' }]);
  });

  it('gives a skill object without id the slug of its name', () => {
    const after = migrated(
      tradesV2,
      legacyTrade({
        offeredSkills: [
          { name: 'Web Design & UX', level: 'expert' },
          { name: 'Café Barista', level: 'beginner' },
          { name: 'Japanese (日本語)', level: 'advanced' },
          { name: '+++', level: 'advanced' },
        ],
      }),
    );
    expect((after.skillsOffered as DocData[]).map((s) => s.id)).toEqual(['web-design-ux', 'cafe-barista', 'japanese-日本語', '+++']);
  });

  it('defaults a missing or null level to intermediate and lower-cases a hand-typed one', () => {
    const after = migrated(
      tradesV2,
      legacyTrade({
        offeredSkills: [
          { id: 'a', name: 'A' },
          { id: 'b', name: 'B', level: null, category: null },
          { id: 'c', name: 'C', level: 'Expert' },
          { id: 'd', name: 'D', level: ' advanced ' },
        ],
      }),
    );
    expect(after.skillsOffered).toEqual([
      { id: 'a', name: 'A', level: 'intermediate' },
      { id: 'b', name: 'B', level: 'intermediate' },
      { id: 'c', name: 'C', level: 'expert' },
      { id: 'd', name: 'D', level: 'advanced' },
    ]);
  });

  it('leaves keys other than id, name, level and category in the legacy array only', () => {
    const skill = { name: 'Yoga', level: 'beginner', yearsExperience: 4 };
    const after = migrated(tradesV2, legacyTrade({ offeredSkills: [skill] }));
    expect(after.skillsOffered).toEqual([{ id: 'yoga', name: 'Yoga', level: 'beginner' }]);
    expect(after.offeredSkills).toEqual([skill]);
  });

  it('normalises a mixed list in order', () => {
    const after = migrated(tradesV2, legacyTrade({ requestedSkills: [{ name: 'Piano', category: 'music' }, 'Baking'] }));
    expect(after.skillsWanted).toEqual([
      { id: 'piano', name: 'Piano', level: 'intermediate', category: 'music' },
      { id: 'Baking', name: 'Baking', level: 'intermediate' },
    ]);
  });

  it('maps creatorId/participantId to participants, a null or missing participant to null', () => {
    expect(migrated(tradesV2, legacyTrade()).participants).toEqual({ creator: 'user-creator-7', participant: 'user-participant-9' });
    expect(migrated(tradesV2, legacyTrade({ participantId: null })).participants).toEqual({ creator: 'user-creator-7', participant: null });
    const absent = legacyTrade();
    delete absent.participantId;
    const after = migrated(tradesV2, absent);
    expect(after.participants).toEqual({ creator: 'user-creator-7', participant: null });
    expect('participantId' in after).toBe(false);
  });

  it('expands: the legacy fields, app fields and timestamps stay; the marker is set', () => {
    const doc = legacyTrade();
    const after = migrated(tradesV2, doc);
    for (const field of ['title', 'status', 'creatorId', 'participantId', 'offeredSkills', 'requestedSkills', 'location']) {
      expect(after[field]).toEqual(doc[field]);
    }
    expect(after.createdAt).toBeInstanceOf(Timestamp);
    expect((after.createdAt as Timestamp).isEqual(createdAt)).toBe(true);
    expect(after.schemaVersion).toBe('2.0');
    expect(tradesV2.to.safeParse(after).success).toBe(true);
  });

  it('leaves a document already at v2 alone', () => {
    const v2 = { ...migrated(tradesV2, legacyTrade()) };
    expect(classify(tradesV2, v2)).toEqual({ outcome: 'already-at-target' });
  });
});

describe('tradeya-trades-v2 malformed documents', () => {
  const cases: Array<[string, DocData, string]> = [
    ['missing creatorId', (() => { const d = legacyTrade(); delete d.creatorId; return d; })(), 'creatorId: invalid_type'],
    ['offeredSkills as a string', legacyTrade({ offeredSkills: 'Guitar, Sewing' }), 'offeredSkills: invalid_type'],
    ['offeredSkills as a map', legacyTrade({ offeredSkills: { 0: 'Guitar' } }), 'offeredSkills: invalid_type'],
    ['an unknown skill level', legacyTrade({ offeredSkills: [{ name: 'Guitar', level: 'guru-level-9000' }] }), 'offeredSkills[0].level: custom'],
    ['a blank string skill', legacyTrade({ requestedSkills: ['  '] }), 'requestedSkills[0]: invalid_format'],
    ['an unknown status', legacyTrade({ status: 'archived-by-ops' }), 'status: invalid_value'],
    ['a string createdAt', legacyTrade({ createdAt: '2025-11-02' }), 'createdAt'],
  ];

  it.each(cases)('%s fails as invalid-source naming the field path, without document values', (_, doc, where) => {
    const failure = failureOf(tradesV2, doc);
    expect(failure.errorClass).toBe('invalid-source');
    expect(failure.message).toContain(where);
    for (const value of stringValues(doc)) expect(failure.message).not.toContain(value);
  });
});

describe('tradeya-trades-v2 down', () => {
  it('deletes exactly the fields up added, restoring the legacy document', () => {
    const doc = legacyTrade({ participantId: null });
    const result = classify(tradesV2, doc);
    if (result.outcome !== 'migrate') throw new Error(result.outcome);
    const down = tradesV2.down!(result.after, { path: 'trades/doc1', id: 'doc1' }) as DocData;
    const added = Object.keys(result.after).filter((field) => !(field in doc) && field !== 'schemaVersion');
    expect(Object.keys(down).sort()).toEqual(added.sort());
    for (const value of Object.values(down)) expect((value as FieldValue).isEqual(FieldValue.delete())).toBe(true);

    const reverted = applyChange(result.after, normalizeTransformResult(down, { transform: 'down' }));
    delete reverted.schemaVersion;
    expect(reverted).toEqual(doc);
  });
});

describe('tradeya-conversations-v2', () => {
  it('collects participantIds from id or userId, keeping order and dropping repeats', () => {
    const doc = legacyConversation([
      { userId: 'u-b', displayName: 'Bea', photoURL: null },
      { id: 'u-a', name: 'Ana', avatar: 'https://example.com/a.png' },
      { id: 'u-b', name: 'Bea', avatar: null },
    ]);
    const after = migrated(conversationsV2, doc);
    expect(after.participantIds).toEqual(['u-b', 'u-a']);
    expect(after.participants).toEqual(doc.participants);
    expect(after.schemaVersion).toBe('2.0');
  });

  it('prefers id over userId when a participant has both', () => {
    const after = migrated(conversationsV2, legacyConversation([{ id: 'u-1', userId: 'u-legacy', name: 'One' }, { id: 'u-2' }]));
    expect(after.participantIds).toEqual(['u-1', 'u-2']);
  });

  it('leaves a conversation already at v2 alone', () => {
    const v2 = migrated(conversationsV2, legacyConversation([{ id: 'u-1' }, { userId: 'u-2' }]));
    expect(classify(conversationsV2, v2)).toEqual({ outcome: 'already-at-target' });
  });

  it.each<[string, DocData, string]>([
    ['a participant without id or userId', legacyConversation([{ id: 'u-1', name: 'One' }, { name: 'Nameless Nadia', avatar: 'https://x/n.png' }]), 'participants[1].id: custom'],
    ['no participants', legacyConversation([]), 'participants: too_small'],
    ['participants as a map', legacyConversation([], { participants: { a: { id: 'u-1' } } }), 'participants: invalid_type'],
  ])('%s fails as invalid-source naming the field path, without document values', (_, doc, where) => {
    const failure = failureOf(conversationsV2, doc);
    expect(failure.errorClass).toBe('invalid-source');
    expect(failure.message).toContain(where);
    for (const value of stringValues(doc)) expect(failure.message).not.toContain(value);
  });

  it('down deletes participantIds, restoring the legacy document', () => {
    const doc = legacyConversation([{ id: 'u-1', name: 'One' }, { userId: 'u-2', displayName: 'Two' }]);
    const after = migrated(conversationsV2, doc);
    const down = conversationsV2.down!(after, { path: 'conversations/c1', id: 'c1' }) as DocData;
    expect(Object.keys(down)).toEqual(['participantIds']);
    expect((down.participantIds as FieldValue).isEqual(FieldValue.delete())).toBe(true);
    const reverted = applyChange(after, normalizeTransformResult(down, { transform: 'down' }));
    delete reverted.schemaVersion;
    expect(reverted).toEqual(doc);
  });
});

describe('projectMigrations', () => {
  it('holds both TradeYa migrations with their declared references and legacy fields', () => {
    expect(projectMigrations.map((m) => m.id)).toEqual(['tradeya-trades-v2', 'tradeya-conversations-v2']);
    expect(tradesV2.references).toEqual([
      { field: 'participants.creator', collection: 'users' },
      { field: 'participants.participant', collection: 'users', optional: true },
    ]);
    expect(conversationsV2.references).toEqual([{ field: 'participantIds[]', collection: 'users' }]);
    expect(tradesV2.legacyFields).toEqual(['offeredSkills', 'requestedSkills', 'creatorId', 'participantId']);
    expect(conversationsV2.legacyFields).toBeUndefined();
    expect(tradesV2.impactQueries!.map((q) => q.name)).toEqual(['active-trades', 'active-users']);
  });
});

describe('demo data generator', () => {
  const all = (dataset: DemoDataset) => ({
    users: [...dataset.users()],
    trades: [...dataset.trades()],
    conversations: [...dataset.conversations()],
  });

  it('gives the same documents and ids for the same seed, and others for another seed', () => {
    const first = all(new DemoDataset({ docs: 300, seed: 42, now: NOW }));
    const again = all(new DemoDataset({ docs: 300, seed: 42, now: NOW }));
    const other = all(new DemoDataset({ docs: 300, seed: 43, now: NOW }));
    expect(again).toEqual(first);
    expect(other.trades.map((t) => t.id)).not.toEqual(first.trades.map((t) => t.id));
    expect(other.trades.map((t) => t.data.title)).not.toEqual(first.trades.map((t) => t.data.title));
  });

  it('gives unique ids within each collection', () => {
    const { users, trades, conversations } = all(new DemoDataset({ docs: 5000, seed: 9, now: NOW }));
    for (const docs of [users, trades, conversations]) expect(new Set(docs.map((d) => d.id)).size).toBe(docs.length);
  });

  it('generates document i on its own exactly as in sequence', () => {
    const dataset = new DemoDataset({ docs: 250, seed: 5, now: NOW });
    const sequence = [...dataset.trades()];
    const fresh = new DemoDataset({ docs: 250, seed: 5, now: NOW });
    for (const i of [249, 0, 137, 100, 99]) expect(fresh.trade(i)).toEqual(sequence[i]);
  });

  it('includes every case at docs = 20', () => {
    const dataset = new DemoDataset({ docs: 20, seed: 1, now: NOW });
    const { users, trades, conversations } = all(dataset);
    const legacy = trades.filter((t) => t.case.kind === 'legacy');
    expect(new Set(trades.map((t) => t.case.kind))).toEqual(new Set(['legacy', 'alreadyV2', 'missingCreator', 'skillsNotArray']));
    expect(new Set(legacy.map((t) => t.case.skills))).toEqual(new Set(['strings', 'objects', 'mixed']));
    expect(new Set(legacy.map((t) => t.case.participant))).toEqual(new Set(['present', 'null', 'absent']));
    expect(new Set(legacy.map((t) => t.case.orphan))).toEqual(new Set(['none', 'creator', 'participant']));
    const legacyConversations = conversations.filter((c) => c.case.kind === 'legacy');
    expect(new Set(conversations.map((c) => c.case.kind))).toEqual(new Set(['legacy', 'alreadyV2', 'participantWithoutId']));
    expect(new Set(legacyConversations.map((c) => c.case.keys))).toEqual(new Set(['idName', 'userIdDisplayName', 'mixed']));
    expect(legacyConversations.some((c) => c.case.duplicateParticipant)).toBe(true);
    expect(legacyConversations.some((c) => c.case.orphanParticipant)).toBe(true);
    expect(users).toHaveLength(10);
    expect(new Set(users.map((u) => u.case.recentlyActive))).toEqual(new Set([true, false]));
  });

  it('writes each case the way its name says', () => {
    const dataset = new DemoDataset({ docs: 400, seed: 77, now: NOW });
    const { users, trades, conversations } = all(dataset);
    const userIds = new Set(users.map((u) => u.id));
    for (const { data, case: c } of trades) {
      const objects = [...asArray(data.offeredSkills), ...asArray(data.requestedSkills)];
      if (c.kind !== 'skillsNotArray' && c.skills === 'strings') expect(objects.every((s) => typeof s === 'string')).toBe(true);
      if (c.kind !== 'skillsNotArray' && c.skills === 'objects') expect(objects.every((s) => typeof s === 'object')).toBe(true);
      if (c.kind !== 'skillsNotArray' && c.skills === 'mixed') {
        for (const list of [data.offeredSkills, data.requestedSkills] as unknown[][]) {
          expect(list.some((s) => typeof s === 'string') && list.some((s) => typeof s === 'object')).toBe(true);
        }
      }
      if (c.kind === 'skillsNotArray') expect(Array.isArray(data.offeredSkills)).toBe(false);
      if (c.kind === 'missingCreator') expect('creatorId' in data).toBe(false);
      else expect(userIds.has(data.creatorId as string)).toBe(c.orphan !== 'creator');
      if (c.participant === 'absent') expect('participantId' in data).toBe(false);
      if (c.participant === 'null') expect(data.participantId).toBeNull();
      if (c.participant === 'present') expect(userIds.has(data.participantId as string)).toBe(c.orphan !== 'participant');
      expect(data.schemaVersion).toBe(c.kind === 'alreadyV2' ? '2.0' : undefined);
    }
    for (const { data, case: c } of conversations) {
      const participants = data.participants as DocData[];
      const ids = participants.map((p) => (p.id ?? p.userId) as string | undefined);
      if (c.kind === 'participantWithoutId') expect(ids).toContain(undefined);
      if (c.kind === 'legacy' && c.keys === 'idName') expect(participants.slice(0, 2).every((p) => 'id' in p && 'name' in p && 'avatar' in p)).toBe(true);
      if (c.kind === 'legacy' && c.keys === 'userIdDisplayName') {
        expect(participants.slice(0, 2).every((p) => 'userId' in p && 'displayName' in p && 'photoURL' in p)).toBe(true);
      }
      if (c.kind === 'legacy') expect(new Set(ids).size < ids.length).toBe(c.duplicateParticipant);
      if (c.kind === 'legacy') expect(ids.every((id) => userIds.has(id!))).toBe(!c.orphanParticipant);
      expect(data.schemaVersion).toBe(c.kind === 'alreadyV2' ? '2.0' : undefined);
    }
    const recent = users.filter((u) => (u.data.lastActiveAt as Timestamp).toMillis() >= NOW.getTime() - 5 * 60_000);
    expect(recent.map((u) => u.id)).toEqual(users.filter((u) => u.case.recentlyActive).map((u) => u.id));
  });

  it('classifies as the manifest says: legacy migrate, v2 already at target, malformed fail as invalid-source', () => {
    const options = { docs: 1000, seed: 2024, now: NOW };
    const manifest = demoManifest(options);
    const dataset = new DemoDataset(options);
    const tradeOutcomes = tally([...dataset.trades()].map((t) => outcomeOf(classify(tradesV2, t.data, t.id))));
    const conversationOutcomes = tally([...dataset.conversations()].map((c) => outcomeOf(classify(conversationsV2, c.data, c.id))));
    expect(tradeOutcomes).toEqual({
      migrate: manifest.trades.legacy,
      'already-at-target': manifest.trades.alreadyV2,
      'fail:invalid-source': manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray,
    });
    expect(conversationOutcomes).toEqual({
      migrate: manifest.conversations.legacy,
      'already-at-target': manifest.conversations.alreadyV2,
      'fail:invalid-source': manifest.conversations.malformed.participantWithoutId,
    });
  });

  it('keeps the documented proportions exactly per block of 100', () => {
    const manifest: DemoManifest = demoManifest({ docs: 200, seed: 3, now: NOW });
    expect(manifest.users).toEqual({ total: 50, activeLast15Min: 10 });
    expect(manifest.trades).toMatchObject({
      total: 200,
      legacy: 186,
      alreadyV2: 10,
      malformed: { missingCreator: 2, skillsNotArray: 2 },
      orphans: { creator: 2, participant: 2 },
    });
    expect(sum(manifest.trades.skills)).toBe(186);
    expect(sum(manifest.trades.participant)).toBe(186);
    expect(sum(manifest.trades.byStatus)).toBe(200);
    expect(manifest.conversations).toMatchObject({
      total: 100,
      legacy: 94,
      alreadyV2: 5,
      malformed: { participantWithoutId: 1 },
      orphans: { participant: 1 },
    });
    expect(sum(manifest.conversations.keys)).toBe(94);
  });

  it('refuses bad options, naming the option', () => {
    expect(() => new DemoDataset({ docs: 0, seed: 1 })).toThrow(/docs must be an integer from 1 to 100000000, got 0/);
    expect(() => new DemoDataset({ docs: 2.5, seed: 1 })).toThrow(/docs/);
    expect(() => new DemoDataset({ docs: 10, seed: -1 })).toThrow(/seed must be an integer from 0 to 4294967295, got -1/);
    expect(() => new DemoDataset({ docs: 10, seed: 1, now: new Date('nope') })).toThrow(/now must be a valid Date/);
  });
});

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function outcomeOf(result: Classification): string {
  return result.outcome === 'fail' ? `fail:${result.failure.errorClass}` : result.outcome;
}

function tally(outcomes: string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const outcome of outcomes) counts[outcome] = (counts[outcome] ?? 0) + 1;
  return counts;
}

function sum(counts: Record<string, number>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}
