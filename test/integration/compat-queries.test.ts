import { Timestamp } from '@google-cloud/firestore';
import { listUserConversations, listUserTrades, type ListedDocument } from '../../functions/src/compat/tradeya-queries';
import { classifyDocument } from '../../functions/src/definitions/classify';
import { applyChange } from '../../functions/src/definitions/normalize';
import type { DocData, Migration } from '../../functions/src/definitions/types';
import { conversationsV2 } from '../../functions/src/migrations/tradeya/conversations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { describeEmulator, resetProject, testFirestore } from '../support/emulator';

const BASE = Date.parse('2026-02-01T00:00:00.000Z');
const at = (hoursAgo: number) => Timestamp.fromMillis(BASE - hoursAgo * 3_600_000);

function legacyTrade(creatorId: string, participantId: string | null | undefined, hoursAgo: number): DocData {
  const trade: DocData = {
    title: `trade of ${creatorId}`,
    status: participantId ? 'active' : 'open',
    creatorId,
    offeredSkills: ['Guitar', { name: 'Web Design & UX', level: 'Expert' }],
    requestedSkills: [{ id: 'sk-bake', name: 'Baking', level: 'beginner', category: 'food' }],
    createdAt: at(hoursAgo),
  };
  if (participantId !== undefined) trade.participantId = participantId;
  return trade;
}

function legacyConversation(participants: DocData[], hoursAgo: number): DocData {
  return { participants, lastMessage: 'See you Saturday', createdAt: at(hoursAgo + 100), updatedAt: at(hoursAgo) };
}

/** What the engine writes for a legacy document: the twin stored as "already migrated". */
function migrated(migration: Migration, path: string, doc: DocData): DocData {
  const id = path.split('/').pop()!;
  const result = classifyDocument(migration, doc, { path, id }, { validate: true });
  if (result.outcome !== 'migrate') throw new Error(`${path}: expected migrate, got ${result.outcome}`);
  return applyChange(doc, result.change);
}

/** Seeded documents: `legacy` as written by old clients, `v2` as the migration leaves them. */
interface Seeded {
  path: string;
  stored: DocData;
  /** The new shape of the document; undefined for a malformed one. */
  newShape: DocData | undefined;
  shape: ListedDocument['shape'];
}

describeEmulator('compat queries: a user’s trades and conversations in both shapes', () => {
  const projectId = 'demo-compat-queries';
  const db = testFirestore(projectId);
  const seeded = new Map<string, Seeded>();

  function add(migration: Migration, path: string, legacy: DocData, form: 'legacy' | 'v2' | 'malformed'): void {
    if (form === 'malformed') {
      seeded.set(path, { path, stored: legacy, newShape: undefined, shape: 'invalid' });
      return;
    }
    const newShape = migrated(migration, path, legacy);
    seeded.set(path, { path, stored: form === 'v2' ? newShape : legacy, newShape, shape: form === 'v2' ? 'new' : 'legacy' });
  }

  beforeAll(async () => {
    await resetProject(projectId);
    // alice's trades, newest first: t01 … t09 (t08 and t09 share a createdAt: the id breaks the tie, descending).
    add(tradesV2, 'trades/t01', legacyTrade('alice', 'bob', 1), 'legacy');
    add(tradesV2, 'trades/t02', legacyTrade('alice', null, 2), 'v2');
    add(tradesV2, 'trades/t03', legacyTrade('bob', 'alice', 3), 'legacy');
    add(tradesV2, 'trades/t04', legacyTrade('carol', 'alice', 4), 'v2');
    add(tradesV2, 'trades/t05', legacyTrade('alice', undefined, 5), 'legacy');
    add(tradesV2, 'trades/t06', { ...legacyTrade('alice', 'dave', 6), offeredSkills: 'Guitar, Piano' }, 'malformed');
    add(tradesV2, 'trades/t07', legacyTrade('alice', 'alice', 7), 'v2');
    add(tradesV2, 'trades/t08', legacyTrade('dave', 'alice', 8), 'legacy');
    add(tradesV2, 'trades/t09', legacyTrade('alice', 'carol', 8), 'v2');
    // Not alice's, in both shapes, interleaved in time.
    add(tradesV2, 'trades/x01', legacyTrade('carol', 'dave', 1.5), 'legacy');
    add(tradesV2, 'trades/x02', legacyTrade('dave', 'bob', 2.5), 'v2');
    add(tradesV2, 'trades/x03', legacyTrade('bob', null, 3.5), 'legacy');

    // alice's conversations, most recently updated first: c01 … c06.
    add(conversationsV2, 'conversations/c01', legacyConversation([{ id: 'alice', name: 'A' }, { id: 'bob', name: 'B' }], 1), 'v2');
    add(conversationsV2, 'conversations/c02', legacyConversation([{ userId: 'bob', displayName: 'B' }, { userId: 'alice', displayName: 'A' }], 2), 'legacy');
    // A group conversation with alice at the third position (beyond what the rules check for legacy ones).
    add(conversationsV2, 'conversations/c03', legacyConversation([{ id: 'carol' }, { id: 'dave' }, { userId: 'alice', photoURL: null }], 3), 'legacy');
    add(conversationsV2, 'conversations/c04', legacyConversation([{ id: 'alice' }, { name: 'nobody' }], 4), 'malformed');
    add(conversationsV2, 'conversations/c05', legacyConversation([{ id: 'alice' }, { userId: 'alice' }, { id: 'erin' }], 5), 'v2');
    add(conversationsV2, 'conversations/c06', legacyConversation([{ id: 'erin' }, { id: 'alice' }], 30), 'legacy');
    // Not alice's.
    add(conversationsV2, 'conversations/y01', legacyConversation([{ id: 'bob' }, { id: 'carol' }], 1.5), 'legacy');
    add(conversationsV2, 'conversations/y02', legacyConversation([{ id: 'dave' }, { id: 'erin' }], 2.5), 'v2');
    add(conversationsV2, 'conversations/y03', legacyConversation([{ userId: 'carol' }, { userId: 'bob' }], 3.5), 'legacy');

    const batch = db.batch();
    for (const { path, stored } of seeded.values()) batch.set(db.doc(path), stored);
    await batch.commit();
  });
  afterAll(() => db.terminate());

  /** Each listed document: its path, shape and data — the new shape, or the stored data when invalid. */
  function expectListed(listed: ListedDocument[], paths: string[]): void {
    expect(listed.map((doc) => doc.path)).toEqual(paths);
    for (const doc of listed) {
      const expected = seeded.get(doc.path)!;
      expect({ path: doc.path, id: doc.id, shape: doc.shape }).toEqual({ path: expected.path, id: expected.path.split('/')[1], shape: expected.shape });
      // toEqual ignores key order, which a write does not preserve, and compares Timestamps by value.
      expect({ path: doc.path, data: doc.data }).toEqual({ path: doc.path, data: expected.newShape ?? expected.stored });
    }
  }

  const alicesTrades = ['trades/t01', 'trades/t02', 'trades/t03', 'trades/t04', 'trades/t05', 'trades/t06', 'trades/t07', 'trades/t09', 'trades/t08'];

  it('lists each of the user’s trades once, newest first, in the v2 shape, whichever field names them', async () => {
    const trades = await listUserTrades(db, 'alice');
    expectListed(trades, alicesTrades);
    const t06 = trades.find((trade) => trade.path === 'trades/t06')!;
    expect(t06).toMatchObject({ shape: 'invalid', reason: 'invalid-source', issues: [{ path: 'offeredSkills', code: 'invalid_type' }] });
    for (const trade of trades.filter((t) => t.shape !== 'invalid')) {
      expect(trade.data.schemaVersion).toBe('2.0');
      expect(trade.data.participants).toEqual({ creator: trade.data.creatorId, participant: trade.data.participantId ?? null });
    }
  });

  it('every limit gives exactly the first trades of the full list', async () => {
    for (let limit = 1; limit <= alicesTrades.length + 1; limit++) {
      const page = await listUserTrades(db, 'alice', { limit });
      expect([limit, page.map((trade) => trade.path)]).toEqual([limit, alicesTrades.slice(0, limit)]);
    }
  });

  it('lists another user’s trades from the same mixed collection', async () => {
    expectListed(await listUserTrades(db, 'bob'), ['trades/t01', 'trades/x02', 'trades/t03', 'trades/x03']);
    expect(await listUserTrades(db, 'nobody')).toEqual([]);
  });

  const alicesConversations = ['conversations/c01', 'conversations/c02', 'conversations/c03', 'conversations/c04', 'conversations/c05', 'conversations/c06'];

  it('lists each of the user’s conversations once, most recent first, with participantIds for legacy ones, and says the page is complete', async () => {
    const result = await listUserConversations(db, 'alice');
    expectListed(result.conversations, alicesConversations);
    expect(result.complete).toBe(true);
    expect(result.legacyScanned).toBe(9);
    expect(result.conversations.find((c) => c.path === 'conversations/c03')!.data.participantIds).toEqual(['carol', 'dave', 'alice']);
    expect(result.conversations.find((c) => c.path === 'conversations/c04')).toMatchObject({
      shape: 'invalid',
      reason: 'invalid-source',
      issues: [{ path: 'participants[1].id', code: 'custom' }],
    });
  });

  it('a bounded legacy scan says when an older legacy conversation may be missing', async () => {
    // The 4 most recently updated: c01, y01, c02, y02. c03 (legacy) lies beyond the horizon.
    const short = await listUserConversations(db, 'alice', { legacyScanLimit: 4 });
    expect(short.legacyScanned).toBe(4);
    expectListed(short.conversations, ['conversations/c01', 'conversations/c02', 'conversations/c05']);
    expect(short.complete).toBe(false);

    // A page of 2 ends before the horizon: nothing beyond it could belong on the page.
    const page = await listUserConversations(db, 'alice', { limit: 2, legacyScanLimit: 4 });
    expectListed(page.conversations, ['conversations/c01', 'conversations/c02']);
    expect(page.complete).toBe(true);

    // Without the scan only v2 conversations are found, and the page does not claim completeness.
    const v2Only = await listUserConversations(db, 'alice', { legacyScanLimit: 0 });
    expectListed(v2Only.conversations, ['conversations/c01', 'conversations/c05']);
    expect(v2Only).toMatchObject({ complete: false, legacyScanned: 0 });
  });

  it('every limit gives exactly the first conversations of the full list', async () => {
    for (let limit = 1; limit <= alicesConversations.length; limit++) {
      const result = await listUserConversations(db, 'alice', { limit });
      expect([limit, result.conversations.map((c) => c.path), result.complete]).toEqual([limit, alicesConversations.slice(0, limit), true]);
    }
  });

  it('refuses a limit that is not a positive integer', async () => {
    await expect(listUserTrades(db, 'alice', { limit: 0 })).rejects.toThrow('limit must be an integer of 1 or more, got 0');
    await expect(listUserConversations(db, 'alice', { legacyScanLimit: -1 })).rejects.toThrow('legacyScanLimit must be an integer of 0 or more, got -1');
  });
});
