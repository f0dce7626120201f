import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { CollectionReference, Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import { loadConfig } from '../../functions/src/config';
import { defineMigration } from '../../functions/src/definitions/define';
import { skip } from '../../functions/src/definitions/results';
import type { DocData } from '../../functions/src/definitions/types';
import { DemoDataset, seedDemoData, type DemoManifest } from '../../functions/src/demo/seed-data';
import { valuesEqual } from '../../functions/src/engine/document-diff';
import { streamDocuments } from '../../functions/src/engine/key-stream';
import { planMigration, type PlanReport } from '../../functions/src/engine/planner';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import { describeEmulator, emulatorHost, resetProject, testFirestore } from '../support/emulator';

const config = loadConfig({});
const ROOT = join(__dirname, '..', '..');

/** Every collection and document of the project, recursively: path → update time and data. */
async function dumpProject(db: Firestore): Promise<{ collections: string[]; documents: Map<string, { updateTime: string; data: DocData }> }> {
  const collections: string[] = [];
  const documents = new Map<string, { updateTime: string; data: DocData }>();
  const walk = async (level: CollectionReference[]): Promise<void> => {
    for (const collection of level) {
      collections.push(collection.path);
      const refs = await collection.listDocuments(); // includes parents that exist only through subcollections
      for (let i = 0; i < refs.length; i += 100) {
        const chunk = refs.slice(i, i + 100);
        const [snapshots, children] = await Promise.all([db.getAll(...chunk), Promise.all(chunk.map((ref) => ref.listCollections()))]);
        for (const snapshot of snapshots) {
          if (snapshot.exists) documents.set(snapshot.ref.path, { updateTime: snapshot.updateTime!.toDate().toISOString() + snapshot.updateTime!.nanoseconds, data: snapshot.data()! });
        }
        await walk(children.flat());
      }
    }
  };
  await walk(await db.listCollections());
  return { collections: collections.sort(), documents };
}

function expectSameDump(before: Awaited<ReturnType<typeof dumpProject>>, after: Awaited<ReturnType<typeof dumpProject>>): void {
  expect(after.collections).toEqual(before.collections);
  expect([...after.documents.keys()].sort()).toEqual([...before.documents.keys()].sort());
  for (const [path, entry] of before.documents) {
    const now = after.documents.get(path)!;
    expect({ path, updateTime: now.updateTime }).toEqual({ path, updateTime: entry.updateTime });
    expect({ path, same: valuesEqual(now.data, entry.data) }).toEqual({ path, same: true });
  }
}

/** Paths of the demo trades and conversations by case, computed from the generator (ids do not depend on `now`). */
function demoPaths(docs: number, seed: number) {
  const dataset = new DemoDataset({ docs, seed });
  const trades = { missingCreator: [] as string[], skillsNotArray: [] as string[] };
  const conversations = { participantWithoutId: [] as string[] };
  for (const trade of dataset.trades()) {
    if (trade.case.kind === 'missingCreator') trades.missingCreator.push(`trades/${trade.id}`);
    if (trade.case.kind === 'skillsNotArray') trades.skillsNotArray.push(`trades/${trade.id}`);
  }
  for (const conversation of dataset.conversations()) {
    if (conversation.case.kind === 'participantWithoutId') conversations.participantWithoutId.push(`conversations/${conversation.id}`);
  }
  return { trades, conversations };
}

describeEmulator('dry-run planner', () => {
  const projectId = 'demo-plan';
  const db = testFirestore(projectId);
  afterAll(() => db.terminate());

  describe('on the TradeYa demo data (400 trades, seed 7)', () => {
    let manifest: DemoManifest;
    let before: Awaited<ReturnType<typeof dumpProject>>;
    let trades: PlanReport;
    let conversations: PlanReport;
    const paths = demoPaths(400, 7);

    beforeAll(async () => {
      await resetProject(projectId);
      manifest = await seedDemoData(db, { docs: 400, seed: 7 });
      before = await dumpProject(db);
      trades = await planMigration(db, tradesV2, config);
      conversations = await planMigration(db, conversationsV2, config, { sampleSize: 5 });
    }, 300_000);

    it('counts trades exactly as the manifest says, case by case', () => {
      const malformed = manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray;
      expect(manifest.trades.malformed.missingCreator).toBeGreaterThan(0);
      expect(manifest.trades.malformed.skillsNotArray).toBeGreaterThan(0);
      expect(manifest.trades.skills.strings).toBeGreaterThan(0);
      expect(manifest.trades.skills.objects).toBeGreaterThan(0);
      expect(trades.counts).toEqual({
        total: manifest.trades.total,
        migrate: manifest.trades.legacy,
        alreadyAtTarget: manifest.trades.alreadyV2,
        skipped: 0,
        fail: malformed,
      });
      expect(trades.failures).toHaveLength(1);
      const [failure] = trades.failures;
      expect(failure.errorClass).toBe('invalid-source');
      expect(failure.count).toBe(malformed);
      expect([...failure.paths].sort()).toEqual([...paths.trades.missingCreator, ...paths.trades.skillsNotArray].sort());
      const count = (field: string) => failure.messages.filter((m) => m.message.includes(field)).reduce((sum, m) => sum + m.count, 0);
      expect(count('creatorId')).toBe(manifest.trades.malformed.missingCreator);
      expect(count('offeredSkills')).toBe(manifest.trades.malformed.skillsNotArray);
      for (const message of failure.messages) {
        const expected = message.message.includes('creatorId') ? paths.trades.missingCreator : paths.trades.skillsNotArray;
        expect(expected).toContain(message.firstPath);
      }
    });

    it('counts conversations exactly as the manifest says', () => {
      expect(conversations.counts).toEqual({
        total: manifest.conversations.total,
        migrate: manifest.conversations.legacy,
        alreadyAtTarget: manifest.conversations.alreadyV2,
        skipped: 0,
        fail: manifest.conversations.malformed.participantWithoutId,
      });
      expect(conversations.failures.map((f) => [f.errorClass, [...f.paths].sort()])).toEqual([
        ['invalid-source', [...paths.conversations.participantWithoutId].sort()],
      ]);
    });

    it('shows the changes of sample documents as field names and types, of different shapes', async () => {
      expect(trades.samples).toHaveLength(3);
      const lines = trades.samples.map((sample) => sample.changes.map((c) => `${c.kind} ${c.path.join('.')}: ${c.afterType}`));
      for (const sample of lines) {
        expect(sample).toEqual(
          expect.arrayContaining(['added skillsOffered: array<map>', 'added skillsWanted: array<map>', 'added participants.creator: string', 'added schemaVersion: string']),
        );
      }
      // the demo has trades with and without a participant: both shapes are sampled
      const participantTypes = new Set(lines.flat().filter((line) => line.startsWith('added participants.participant')));
      expect(participantTypes).toEqual(new Set(['added participants.participant: string', 'added participants.participant: null']));
      for (const sample of trades.samples) {
        const source = (await db.doc(sample.path).get()).data()!;
        expect(source.schemaVersion).toBeUndefined();
        expect(Array.isArray(source.offeredSkills)).toBe(true);
      }
      expect(conversations.samples).toHaveLength(5);
    });

    it('shows no document value without --show-values, and the values with it', async () => {
      const secrets: string[] = [];
      for (const sample of trades.samples) {
        const data = (await db.doc(sample.path).get()).data()!;
        secrets.push(data.creatorId, data.title);
        for (const skill of data.offeredSkills) secrets.push(typeof skill === 'string' ? skill : skill.name);
      }
      const hidden = JSON.stringify(trades);
      for (const secret of secrets) expect(hidden).not.toContain(secret);

      const shown = await planMigration(db, tradesV2, config, { showValues: true });
      expect(shown.counts).toEqual(trades.counts);
      for (const sample of shown.samples) {
        const data = (await db.doc(sample.path).get()).data()!;
        const creator = sample.changes.find((c) => c.path.join('.') === 'participants.creator');
        expect(creator?.after).toBe(JSON.stringify(data.creatorId));
        expect(sample.changes.find((c) => c.path.join('.') === 'schemaVersion')?.after).toBe('"2.0"');
      }
    });

    it('lists at most the path limit per failure class while the count stays exact', async () => {
      const capped = await planMigration(db, tradesV2, config, { failurePathLimit: 3, sampleSize: 0 });
      expect(capped.failures[0].count).toBe(trades.failures[0].count);
      expect(capped.failures[0].paths).toEqual(trades.failures[0].paths.slice(0, 3));
      expect(capped.samples).toEqual([]);
    });

    it('estimates production reads, writes and ramp duration from the counts', () => {
      const { estimate, counts } = trades;
      expect(estimate.reads).toBe(counts.total);
      expect(estimate.writes.updates).toBe(counts.migrate);
      expect(estimate.writes.beforeImages).toBe(counts.migrate);
      expect(estimate.writes.batchMarkers).toBe(Math.ceil(counts.migrate / config.migration.batchSize));
      expect(estimate.writes.failureRecords).toBe(counts.fail);
      expect(estimate.durationSeconds).toBeCloseTo(estimate.writes.total / (500 * config.migration.quotaSafety), 6);
    });

    it('wrote nothing at all: same collections, same documents, same update times; no control collection', async () => {
      const after = await dumpProject(db);
      expectSameDump(before, after);
      expect(after.collections).toEqual(['conversations', 'trades', 'users']);
      expect((await db.collection(config.migration.controlCollection).limit(1).get()).empty).toBe(true);
    });
  });

  it('honours collection-group targets and their filters, and reports skip reasons', async () => {
    await resetProject(projectId);
    const items = {
      'shops/a/items/1': { name: 'lamp', status: 'open' },
      'shops/a/items/2': { name: 'desk', status: 'open' },
      'shops/b/items/3': { name: 'chair', status: 'open' },
      'items/4': { name: 'rug', status: 'open' },
      'shops/a/other/5': { name: 'vase', status: 'open' },
      'shops/a/items/6': { name: 'sofa', status: 'closed' },
      'shops/b/items/7': { name: 'bed', status: 'open', label: 'BED', v: '2' },
      'items/8': { name: 'skip-me', status: 'open' },
      'items/9': { status: 'open' },
    };
    await Promise.all(Object.entries(items).map(([path, data]) => db.doc(path).set(data)));
    const definition = {
      id: 'test-items-v2',
      version: '1.0',
      description: 'labels open items',
      marker: { field: 'v', from: null, to: '2' },
      from: z.looseObject({ name: z.string(), status: z.string() }),
      to: z.looseObject({ name: z.string(), label: z.string(), v: z.literal('2') }),
      up: (doc: DocData) => (doc.name === 'skip-me' ? skip('not for sale') : { label: String(doc.name).toUpperCase() }),
    };
    const group = defineMigration({ ...definition, target: { collectionGroup: 'items', where: [{ field: 'status', op: '==', value: 'open' }] } });
    const report = await planMigration(db, group, config);
    expect(report.target).toEqual({ kind: 'collectionGroup', name: 'items', where: [{ field: 'status', op: '==', value: 'open' }] });
    expect(report.counts).toEqual({ total: 7, migrate: 4, alreadyAtTarget: 1, skipped: 1, fail: 1 });
    expect(report.skipReasons).toEqual([{ reason: 'not for sale', count: 1 }]);
    expect(report.failures.map((f) => [f.errorClass, f.paths])).toEqual([['invalid-source', ['items/9']]]);
    expect(report.samples).toHaveLength(3);
    for (const sample of report.samples) {
      expect(['shops/a/items/1', 'shops/a/items/2', 'shops/b/items/3', 'items/4']).toContain(sample.path);
      expect(sample.changes.map((c) => `${c.kind} ${c.path.join('.')}: ${c.afterType}`)).toEqual(['added label: string', 'added v: string']);
    }

    const nested = defineMigration({ ...definition, id: 'test-shop-a-items', target: { collection: 'shops/a/items', where: [{ field: 'status', op: '==', value: 'open' }] } });
    const nestedReport = await planMigration(db, nested, config);
    expect(nestedReport.counts).toEqual({ total: 2, migrate: 2, alreadyAtTarget: 0, skipped: 0, fail: 0 });
  });

  describe('streamDocuments', () => {
    beforeAll(async () => {
      await resetProject(projectId);
      const batch = db.batch();
      for (let n = 0; n < 250; n++) batch.set(db.doc(`numbers/d${String(n).padStart(3, '0')}`), { n, text: 'old' });
      await batch.commit();
    });

    const ids = async (documents: AsyncIterable<{ id: string }>) => {
      const seen: string[] = [];
      for await (const document of documents) seen.push(document.id);
      return seen;
    };
    const expected = (from: number, to = 250) => Array.from({ length: to - from }, (_, i) => `d${String(from + i).padStart(3, '0')}`);

    it('reads every document once, in key order, across restarts and stream limits', async () => {
      expect(await ids(streamDocuments(db.collection('numbers'), { restartEveryMs: 1 }))).toEqual(expected(0));
      expect(await ids(streamDocuments(db.collection('numbers'), { maxDocumentsPerStream: 40 }))).toEqual(expected(0));
      expect(await ids(streamDocuments(db.collection('numbers'), { maxDocumentsPerStream: 50 }))).toEqual(expected(0));
    });

    it('releases the query when the consumer stops early, so the client can terminate', async () => {
      const own = testFirestore(projectId);
      let read = 0;
      for await (const document of streamDocuments(own.collection('numbers'))) {
        expect(document.id).toBe('d000');
        if (++read === 1) break;
      }
      const started = Date.now();
      await own.terminate();
      expect(Date.now() - started).toBeLessThan(10_000);
    });

    it('resumes a range-filtered query from its cursor across restarts', async () => {
      const query = db.collection('numbers').where('n', '>=', 100);
      expect(await ids(streamDocuments(query, { restartEveryMs: 1 }))).toEqual(expected(100));
    });

    it('starts after a document reference (a checkpoint) or a snapshot', async () => {
      expect(await ids(streamDocuments(db.collection('numbers'), { startAfter: db.doc('numbers/d199') }))).toEqual(expected(200));
      const snapshot = (await db.collection('numbers').where('n', '==', 240).get()).docs[0];
      expect(await ids(streamDocuments(db.collection('numbers'), { startAfter: snapshot }))).toEqual(expected(241));
    });

    it('reads a document changed while it paused with its new value once the stream restarted', async () => {
      const seen = new Map<string, unknown>();
      let changed = false;
      for await (const document of streamDocuments(db.collection('numbers'), { restartEveryMs: 100 })) {
        seen.set(document.id, document.get('text'));
        if (!changed) {
          changed = true;
          await db.doc('numbers/d200').update({ text: 'new' });
          await new Promise((resolve) => setTimeout(resolve, 150));
        }
      }
      expect(seen.size).toBe(250);
      expect(seen.get('d200')).toBe('new');
      await db.doc('numbers/d200').update({ text: 'old' });
    });
  });

  describe('memory', () => {
    /**
     * Plans 2k and then 20k trades, each in a fresh child process, sampling memory during the
     * plan. The planner keeps counters, ≤ 3 samples, ≤ 20 paths per failure class and the
     * stream's small buffer, so the live heap (measured right after a forced GC) and RSS must
     * not grow with the collection: we allow 10 MB of live heap and 40 MB of RSS for 10× the
     * documents (allocator and GC noise). As a control, the same child holding every document
     * (`collection.get()`) grows by far more than the allowance — so the measure can fail.
     */
    const CHILD = `
      const { createJiti } = require('jiti');
      const jiti = createJiti(${JSON.stringify(join(ROOT, 'functions/src/'))});
      (async () => {
        const [projectId, mode] = process.argv.slice(1);
        const { Firestore } = require('@google-cloud/firestore');
        const { planMigration } = await jiti.import('./engine/planner.ts');
        const { loadConfig } = await jiti.import('./config.ts');
        const { tradesV2 } = await jiti.import('./migrations/tradeya/trades.ts');
        const db = new Firestore({ projectId, host: process.env.FIRESTORE_EMULATOR_HOST, ssl: false });
        await db.collection('trades').limit(1).get();
        global.gc(); global.gc();
        const base = process.memoryUsage();
        let peakRss = base.rss, peakLive = base.heapUsed, ticks = 0;
        const sample = () => {
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
          if (++ticks % 10 === 0) { global.gc(); peakLive = Math.max(peakLive, process.memoryUsage().heapUsed); }
        };
        const timer = setInterval(sample, 20);
        let total, held;
        if (mode === 'hold-all') { held = (await db.collection('trades').get()).docs; total = held.length; }
        else total = (await planMigration(db, tradesV2, loadConfig({}))).counts.total;
        global.gc(); sample(); peakLive = Math.max(peakLive, process.memoryUsage().heapUsed);
        clearInterval(timer);
        process.stdout.write(JSON.stringify({ total, liveGrowth: peakLive - base.heapUsed, rssGrowth: peakRss - base.rss, held: held ? held.length : 0 }));
        await db.terminate();
      })().catch((error) => { console.error(error); process.exit(1); });`;

    async function measure(project: string, mode: 'plan' | 'hold-all') {
      const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', '-e', CHILD, project, mode], {
        cwd: ROOT,
        env: { ...process.env, FIRESTORE_EMULATOR_HOST: emulatorHost(), METADATA_SERVER_DETECTION: 'none' },
        maxBuffer: 1 << 20,
      });
      return JSON.parse(stdout) as { total: number; liveGrowth: number; rssGrowth: number };
    }

    async function seedTrades(target: Firestore, docs: number): Promise<void> {
      const inFlight: Promise<unknown>[] = [];
      let batch = target.batch();
      let size = 0;
      for (const trade of new DemoDataset({ docs, seed: 5 }).trades()) {
        batch.set(target.collection('trades').doc(trade.id), trade.data);
        if (++size === 500) {
          inFlight.push(batch.commit());
          batch = target.batch();
          size = 0;
          if (inFlight.length >= 8) await Promise.all(inFlight.splice(0));
        }
      }
      if (size > 0) inFlight.push(batch.commit());
      await Promise.all(inFlight);
    }

    it('stays flat from 2k to 20k documents', async () => {
      const small = testFirestore('demo-plan-memory-2k');
      const large = testFirestore('demo-plan-memory-20k');
      try {
        await Promise.all([resetProject('demo-plan-memory-2k'), resetProject('demo-plan-memory-20k')]);
        await seedTrades(small, 2000);
        await seedTrades(large, 20_000);
        const planSmall = await measure('demo-plan-memory-2k', 'plan');
        const planLarge = await measure('demo-plan-memory-20k', 'plan');
        const holdLarge = await measure('demo-plan-memory-20k', 'hold-all');
        const MB = 1024 * 1024;
        const report = { planSmall, planLarge, holdLarge };
        expect([planSmall.total, planLarge.total, holdLarge.total]).toEqual([2000, 20_000, 20_000]);
        expect({ report, liveGrowth: planLarge.liveGrowth - planSmall.liveGrowth < 10 * MB }).toEqual({ report, liveGrowth: true });
        expect({ report, rssGrowth: planLarge.rssGrowth - planSmall.rssGrowth < 40 * MB }).toEqual({ report, rssGrowth: true });
        // the control: keeping the documents is caught by the same allowance
        expect({ report, control: holdLarge.liveGrowth - planSmall.liveGrowth > 10 * MB }).toEqual({ report, control: true });
      } finally {
        await Promise.all([small.terminate(), large.terminate()]);
        await Promise.all([resetProject('demo-plan-memory-2k'), resetProject('demo-plan-memory-20k')]);
      }
    }, 600_000);
  });
});
