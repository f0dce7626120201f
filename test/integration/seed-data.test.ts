import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { DocData } from '../../functions/src/definitions/types';
import { DemoDataset, seedDemoData, type DemoManifest } from '../../functions/src/demo/seed-data';
import { describeEmulator, resetProject, testFirestore } from '../support/emulator';

const NOW = new Date('2026-03-01T12:00:00.000Z');
const OPTIONS = { docs: 200, seed: 20260301, now: NOW };

async function readCollection(db: Firestore, name: string): Promise<Map<string, DocData>> {
  const snapshot = await db.collection(name).get();
  return new Map(snapshot.docs.map((doc) => [doc.id, doc.data()]));
}

async function readAll(db: Firestore) {
  return {
    users: await readCollection(db, 'users'),
    trades: await readCollection(db, 'trades'),
    conversations: await readCollection(db, 'conversations'),
  };
}

/** The manifest's figures recounted from the stored documents alone. */
function countStored(stored: Awaited<ReturnType<typeof readAll>>): Omit<DemoManifest, 'seed' | 'docs' | 'now'> {
  const userIds = new Set(stored.users.keys());
  const windowStart = NOW.getTime() - 15 * 60_000;
  const trades = [...stored.trades.values()];
  const isLegacy = (t: DocData) => t.schemaVersion === undefined && 'creatorId' in t && Array.isArray(t.offeredSkills);
  const legacy = trades.filter(isLegacy);
  const skillShape = (t: DocData) => {
    const skills = [...(t.offeredSkills as unknown[]), ...(t.requestedSkills as unknown[])];
    if (skills.every((s) => typeof s === 'string')) return 'strings';
    if (skills.every((s) => typeof s === 'object')) return 'objects';
    return 'mixed';
  };
  const count = <T>(items: T[], predicate: (item: T) => boolean) => items.filter(predicate).length;
  const conversations = [...stored.conversations.values()];
  const participantsOf = (c: DocData) => c.participants as DocData[];
  const idsOf = (c: DocData) => participantsOf(c).map((p) => (p.id ?? p.userId) as string | undefined);
  const legacyConversations = conversations.filter((c) => c.schemaVersion === undefined && idsOf(c).every((id) => id !== undefined));
  const keyStyle = (c: DocData) => {
    const [a, b] = participantsOf(c);
    if ('id' in a && 'id' in b) return 'idName';
    if ('userId' in a && 'userId' in b) return 'userIdDisplayName';
    return 'mixed';
  };
  return {
    users: {
      total: stored.users.size,
      activeLast15Min: count([...stored.users.values()], (u) => (u.lastActiveAt as Timestamp).toMillis() >= windowStart),
    },
    trades: {
      total: trades.length,
      legacy: legacy.length,
      alreadyV2: count(trades, (t) => t.schemaVersion === '2.0'),
      malformed: {
        missingCreator: count(trades, (t) => !('creatorId' in t)),
        skillsNotArray: count(trades, (t) => !Array.isArray(t.offeredSkills)),
      },
      skills: {
        strings: count(legacy, (t) => skillShape(t) === 'strings'),
        objects: count(legacy, (t) => skillShape(t) === 'objects'),
        mixed: count(legacy, (t) => skillShape(t) === 'mixed'),
      },
      participant: {
        present: count(legacy, (t) => typeof t.participantId === 'string'),
        null: count(legacy, (t) => t.participantId === null),
        absent: count(legacy, (t) => !('participantId' in t)),
      },
      orphans: {
        creator: count(legacy, (t) => !userIds.has(t.creatorId as string)),
        participant: count(legacy, (t) => typeof t.participantId === 'string' && !userIds.has(t.participantId)),
      },
      byStatus: {
        open: count(trades, (t) => t.status === 'open'),
        active: count(trades, (t) => t.status === 'active'),
        in_progress: count(trades, (t) => t.status === 'in_progress'),
        completed: count(trades, (t) => t.status === 'completed'),
        cancelled: count(trades, (t) => t.status === 'cancelled'),
      },
    },
    conversations: {
      total: conversations.length,
      legacy: legacyConversations.length,
      alreadyV2: count(conversations, (c) => c.schemaVersion === '2.0'),
      malformed: { participantWithoutId: count(conversations, (c) => idsOf(c).includes(undefined)) },
      keys: {
        idName: count(legacyConversations, (c) => keyStyle(c) === 'idName'),
        userIdDisplayName: count(legacyConversations, (c) => keyStyle(c) === 'userIdDisplayName'),
        mixed: count(legacyConversations, (c) => keyStyle(c) === 'mixed'),
      },
      duplicateParticipant: count(legacyConversations, (c) => new Set(idsOf(c)).size < idsOf(c).length),
      orphans: { participant: count(legacyConversations, (c) => idsOf(c).some((id) => !userIds.has(id!))) },
    },
  };
}

describeEmulator('seedDemoData', () => {
  const projectId = 'demo-seed-data';
  const db = testFirestore(projectId);
  beforeEach(() => resetProject(projectId));
  afterAll(() => db.terminate());

  it('writes exactly the documents the generator makes, in the counts of its manifest', async () => {
    const manifest = await seedDemoData(db, OPTIONS);
    const stored = await readAll(db);

    expect(manifest).toMatchObject({ seed: OPTIONS.seed, docs: 200, now: NOW.toISOString() });
    expect(countStored(stored)).toEqual({ users: manifest.users, trades: manifest.trades, conversations: manifest.conversations });
    expect(manifest.trades.total).toBe(200);
    expect(manifest.conversations.total).toBe(100);
    expect(manifest.users.total).toBe(50);

    const dataset = new DemoDataset(OPTIONS);
    const expected = {
      users: [...dataset.users()],
      trades: [...dataset.trades()],
      conversations: [...dataset.conversations()],
    };
    for (const name of ['users', 'trades', 'conversations'] as const) {
      expect(stored[name].size).toBe(expected[name].length);
      for (const doc of expected[name]) expect(stored[name].get(doc.id)).toEqual(doc.data);
    }
  });

  it('writes identical documents when seeded again with the same seed', async () => {
    const firstManifest = await seedDemoData(db, OPTIONS);
    const first = await readAll(db);
    await resetProject(projectId);
    expect((await db.collection('trades').limit(1).get()).size).toBe(0);

    const secondManifest = await seedDemoData(db, OPTIONS);
    const second = await readAll(db);
    expect(secondManifest).toEqual(firstManifest);
    for (const name of ['users', 'trades', 'conversations'] as const) {
      expect([...second[name].keys()].sort()).toEqual([...first[name].keys()].sort());
      for (const [id, data] of first[name]) expect(second[name].get(id)).toEqual(data);
    }
  });
});
