/**
 * The task path's recovery paths, through the API's run requests and the in-process queues:
 * - the circuit breaker: a migration failing 20 % of its documents is emergency-stopped by the
 *   tasks (no more dispatch, state as committed); once its label helper is fixed and the run
 *   resumed, it completes with every document migrated exactly once;
 * - a finalisation that dies in the middle of its final sweep is retried by the queue: the retry
 *   takes its own claim over and sweeps in a fresh partition id, so no batch of the dead
 *   attempt's is mistaken for one of its own and every document left in the old shape migrates.
 */
import { PassThrough } from 'node:stream';
import { FieldPath, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import { z } from 'zod';
import { RunRequests } from '../../functions/src/api/run-requests';
import { createLogger, type Logger } from '../../functions/src/cli/log';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore } from '../../functions/src/control/runs';
import { defineMigration } from '../../functions/src/definitions/define';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { DocData } from '../../functions/src/definitions/types';
import { WireClient } from '../../functions/src/engine/wire/client';
import type { BatchTask } from '../../functions/src/pipeline/batch-payload';
import { handleBatchTask, type BatchTaskOutcome } from '../../functions/src/pipeline/batch-task';
import type { PipelineContext } from '../../functions/src/pipeline/context';
import { handlePlanTask } from '../../functions/src/pipeline/plan-task';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import type { PlanRunTask } from '../../functions/src/transports/task-payloads';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

const DOCS = 600;
const idOf = (n: number) => `i${String(n).padStart(4, '0')}`;
const seededItem = (n: number): DocData => ({ n, name: `thing ${n}` });
const migratedItem = (n: number): DocData => ({ ...seededItem(n), label: `item-thing ${n}`, schemaVersion: '2' });

/**
 * The label service `up()` calls. While it is broken, every fifth item (n divisible by 5) makes
 * it throw. Fixing it is a redeploy of the helper: `up`'s source, hence the definition's
 * checksum, stays the same, so the API lets the run resume (checksum.ts: helpers are not part of it).
 */
const labelService = {
  broken: false,
  label(doc: DocData): string {
    if (this.broken && (doc.n as number) % 5 === 0) throw new Error('label service unavailable');
    return `item-${doc.name as string}`;
  },
};

const itemsV2 = defineMigration({
  id: 'items-v2',
  version: '2',
  description: 'items get a label',
  target: { collection: 'items' },
  marker: { field: 'schemaVersion', from: null, to: '2' },
  from: z.object({ n: z.number().int(), name: z.string() }),
  to: z.object({ n: z.number().int(), name: z.string(), label: z.string(), schemaVersion: z.literal('2') }),
  up: (doc) => ({ label: labelService.label(doc) }),
});

/**
 * The Firestore v1 client, with one fault: once armed, the next scan that selects the marker field
 * fails after `failAfter` documents. Armed after the first batch, that scan is the final sweep's
 * (planning's survey selects the marker too), as when the finalising instance dies in the middle
 * of its sweep. Every other call, and that one up to the fault, is the real client's.
 */
class SweepFailingWire extends WireClient {
  armed = false;
  failAfter = 50;

  override runQuery(...args: Parameters<WireClient['runQuery']>): ReturnType<WireClient['runQuery']> {
    const call = super.runQuery(...args);
    const fields = args[0]?.structuredQuery?.select?.fields?.map((field) => field.fieldPath) ?? [];
    if (!this.armed || !fields.includes(itemsV2.marker.field)) return call;
    this.armed = false;
    const faulty = new PassThrough({ objectMode: true });
    let documents = 0;
    call.on('data', (response: { document?: unknown }) => {
      if (response.document && ++documents > this.failAfter) {
        faulty.destroy(new Error('simulated: the finalising instance died in the middle of the final sweep'));
        call.cancel();
        return;
      }
      faulty.write(response);
    });
    call.on('end', () => faulty.end());
    call.on('error', (error: Error) => faulty.destroy(error));
    return Object.assign(faulty, { cancel: () => call.cancel() }) as unknown as ReturnType<WireClient['runQuery']>;
  }
}

interface Delivered {
  partition: string;
  seq: number;
  outcome: BatchTaskOutcome | 'threw';
}

describeEmulator('Cloud Functions pipeline: circuit breaker and finalisation retry on the task path', () => {
  const projectId = 'demo-pipeline-recovery';
  const db = testFirestore(projectId);
  const wire = new SweepFailingWire({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  const config = emulatorConfig({
    MIGRATION_BATCH_SIZE: '20',
    MIGRATION_CONCURRENT_BATCHES: '3',
    MIGRATION_EMERGENCY_WINDOW: '100',
  });
  const registry = createRegistry([itemsV2]);
  const actor = { user: 'pipeline-tester', identity: 'firebase-auth/u1', uid: 'u1' };
  const runs = new RunStore(db, paths);
  const logLines: string[] = [];

  beforeEach(async () => {
    await resetProject(projectId);
    logLines.length = 0;
    labelService.broken = false;
    wire.armed = false;
    const writer = db.bulkWriter();
    for (let n = 0; n < DOCS; n++) void writer.create(db.doc(`items/${idOf(n)}`), seededItem(n));
    await writer.close();
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  function pipeline(afterBatch?: (task: BatchTask, outcome: BatchTaskOutcome) => Promise<void>) {
    const delivered: Delivered[] = [];
    const options = { concurrency: 3, maxAttempts: 5, minBackoffMs: 10, maxBackoffMs: 100 };
    const log: Logger = createLogger({ format: 'json', write: (line) => logLines.push(line), minSeverity: 'DEBUG' });
    const batchQueue = new InProcessTaskQueue<BatchTask>(async (task) => {
      // Three batches per task: the delivery's clock advances 1 s per reading, the budget is 2.5 s.
      let reading = 0;
      let outcome: BatchTaskOutcome;
      try {
        outcome = await handleBatchTask(ctx, task, { timeMs: 2500, now: () => 1000 * reading++ });
      } catch (error) {
        delivered.push({ partition: task.partition, seq: task.seq, outcome: 'threw' });
        throw error;
      }
      delivered.push({ partition: task.partition, seq: task.seq, outcome });
      await afterBatch?.(task, outcome);
    }, options);
    const ctx: PipelineContext = { db, wire, config, paths, registry, batchQueue, lease: { ttlMs: 60_000, renewEveryMs: 20_000 }, log };
    const planQueue = new InProcessTaskQueue<PlanRunTask>(async (task) => {
      await handlePlanTask(ctx, task);
    }, options);
    const requests = new RunRequests({ db, paths, registry, config, planQueue });
    const settle = async () => {
      await planQueue.idle();
      await batchQueue.idle();
      expect(planQueue.givenUp).toEqual([]);
      expect(batchQueue.givenUp).toEqual([]);
    };
    return { requests, delivered, settle };
  }

  async function items(): Promise<Map<string, DocData>> {
    const snapshot = await db.collection('items').orderBy(FieldPath.documentId()).get();
    return new Map(snapshot.docs.map((doc) => [doc.id, doc.data()]));
  }

  async function collection(path: string): Promise<DocData[]> {
    return (await db.collection(path).get()).docs.map((doc: QueryDocumentSnapshot) => ({ id: doc.id, ...doc.data() }));
  }

  /** Every item migrated once: as `up()` derives it, one before-image each, the markers' migrated adding up to the items. */
  async function expectEveryItemMigratedOnce(runId: string, itemIds: Map<string, number>): Promise<DocData[]> {
    const stored = await items();
    expect(stored.size).toBe(itemIds.size);
    for (const [id, n] of itemIds) expect({ id, data: stored.get(id) }).toEqual({ id, data: migratedItem(n) });
    const backups = await collection(paths.backups(itemsV2.id, runId));
    expect(backups.map((backup) => backup.path).sort()).toEqual([...itemIds.keys()].map((id) => `items/${id}`).sort());
    const markers = await collection(paths.batches(itemsV2.id, runId));
    expect(markers.reduce((sum, marker) => sum + (marker.migrated as number), 0)).toBe(itemIds.size);
    return markers;
  }

  it('the tasks trip the circuit breaker at 20 % failures; after the fix, the resumed run completes exactly', async () => {
    labelService.broken = true;
    const { requests, delivered, settle } = pipeline();
    const { run } = await requests.start({ migrationId: itemsV2.id, execute: true, reason: 'breaker', actor });
    await settle();

    const stopped = await runs.get(itemsV2.id, run.runId);
    expect(stopped.status).toBe('emergency_stopped');
    expect(stopped.statusReason).toMatch(/^circuit breaker: failure rate 2\d(\.\d)? % \(\d+ of the last \d+ documents\) is above MIGRATION_EMERGENCY_THRESHOLD 10 %$/);
    const trip = (stopped as unknown as { breaker: { rate: number; sample: number; threshold: number; window: number } }).breaker;
    expect(trip.rate).toBeGreaterThan(0.1);
    expect(trip.sample).toBeGreaterThanOrEqual(100);
    expect(trip).toMatchObject({ threshold: 0.1, window: 100 });
    expect(delivered.filter((entry) => entry.outcome === 'emergency-stopped').length).toBeGreaterThanOrEqual(1);
    expect(delivered.filter((entry) => entry.outcome === 'threw')).toEqual([]);

    // State as committed: each item untouched, or migrated with its before-image, or failed with a record.
    const markers = await collection(paths.batches(itemsV2.id, run.runId));
    const migratedByMarkers = markers.reduce((sum, marker) => sum + (marker.migrated as number), 0);
    const failedByMarkers = markers.reduce((sum, marker) => sum + (marker.failed as number), 0);
    expect(migratedByMarkers + failedByMarkers).toBeLessThan(DOCS / 2);
    const stored = await items();
    const backups = new Set((await collection(paths.backups(itemsV2.id, run.runId))).map((backup) => backup.path));
    const failures = new Set((await collection(paths.failures(itemsV2.id, run.runId))).map((failure) => failure.path));
    let migrated = 0;
    for (let n = 0; n < DOCS; n++) {
      const path = `items/${idOf(n)}`;
      if (backups.has(path)) {
        migrated++;
        expect({ n, data: stored.get(idOf(n)) }).toEqual({ n, data: migratedItem(n) });
      } else {
        expect({ n, data: stored.get(idOf(n)) }).toEqual({ n, data: seededItem(n) });
        if (failures.has(path)) expect(n % 5).toBe(0);
      }
    }
    expect(migrated).toBe(migratedByMarkers);
    expect(failures.size).toBe(failedByMarkers);
    expect(failures.size).toBeGreaterThan(0);

    // Fixed: resumed through the API, the tasks of the new session start a new breaker window.
    labelService.broken = false;
    const resumed = await requests.resume(run.runId, 'label service fixed', actor);
    expect(resumed.previousStatus).toBe('emergency_stopped');
    await settle();
    const done = await runs.get(itemsV2.id, run.runId);
    expect({ status: done.status, reason: done.statusReason }).toEqual({ status: 'completed', reason: null });
    const all = new Map(Array.from({ length: DOCS }, (_, n) => [idOf(n), n] as const));
    const finalMarkers = await expectEveryItemMigratedOnce(run.runId, all);
    // The items that failed before the stop were retried by the final sweep of session 1.
    const swept = finalMarkers.filter((marker) => (marker.id as string).startsWith('sweep1-'));
    expect(swept.reduce((sum, marker) => sum + (marker.migrated as number), 0)).toBe(failures.size);
    const actions = (await new AuditLog(db, paths).forRun(run.runId)).map((event) => event.action).filter((action) => action.startsWith('run.'));
    expect(actions).toEqual(['run.requested', 'run.started', 'run.stopped', 'run.resumed', 'run.completed']);
  });

  it('a finalisation that dies mid-sweep is retried and sweeps in a fresh partition id, migrating every document left', async () => {
    // The app creates 100 items in the old shape behind every partition's cursor (ids before i0000).
    const extra = new Map(Array.from({ length: 100 }, (_, k) => [`a${String(k).padStart(4, '0')}`, DOCS + k] as const));
    let created = false;
    const { requests, delivered, settle } = pipeline(async (task, outcome) => {
      if (created || task.partition !== 'p0000' || outcome !== 'committed') return;
      created = true;
      wire.armed = true;
      const batch = db.batch();
      for (const [id, n] of extra) batch.create(db.doc(`items/${id}`), seededItem(n));
      await batch.commit();
    });
    const { run } = await requests.start({ migrationId: itemsV2.id, execute: true, reason: 'finalisation retry', actor });
    await settle();
    expect(created).toBe(true);
    expect(wire.armed).toBe(false);

    // One delivery threw in its finalisation; its retry (the same task) finalised the run.
    const threw = delivered.filter((entry) => entry.outcome === 'threw');
    expect(threw).toHaveLength(1);
    const retried = delivered.filter((entry) => entry.partition === threw[0].partition && entry.seq === threw[0].seq).map((entry) => entry.outcome);
    expect(retried).toEqual(['threw', 'stale']);
    expect(logLines.some((line) => line.includes('finalisation attempt 2 takes over attempt 1'))).toBe(true);

    const done = await runs.get(itemsV2.id, run.runId);
    expect({ status: done.status, reason: done.statusReason }).toEqual({ status: 'completed', reason: null });
    const all = new Map([...Array.from({ length: DOCS }, (_, n) => [idOf(n), n] as const), ...extra]);
    const markers = await expectEveryItemMigratedOnce(run.runId, all);
    // Attempt 1 committed its first sweep batches (20 old-shape items each) before it died; attempt 2 swept the rest under its own id.
    const sweepOf = (prefix: string) => markers.filter((marker) => (marker.id as string).startsWith(prefix));
    const first = sweepOf('sweep0-');
    const second = sweepOf('sweep0a2-');
    expect(first.length).toBeGreaterThanOrEqual(1);
    expect(first.every((marker) => marker.migrated === 20)).toBe(true);
    expect(second.length).toBeGreaterThanOrEqual(1);
    expect([...first, ...second].reduce((sum, marker) => sum + (marker.migrated as number), 0)).toBe(extra.size);
    expect(done.sweep).toMatchObject({ migrated: extra.size - 20 * first.length });
    const actions = (await new AuditLog(db, paths).forRun(run.runId)).map((event) => event.action).filter((action) => action.startsWith('run.'));
    expect(actions).toEqual(['run.requested', 'run.started', 'run.completed']);
  });
});
