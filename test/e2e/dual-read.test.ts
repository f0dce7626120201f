import { Firestore, Timestamp } from '@google-cloud/firestore';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { readInNewShape, listUserTrades } from '../../functions/src/compat';
import { getMode } from '../../functions/src/compat/modes';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RunDocument } from '../../functions/src/control/runs';
import type { DocData } from '../../functions/src/definitions/types';
import { backupId, readBackup } from '../../functions/src/engine/before-image';
import { WireClient } from '../../functions/src/engine/wire/client';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { functionUrl, resetFirestore, signedInUser, suiteProjectId } from './support/suite';

jest.setTimeout(240_000);

const FINAL = ['completed', 'failed', 'aborted', 'paused', 'emergency_stopped'];
const TRADES = 300;
const USERS = 10;
const paths = new ControlPaths();

/** Valid legacy trades of every skill shape; creator user-(n mod 10), participant user-(n+3 mod 10) or none. */
function legacyTrade(n: number): DocData {
  const skills = [['guitar', 'cooking'], [{ name: 'Web Design & UX', level: 'Expert' }], ['sql', { id: 'go', name: 'Go', level: 'advanced', category: 'code' }]][n % 3];
  return {
    title: `trade ${n}`,
    status: (['open', 'active', 'in_progress', 'completed'] as const)[n % 4],
    creatorId: `user-${n % USERS}`,
    ...(n % 5 === 0 ? {} : { participantId: `user-${(n + 3) % USERS}` }),
    offeredSkills: skills,
    requestedSkills: n % 2 ? ['logo design'] : [],
    createdAt: Timestamp.fromMillis(Date.UTC(2026, 9, 1) + n * 60_000),
  };
}
const tradePath = (n: number) => `trades/t${String(n).padStart(4, '0')}`;

describe('zero downtime on the emulator suite: dual-read during a real run, and the deployed sync trigger', () => {
  const projectId = suiteProjectId();
  const tag = `${process.pid}-${Date.now()}`;
  let admin: App;
  let db: Firestore;

  beforeAll(() => {
    admin = initializeApp({ projectId }, 'e2e-dual-read');
    db = new Firestore({ projectId });
  });
  // The suite's Firestore is shared by the e2e files, which run one at a time: start from nothing.
  beforeAll(resetFirestore);
  afterAll(async () => {
    await db.terminate();
    await deleteApp(admin);
  });

  async function adminToken(): Promise<string> {
    return (await signedInUser(admin, { migrationAdmin: true }, `dual-read-${tag}@example.com`)).token;
  }

  it('an app-style reader looping through a real migration run sees every trade, in the new shape, at every moment', async () => {
    const expected = new Map<string, DocData>();
    let batch = db.batch();
    for (let n = 0; n < TRADES; n++) {
      const data = legacyTrade(n);
      batch.set(db.doc(tradePath(n)), data);
      const read = readInNewShape(tradesV2, data, { path: tradePath(n), id: tradePath(n).split('/')[1] });
      if (read.shape !== 'legacy') throw new Error(`seed ${tradePath(n)} is not a valid legacy trade: ${read.shape}`);
      expected.set(tradePath(n), read.data);
      if (n % 100 === 99) {
        await batch.commit();
        batch = db.batch();
      }
    }
    await batch.commit();
    const userTrades = (user: string) => [...expected.keys()].filter((path) => [expected.get(path)!.creatorId, expected.get(path)!.participantId].includes(user)).sort();

    /** One look at the data the way the app reads it: every trade through the reader, and one user's list. */
    const problems: string[] = [];
    const rounds: Array<{ legacy: number; new: number }> = [];
    async function observe(round: number): Promise<void> {
      const snapshot = await db.collection('trades').get();
      const shapes = { legacy: 0, new: 0 };
      const seen = new Set<string>();
      for (const doc of snapshot.docs) {
        seen.add(doc.ref.path);
        const read = readInNewShape(tradesV2, doc);
        if (read.shape === 'invalid') problems.push(`round ${round}: ${doc.ref.path} read as invalid (${read.message})`);
        else {
          shapes[read.shape]++;
          // The new shape (with its version marker), whichever shape is stored.
          if (!equal(read.data, expected.get(doc.ref.path)!)) problems.push(`round ${round}: ${doc.ref.path} differs from its new shape`);
        }
      }
      for (const path of expected.keys()) if (!seen.has(path)) problems.push(`round ${round}: ${path} missing`);
      const user = `user-${round % USERS}`;
      const listed = await listUserTrades(db, user, { limit: TRADES });
      const listedPaths = listed.map((entry) => entry.path).sort();
      if (JSON.stringify(listedPaths) !== JSON.stringify(userTrades(user))) problems.push(`round ${round}: listUserTrades(${user}) gave ${listedPaths.length} trades, expected ${userTrades(user).length}`);
      for (const entry of listed) if (entry.shape === 'invalid') problems.push(`round ${round}: listed ${entry.path} invalid`);
      rounds.push(shapes);
    }

    await observe(0);
    const response = await fetch(await functionUrl('api', '/migration/runs'), {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ migrationId: tradesV2.id, execute: true, reason: 'e2e dual-read' }),
    });
    const body = (await response.json()) as { runId: string };
    expect(response.status).toBe(202);
    const runRef = db.doc(paths.run(tradesV2.id, body.runId));
    const deadline = Date.now() + 180_000;
    let run = (await runRef.get()).data() as RunDocument;
    for (let round = 1; !FINAL.includes(run.status) && Date.now() < deadline; round++) {
      await observe(round);
      run = (await runRef.get()).data() as RunDocument;
    }
    await observe(rounds.length);
    expect({ status: run.status, reason: run.statusReason }).toEqual({ status: 'completed', reason: null });
    expect(problems).toEqual([]);
    // The reader ran before, during and after the run: legacy documents first, new ones at the end.
    expect(rounds[0]).toEqual({ legacy: TRADES, new: 0 });
    expect(rounds[rounds.length - 1]).toEqual({ legacy: 0, new: TRADES });
    expect(rounds.length).toBeGreaterThanOrEqual(3);
    // …and in between, while the collection held both shapes.
    expect(rounds.some((round) => round.legacy > 0 && round.new > 0)).toBe(true);
    // The expected data carries the marker: the reader gives the stored v2 document and the upgraded legacy one alike.
    expect([...expected.values()].every((data) => data.schemaVersion === '2.0')).toBe(true);
    // The run put trades in dual-read with the sync trigger on, and left it so (cleanup ends it).
    expect(await getMode(db)).toMatchObject({ mode: 'dual-read', collections: ['trades'], migrations: [tradesV2.id], runId: body.runId });
  });

  it('a legacy-shape write during dual-read is brought to the new shape by the deployed sync trigger, with its before-image', async () => {
    const mode = await getMode(db);
    expect(mode).toMatchObject({ mode: 'dual-read', migrations: [tradesV2.id] });
    const path = `trades/legacy-client-${tag}`;
    const legacy = legacyTrade(7);
    await db.doc(path).set(legacy);

    // Generous: the Functions emulator works through the run's own trigger events (one per migrated trade) first.
    const deadline = Date.now() + 180_000;
    let data = (await db.doc(path).get()).data()!;
    while (data.schemaVersion !== '2.0' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      data = (await db.doc(path).get()).data()!;
    }
    const upgraded = readInNewShape(tradesV2, legacy, { path, id: path.split('/')[1] });
    expect(upgraded.shape).toBe('legacy');
    expect(equal(data, { ...upgraded.data, schemaVersion: '2.0' })).toBe(true);
    expect(data.participants).toEqual({ creator: 'user-7', participant: 'user-0' });
    expect(data.skillsOffered).toEqual([{ id: 'web-design-ux', name: 'Web Design & UX', level: 'expert' }]);
    expect(data.offeredSkills).toEqual(legacy.offeredSkills);

    // The before-image, in the sync run of this dual-read period.
    const syncRuns = (await db.collection(paths.runs(tradesV2.id)).where('sync', '==', true).get()).docs.map((doc) => doc.data() as RunDocument);
    expect(syncRuns.map((run) => run.runId)).toEqual([`sync-${mode.changedAt!.toMillis()}`]);
    const wire = WireClient.forFirestore(db);
    try {
      const [backup] = await wire.batchGet([`${paths.backups(tradesV2.id, syncRuns[0].runId)}/${backupId(path)}`]);
      expect(backup.exists).toBe(true);
      const record = readBackup(backup.exists ? backup.fields : {});
      expect(record.path).toBe(path);
      expect(record.image.values).toEqual({});
      expect([...record.image.absent].sort()).toEqual(['participants', 'schemaVersion', 'skillsOffered', 'skillsWanted']);
    } finally {
      await wire.close();
    }
  });

  it('a legacy edit of a trade the run migrated has its participants derived again by the deployed sync trigger, once', async () => {
    // n = 5: migrated by the run, nobody had joined it.
    const path = tradePath(5);
    const migrated = await db.doc(path).get();
    expect(migrated.get('participants')).toEqual({ creator: 'user-5', participant: null });
    await db.doc(path).update({ participantId: 'user-9' });

    const deadline = Date.now() + 180_000;
    let current = await db.doc(path).get();
    while (current.get('participants.participant') !== 'user-9' && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      current = await db.doc(path).get();
    }
    expect(current.get('participants')).toEqual({ creator: 'user-5', participant: 'user-9' });
    expect(current.get('participantId')).toBe('user-9');
    expect(current.get('schemaVersion')).toBe('2.0');
    expect(current.get('skillsOffered')).toEqual(migrated.get('skillsOffered'));

    const mode = await getMode(db);
    const wire = WireClient.forFirestore(db);
    try {
      const [backup] = await wire.batchGet([`${paths.backups(tradesV2.id, `sync-${mode.changedAt!.toMillis()}`)}/${backupId(path)}`]);
      expect(backup.exists).toBe(true);
      const record = readBackup(backup.exists ? backup.fields : {});
      expect(Object.keys(record.image.values).sort()).toEqual(['participants', 'schemaVersion']);
      expect(record.image.absent).toEqual([]);
    } finally {
      await wire.close();
    }
    // The trigger's own write raised an event as well: it writes nothing more.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    expect((await db.doc(path).get()).updateTime!.isEqual(current.updateTime!)).toBe(true);
  });
});

/** Equal Firestore values, map key order aside (Timestamps by value). */
function equal(a: unknown, b: unknown): boolean {
  if (a instanceof Timestamp || b instanceof Timestamp) return a instanceof Timestamp && b instanceof Timestamp && a.isEqual(b);
  if (Array.isArray(a) || Array.isArray(b)) return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => equal(item, b[i]));
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && equal((a as DocData)[key], (b as DocData)[key]));
  }
  return a === b;
}
