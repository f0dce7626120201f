import { isDeepStrictEqual } from 'node:util';
import type { DocumentData, Timestamp } from '@google-cloud/firestore';
import { AuditLog } from '../../functions/src/control/audit';
import { markerId, PartitionStore } from '../../functions/src/control/partitions';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RegistryEntry } from '../../functions/src/control/registry-store';
import { RunStore, type RunDocument } from '../../functions/src/control/runs';
import { RunRequests } from '../../functions/src/api/run-requests';
import { createLogger } from '../../functions/src/cli/log';
import { createRegistry } from '../../functions/src/definitions/registry';
import { seedDemoData, type DemoManifest } from '../../functions/src/demo/seed-data';
import { WireClient } from '../../functions/src/engine/wire/client';
import { projectMigrations } from '../../functions/src/migrations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import type { BatchTask } from '../../functions/src/pipeline/batch-payload';
import { handleBatchTask, type BatchTaskOutcome, type TaskBudget } from '../../functions/src/pipeline/batch-task';
import type { PipelineContext } from '../../functions/src/pipeline/context';
import { handlePlanTask } from '../../functions/src/pipeline/plan-task';
import { alertEventsPath, handleMigrationAlert, type AlertOutcome } from '../../functions/src/pipeline/alert-stop';
import { runHealthCheck, type StoredHealthSnapshot } from '../../functions/src/monitor/health-run';
import { InProcessAlertBus } from '../../functions/src/transports/in-process-alert-bus';
import { TOPICS } from '../../functions/src/transports/names';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import type { RollbackTask } from '../../functions/src/pipeline/rollback-payload';
import type { PlanRunTask } from '../../functions/src/transports/task-payloads';
import type { Task, TaskDelivery, TaskQueue } from '../../functions/src/transports/task-queue';
import { expectDemoTradesMigratedOnce } from '../support/demo-trades';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

/**
 * A wrapper of the batch queue that, between `hold()` and `release()` (and always for the tasks
 * `holdIf` picks), keeps the tasks enqueued instead of handing them to the queue: a test takes the
 * pipeline to a point with nothing in flight, then delivers what it holds itself.
 */
function holdingQueue(holdIf: (task: BatchTask) => boolean = () => false) {
  const held: Array<Task<BatchTask>> = [];
  let holding = false;
  return {
    held,
    hold: () => {
      holding = true;
    },
    /** From now on, tasks go to the queue again. */
    release: () => {
      holding = false;
    },
    wrap: (queue: TaskQueue<BatchTask>): TaskQueue<BatchTask> => ({
      enqueue: async (task, options) => {
        if (!holding && !holdIf(task.payload)) return queue.enqueue(task, options);
        held.push(task);
        return 'enqueued';
      },
    }),
  };
}

/** A batch queue that only records what a handler enqueues on it. */
function recordingQueue() {
  const enqueued: Array<Task<BatchTask>> = [];
  const queue: TaskQueue<BatchTask> = {
    enqueue: async (task) => {
      enqueued.push(task);
      return 'enqueued';
    },
  };
  return { enqueued, queue };
}

interface StoredDocument {
  updateTime: Timestamp;
  data: DocumentData;
}

interface Delivered {
  partition: string;
  seq: number;
  /** Order in which the handler calls started. */
  started: number;
  outcome: BatchTaskOutcome | 'threw';
}

describeEmulator('Cloud Functions pipeline: plan and batch task handlers on the in-process queue', () => {
  const projectId = 'demo-pipeline';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '40', MIGRATION_CONCURRENT_BATCHES: '3' });
  const registry = createRegistry(projectMigrations);
  const seeded = { docs: 1600, seed: 11, now: new Date('2026-11-01T10:00:00Z') };
  const actor = { user: 'pipeline-tester', identity: 'firebase-auth/u1', uid: 'u1' };
  const logLines: string[] = [];
  let manifest: DemoManifest;

  beforeEach(async () => {
    await resetProject(projectId);
    logLines.length = 0;
    manifest = await seedDemoData(db, seeded);
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  /**
   * The two queues and the handlers, as the deployed functions wire them; `hooks` see each batch
   * delivery (to pause, duplicate or crash) and may wrap the queue the handlers enqueue onto.
   */
  function pipeline(hooks: {
    afterBatch?: (task: BatchTask, outcome: BatchTaskOutcome, delivery: TaskDelivery) => Promise<void> | void;
    wrapBatchQueue?: (queue: TaskQueue<BatchTask>) => TaskQueue<BatchTask>;
    /** Each delivery's time budget; default one batch per task. */
    budget?: () => TaskBudget;
  } = {}) {
    const delivered: Delivered[] = [];
    let starts = 0;
    const options = { concurrency: 3, maxAttempts: 5, minBackoffMs: 10, maxBackoffMs: 100 };
    const batchQueue: InProcessTaskQueue<BatchTask> = new InProcessTaskQueue<BatchTask>(async (task, delivery) => {
      let outcome: BatchTaskOutcome;
      const started = starts++;
      try {
        outcome = await handleBatchTask(ctx, task, hooks.budget?.() ?? { timeMs: 0 });
      } catch (error) {
        delivered.push({ partition: task.partition, seq: task.seq, started, outcome: 'threw' });
        throw error;
      }
      delivered.push({ partition: task.partition, seq: task.seq, started, outcome });
      await hooks.afterBatch?.(task, outcome, delivery);
    }, options);
    const ctx: PipelineContext = {
      db,
      wire,
      config,
      paths,
      registry,
      batchQueue: hooks.wrapBatchQueue ? hooks.wrapBatchQueue(batchQueue) : batchQueue,
      lease: { ttlMs: 60_000, renewEveryMs: 20_000 },
      log: createLogger({ format: 'json', write: (line) => logLines.push(line), minSeverity: 'DEBUG' }),
    };
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
    return { ctx, batchQueue, planQueue, requests, delivered, settle, startedSoFar: () => starts };
  }

  async function expectCompleted(runId: string, audit: string[] = ['run.requested', 'run.started', 'run.completed']): Promise<void> {
    const run = await new RunStore(db, paths).get(tradesV2.id, runId);
    expect(run.status).toBe('completed');
    expect(run.statusReason).toBeNull();
    expect(run.lease).toBeNull();
    expect(run.finishedAt).not.toBeNull();
    expect(run.totals?.migrated).toBe(manifest.trades.legacy);
    expect(run.totals?.failed).toBe(manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray);
    expect(run.sweep?.completedAt).not.toBeNull();
    expect(run.sweep?.migrated).toBe(0);
    const entry = (await db.doc(paths.migration(tradesV2.id)).get()).data() as RegistryEntry;
    expect(entry.status).toBe('applied');
    expect(entry.checksum).toBe(tradesV2.checksum);
    expect(entry.appliedBy).toBe(actor.user);
    expect(entry.activeRunId).toBeNull();
    expect(entry.lease).toBeNull();
    const partitions = await new PartitionStore(db, paths).list(tradesV2.id, runId);
    expect(partitions.length).toBe(run.partitionCount);
    expect(partitions.length).toBeGreaterThan(1);
    expect(partitions.map((partition) => partition.status)).toEqual(partitions.map(() => 'exhausted'));
    // The run's own events (the migration mode's changes are recorded beside them).
    const actions = (await new AuditLog(db, paths).forRun(runId)).map((event) => event.action).filter((action) => action.startsWith('run.'));
    expect(actions).toEqual(audit);
  }

  /**
   * Every document a batch delivery of the run could write: the trades, the run and its registry
   * entry, its partitions, markers, before-images and failure records, and the audit trail.
   */
  async function documentsOf(runId: string): Promise<Map<string, StoredDocument>> {
    const stored = new Map<string, StoredDocument>();
    const collections = ['trades', paths.partitions(tradesV2.id, runId), paths.batches(tradesV2.id, runId), paths.backups(tradesV2.id, runId), paths.failures(tradesV2.id, runId), paths.audit()];
    for (const path of collections) {
      for (const doc of (await db.collection(path).get()).docs) stored.set(doc.ref.path, { updateTime: doc.updateTime, data: doc.data() });
    }
    for (const path of [paths.run(tradesV2.id, runId), paths.migration(tradesV2.id)]) {
      const doc = await db.doc(path).get();
      stored.set(path, { updateTime: doc.updateTime!, data: doc.data()! });
    }
    return stored;
  }

  /** The paths created, deleted or written (a new update time, or other data) between two `documentsOf`. */
  function changedPaths(before: Map<string, StoredDocument>, after: Map<string, StoredDocument>): string[] {
    const changed = [...after.keys()].filter((path) => !before.has(path));
    for (const [path, was] of before) {
      const now = after.get(path);
      if (!now || !now.updateTime.isEqual(was.updateTime) || !isDeepStrictEqual(now.data, was.data)) changed.push(path);
    }
    return changed.sort();
  }

  it('migrates every document once and completes the run', async () => {
    const { requests, delivered, settle } = pipeline();
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'pipeline test', actor });
    await settle();
    await expectDemoTradesMigratedOnce(db, seeded, [run.runId]);
    await expectCompleted(run.runId);
    expect(delivered.filter((entry) => entry.outcome === 'threw')).toEqual([]);
  });

  it('a duplicated batch delivery and a retry after a crash between commit and enqueue still migrate every document once', async () => {
    let duplicated: string | null = null;
    let crashed = false;
    let batchQueue: InProcessTaskQueue<BatchTask> | undefined;
    const { requests, delivered, settle, batchQueue: queue } = pipeline({
      afterBatch: (task, outcome, delivery) => {
        if (duplicated === null && task.partition === 'p0000' && task.seq === 2 && outcome === 'committed') {
          duplicated = delivery.id;
          batchQueue!.deliverAgain(delivery.id);
        }
      },
      wrapBatchQueue: (queue) => ({
        enqueue: async (task, options) => {
          // The handler of p0001 seq 4 committed its batch; the process dies before the successor is enqueued.
          if (!crashed && task.payload.partition === 'p0001' && task.payload.seq === 5) {
            crashed = true;
            throw new Error('simulated crash between the commit of p0001-4 and the enqueue of p0001-5');
          }
          return queue.enqueue(task, options);
        },
      }),
    });
    batchQueue = queue;
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'duplicates', actor });
    await settle();
    expect(duplicated).not.toBeNull();
    expect(crashed).toBe(true);
    const of = (partition: string, seq: number) => delivered.filter((entry) => entry.partition === partition && entry.seq === seq).map((entry) => entry.outcome);
    expect(of('p0000', 2)).toEqual(['committed', 'duplicate']);
    expect(of('p0001', 4)).toEqual(['threw', 'duplicate']);
    expect(of('p0001', 5)).toEqual(['committed']);
    await expectDemoTradesMigratedOnce(db, seeded, [run.runId]);
    await expectCompleted(run.runId);
  });

  it('a task takes several batches within its time budget; a duplicate of such a task commits nothing', async () => {
    // Each delivery's clock advances 1 s per reading: started at 0, it takes a further batch
    // after readings 1 s, 2 s and 3 s, and hands over at 4 s — four batches per task.
    const budget = (): TaskBudget => {
      let reading = 0;
      return { timeMs: 3500, now: () => 1000 * reading++ };
    };
    let duplicated: string | null = null;
    let batchQueue: InProcessTaskQueue<BatchTask> | undefined;
    const { requests, delivered, settle, batchQueue: queue } = pipeline({
      budget,
      afterBatch: (task, outcome, delivery) => {
        if (duplicated === null && task.partition === 'p0000' && task.seq === 4 && outcome === 'committed') {
          duplicated = delivery.id;
          batchQueue!.deliverAgain(delivery.id);
        }
      },
    });
    batchQueue = queue;
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'time budget', actor });
    await settle();
    expect(duplicated).not.toBeNull();
    const of = (partition: string, seq: number) => delivered.filter((entry) => entry.partition === partition && entry.seq === seq).map((entry) => entry.outcome);
    expect(of('p0000', 0)).toEqual(['committed']);
    expect(of('p0000', 4)).toEqual(['committed', 'duplicate']);
    expect(of('p0000', 8)[0]).toEqual('committed');

    const markers = await db.collection(paths.batches(tradesV2.id, run.runId)).get();
    const partitions = await new PartitionStore(db, paths).list(tradesV2.id, run.runId);
    for (const partition of partitions) {
      const seqs = markers.docs.filter((marker) => marker.get('partition') === partition.partition).map((marker) => marker.get('seq') as number).sort((a, b) => a - b);
      // One marker per batch, seqs 0..n−1 without a gap or a repeat.
      expect(seqs).toEqual(seqs.map((_, index) => index));
      expect(seqs.length).toBeGreaterThan(8);
      // Deliveries that committed batches (the last one also exhausts the partition).
      const starts = delivered
        .filter((entry) => entry.partition === partition.partition && (entry.outcome === 'committed' || entry.outcome === 'exhausted'))
        .map((entry) => entry.seq)
        .filter((seq) => seqs.includes(seq));
      if (partition.partition !== 'p0000') {
        // The tasks started at every fourth seq. (In p0000 the duplicate's successor may race the live task from some seq on.)
        expect(starts.sort((a, b) => a - b)).toEqual(seqs.filter((seq) => seq % 4 === 0));
      } else {
        expect(starts.length).toBeLessThan(seqs.length / 2);
      }
    }
    await expectDemoTradesMigratedOnce(db, seeded, [run.runId]);
    await expectCompleted(run.runId);
  });

  it('a paused run dispatches nothing more', async () => {
    let pausing = false;
    let startedBeforePause = -1;
    const { requests, delivered, settle, startedSoFar } = pipeline({
      afterBatch: async (task, outcome) => {
        if (!pausing && outcome === 'committed' && delivered.filter((entry) => entry.outcome === 'committed').length === 4) {
          pausing = true;
          await requests.pause(task.runId, 'pipeline pause test', actor);
          startedBeforePause = startedSoFar();
        }
      },
    });
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'pause', actor });
    await settle();
    expect(startedBeforePause).toBeGreaterThan(0);
    // Deliveries that read the run before the pause landed may still commit; every one started after it does nothing.
    const after = delivered.filter((entry) => entry.started >= startedBeforePause);
    expect(after.length).toBeGreaterThan(0);
    expect(after.map((entry) => entry.outcome)).toEqual(after.map(() => 'run-not-running'));

    const stored = await new RunStore(db, paths).get(tradesV2.id, run.runId);
    expect(stored.status).toBe('paused');
    const markers = await db.collection(paths.batches(tradesV2.id, run.runId)).get();
    const committed = delivered.filter((entry) => entry.outcome === 'committed').length;
    expect(markers.size).toBe(committed);
    const migratedByMarkers = markers.docs.reduce((sum, marker) => sum + (marker.get('migrated') as number), 0);
    const atV2 = await db.collection('trades').where('schemaVersion', '==', '2.0').count().get();
    expect(atV2.data().count).toBe(manifest.trades.alreadyV2 + migratedByMarkers);
    expect(migratedByMarkers).toBeLessThan(manifest.trades.legacy);
  });

  it('a paused run resumed through the API continues in a new epoch and completes, every document once', async () => {
    let pausing = false;
    const { requests, delivered, settle } = pipeline({
      afterBatch: async (task, outcome) => {
        if (!pausing && outcome === 'committed' && delivered.filter((entry) => entry.outcome === 'committed').length === 5) {
          pausing = true;
          await requests.pause(task.runId, 'before resume', actor);
        }
      },
    });
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'resume', actor });
    await settle();
    expect((await new RunStore(db, paths).get(tradesV2.id, run.runId)).status).toBe('paused');
    const beforeResume = delivered.length;

    const resumed = await requests.resume(run.runId, 'continue', actor);
    expect(resumed.enqueue).toBe('enqueued');
    await settle();
    const partitions = await new PartitionStore(db, paths).list(tradesV2.id, run.runId);
    expect(partitions.map((partition) => partition.epoch)).toEqual(partitions.map(() => 1));
    // The new epoch's deliveries: no stale or duplicate work, only batches and the ends of ranges.
    const outcomes = new Set(delivered.slice(beforeResume).map((entry) => entry.outcome));
    expect([...outcomes].sort()).toEqual(['committed', 'exhausted']);
    await expectDemoTradesMigratedOnce(db, seeded, [run.runId]);
    await expectCompleted(run.runId, ['run.requested', 'run.started', 'run.paused', 'run.resumed', 'run.completed']);
  });

  it('a stale delivery (an epoch before the resume) commits nothing and enqueues nothing — the resume enqueued the new epoch; the run then completes', async () => {
    const gate = holdingQueue();
    const committed = (entry: Delivered) => entry.outcome === 'committed';
    const { ctx, requests, delivered, settle, batchQueue } = pipeline({
      wrapBatchQueue: gate.wrap,
      afterBatch: (_task, outcome) => {
        if (outcome === 'committed' && delivered.filter(committed).length === 4) gate.hold();
      },
    });
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'stale delivery', actor });
    await settle();
    // Every partition's next task of epoch 0 is held: nothing is in flight.
    const epoch0 = [...gate.held];
    expect(epoch0.length).toBeGreaterThan(0);
    expect(epoch0.map((task) => task.payload.epoch)).toEqual(epoch0.map(() => 0));

    await requests.pause(run.runId, 'before resume', actor);
    const resumed = await requests.resume(run.runId, 'continue in epoch 1', actor);
    expect(resumed.enqueue).toBe('enqueued');
    await settle();
    const epoch1 = gate.held.slice(epoch0.length);
    expect(epoch1.length).toBeGreaterThan(0);
    expect(epoch1.map((task) => task.payload.epoch)).toEqual(epoch1.map(() => 1));

    // The old chain's task at the partition's resume point: the same seq, uncommitted, in epoch 0.
    const partitions = await new PartitionStore(db, paths).list(tradesV2.id, run.runId);
    const partitionOf = (task: BatchTask) => partitions.find((partition) => partition.partition === task.partition)!;
    const stale = epoch0.map((task) => task.payload).find((task) => partitionOf(task).resumeFromSeq === task.seq);
    expect(stale).toBeDefined();
    expect(partitionOf(stale!)).toMatchObject({ epoch: 1, resumeFromSeq: stale!.seq });
    expect(partitionOf(stale!).status).not.toBe('exhausted');
    const markers = db.collection(paths.batches(tradesV2.id, run.runId));
    expect((await markers.doc(markerId(stale!.partition, stale!.seq)).get()).exists).toBe(false);
    expect((await new RunStore(db, paths).get(tradesV2.id, run.runId)).status).toBe('running');

    const before = await documentsOf(run.runId);
    const recorder = recordingQueue();
    expect(await handleBatchTask({ ...ctx, batchQueue: recorder.queue }, stale!, { timeMs: 0 })).toBe('stale');
    expect(recorder.enqueued).toEqual([]);
    expect(changedPaths(before, await documentsOf(run.runId))).toEqual([]);
    expect((await markers.doc(markerId(stale!.partition, stale!.seq)).get()).exists).toBe(false);

    // The new epoch's chain, which the resume enqueued, finishes the run alone.
    gate.release();
    for (const task of epoch1) await batchQueue.enqueue(task);
    await settle();
    await expectDemoTradesMigratedOnce(db, seeded, [run.runId]);
    await expectCompleted(run.runId, ['run.requested', 'run.started', 'run.paused', 'run.resumed', 'run.completed']);
  });

  it('deliveries for an aborted run commit nothing and dispatch nothing more', async () => {
    const gate = holdingQueue();
    const committed = (entry: Delivered) => entry.outcome === 'committed';
    const { ctx, requests, delivered, settle } = pipeline({
      wrapBatchQueue: gate.wrap,
      afterBatch: (_task, outcome) => {
        if (outcome === 'committed' && delivered.filter(committed).length === 4) gate.hold();
      },
    });
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'abort', actor });
    await settle();
    const pending = gate.held.map((task) => task.payload);
    expect(pending.length).toBeGreaterThan(0);
    // Each held task is its partition's next batch, in its current epoch: had the run kept running, it would commit.
    const partitions = await new PartitionStore(db, paths).list(tradesV2.id, run.runId);
    const markers = db.collection(paths.batches(tradesV2.id, run.runId));
    for (const task of pending) {
      const partition = partitions.find((candidate) => candidate.partition === task.partition)!;
      expect({ partition: task.partition, epoch: partition.epoch, exhausted: partition.status === 'exhausted' }).toEqual({ partition: task.partition, epoch: task.epoch, exhausted: false });
      expect((await markers.doc(markerId(task.partition, task.seq)).get()).exists).toBe(false);
    }

    const aborted = await requests.abort(run.runId, 'abort test', actor);
    expect(aborted.previousStatus).toBe('running');
    const before = await documentsOf(run.runId);
    const recorder = recordingQueue();
    const outcomes: BatchTaskOutcome[] = [];
    for (const task of pending) outcomes.push(await handleBatchTask({ ...ctx, batchQueue: recorder.queue }, task, { timeMs: 0 }));
    expect(outcomes).toEqual(pending.map(() => 'run-not-running'));
    expect(recorder.enqueued).toEqual([]);
    expect(changedPaths(before, await documentsOf(run.runId))).toEqual([]);

    const stored = await new RunStore(db, paths).get(tradesV2.id, run.runId);
    expect(stored.status).toBe('aborted');
    expect(stored.statusReason).toBe(`aborted by ${actor.user}: abort test`);
    expect((await markers.get()).size).toBe(delivered.filter(committed).length);
  });

  it('a dry run stores the planner report in the run and completes, writing nothing else', async () => {
    const { requests, settle } = pipeline();
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: false, reason: 'dry run', actor });
    await settle();
    const stored = (await db.doc(paths.run(tradesV2.id, run.runId)).get()).data()!;
    expect(stored.status).toBe('completed');
    expect(stored.plan.counts).toEqual({
      total: manifest.trades.total,
      migrate: manifest.trades.legacy,
      alreadyAtTarget: manifest.trades.alreadyV2,
      skipped: 0,
      fail: manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray,
    });
    expect((await db.collection(paths.batches(tradesV2.id, run.runId)).get()).size).toBe(0);
    expect((await db.collection(paths.partitions(tradesV2.id, run.runId)).get()).size).toBe(0);
    const atV2 = await db.collection('trades').where('schemaVersion', '==', '2.0').count().get();
    expect(atV2.data().count).toBe(manifest.trades.alreadyV2);
  });

  it('health: a critical error rate becomes a snapshot and an alert, and the alert stops the run once (state preserved)', async () => {
    // A one-document sample keeps the health run (probes, integrity) short: the run must still be in progress when the alert arrives.
    const strict = emulatorConfig({ MONITOR_SAMPLE_SIZE: '1', MONITOR_ALERT_THRESHOLDS: '{"errorRate":{"warning":0.00001,"critical":0.00002}}' });
    const log = createLogger({ format: 'json', write: (line) => logLines.push(line) });
    const alerts = new InProcessAlertBus({ maxDeliveryAttempts: 3, retryDelayMs: 10 });
    const handled: AlertOutcome[] = [];
    alerts.subscribe(TOPICS.alerts, async (message) => {
      // The escalation; the topic also carries the monitor's de-duplicated alert notifications.
      if ((message.json as { kind?: string }).kind !== 'escalation') return;
      handled.push(await handleMigrationAlert({ db, paths, log }, message.messageId, message.json));
    });
    let checked: { snapshot: StoredHealthSnapshot; alertMessageId: string | null } | null = null;
    let startedBeforeStop = -1;
    const { requests, delivered, settle, startedSoFar } = pipeline({
      afterBatch: async (_task, outcome) => {
        if (checked === null && outcome === 'committed' && delivered.filter((entry) => entry.outcome === 'committed').length === 8) {
          checked = await runHealthCheck({ db, paths, config: strict, registry, alerts, stallAfterMs: 5 * 60_000, log, indexes: null });
          await alerts.idle();
          startedBeforeStop = startedSoFar();
        }
      },
    });
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'health', actor });
    await settle();
    expect(checked).not.toBeNull();
    const { snapshot, alertMessageId } = checked!;
    expect(snapshot.status).toBe('CRITICAL');
    expect(alertMessageId).not.toBeNull();
    expect(snapshot.runs).toHaveLength(1);
    const [health] = snapshot.runs;
    expect(health.runId).toBe(run.runId);
    expect(health.failed).toBeGreaterThan(0);
    const errorRate = health.checks.find((check) => check.name === 'errorRate')!;
    expect(errorRate.status).toBe('critical');
    expect(errorRate.value).toBeCloseTo(health.failed / health.processed, 10);
    expect(health.stalledPartitions).toEqual([]);
    // 100 − 5·warnings − 15·errors − 30·critical over every check of the snapshot.
    const penalty: Record<string, number> = { warning: 5, error: 15, critical: 30 };
    expect(snapshot.score).toBe(Math.max(0, 100 - snapshot.checks.reduce((sum, check) => sum + (penalty[check.status] ?? 0), 0)));
    const stored = (await db.collection(paths.healthSnapshots()).doc(snapshot.id).get()).data()!;
    expect(stored.status).toBe('CRITICAL');
    expect(stored.score).toBe(snapshot.score);
    expect(stored.runs[0].checks.find((check: { name: string }) => check.name === 'errorRate')).toEqual(errorRate);

    expect(handled).toEqual(['stopped']);
    const stopped = await new RunStore(db, paths).get(tradesV2.id, run.runId);
    expect(stopped.status).toBe('emergency_stopped');
    expect(stopped.statusReason).toContain(`health snapshot ${snapshot.id} is CRITICAL`);
    const event = (await db.collection(alertEventsPath(paths)).doc(alertMessageId!).get()).data()!;
    expect(event.snapshotId).toBe(snapshot.id);
    expect(event.stoppedRuns).toEqual([run.runId]);
    const after = delivered.filter((entry) => entry.started >= startedBeforeStop);
    expect(after.length).toBeGreaterThan(0);
    expect(after.map((entry) => entry.outcome)).toEqual(after.map(() => 'run-not-running'));

    // A redelivery of the alert (at least once) changes nothing.
    alerts.redeliver(alertMessageId!);
    await alerts.idle();
    expect(handled).toEqual(['stopped', 'duplicate']);
    const actions = (await new AuditLog(db, paths).forRun(run.runId)).map((entry) => entry.action);
    expect(actions.filter((action) => action === 'run.stopped')).toHaveLength(1);
    expect(alerts.undelivered).toEqual([]);
  });

  it('an old critical snapshot re-sent after the run was resumed neither stops it nor requests a rollback; a snapshot of the new session does', async () => {
    const strict = emulatorConfig({ MONITOR_SAMPLE_SIZE: '1', MONITOR_ALERT_THRESHOLDS: '{"errorRate":{"warning":0.00001,"critical":0.00002}}' });
    const log = createLogger({ format: 'json', write: (line) => logLines.push(line) });
    const alerts = new InProcessAlertBus({ maxDeliveryAttempts: 3, retryDelayMs: 10 });
    // The rollbackBatch queue as onMigrationAlert sees it: every rollback it requests, not run here.
    const rollbackRequests: RollbackTask[] = [];
    const rollbackQueue: TaskQueue<RollbackTask> = {
      enqueue: async (task) => {
        rollbackRequests.push(task.payload);
        return 'enqueued';
      },
    };
    const handled: AlertOutcome[] = [];
    alerts.subscribe(TOPICS.alerts, async (message) => {
      if ((message.json as { kind?: string }).kind !== 'escalation') return;
      handled.push(await handleMigrationAlert({ db, paths, log, rollbackQueue }, message.messageId, message.json));
    });
    const runs = new RunStore(db, paths);
    const healthRun = async () => {
      const result = await runHealthCheck({ db, paths, config: strict, registry, alerts, stallAfterMs: 5 * 60_000, log, indexes: null });
      await alerts.idle();
      return result;
    };
    let resumed = false;
    let committedAfterResume = 0;
    let first: { snapshot: StoredHealthSnapshot; alertMessageId: string | null } | null = null;
    let second: { snapshot: StoredHealthSnapshot; alertMessageId: string | null } | null = null;
    let replay: { messageId: string; runWhileHandled: RunDocument } | null = null;
    const { requests, delivered, settle } = pipeline({
      afterBatch: async (task, outcome) => {
        if (outcome !== 'committed') return;
        if (!resumed && first === null && delivered.filter((entry) => entry.outcome === 'committed').length === 8) first = await healthRun();
        // In the resumed session, while it is running: the first snapshot's id published again, then a fresh health run.
        if (resumed && ++committedAfterResume === 1) {
          const messageId = await alerts.publish(TOPICS.alerts, { kind: 'escalation', snapshotId: first!.snapshot.id });
          await alerts.idle();
          replay = { messageId, runWhileHandled: await runs.get(tradesV2.id, task.runId) };
          second = await healthRun();
        }
      },
    });
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'stale alert', actor, rollbackPolicy: 'auto' });
    await settle();
    expect(first).not.toBeNull();
    expect(first!.snapshot.status).toBe('CRITICAL');
    expect(first!.snapshot.runs.map((health) => ({ runId: health.runId, resumes: health.resumes, critical: health.critical }))).toEqual([{ runId: run.runId, resumes: 0, critical: true }]);
    expect(handled).toEqual(['stopped']);
    expect((await runs.get(tradesV2.id, run.runId)).status).toBe('emergency_stopped');
    expect(rollbackRequests.map((request) => ({ kind: request.kind, sourceRunId: request.kind === 'start' ? request.sourceRunId : null, epoch: request.epoch }))).toEqual([
      { kind: 'start', sourceRunId: run.runId, epoch: 0 },
    ]);

    await requests.resume(run.runId, 'cause fixed', actor);
    resumed = true;
    await settle();
    expect(replay).not.toBeNull();
    const { messageId, runWhileHandled } = replay!;
    expect(handled.slice(0, 2)).toEqual(['stopped', 'stale']);
    expect(runWhileHandled.status).toBe('running');
    expect(runWhileHandled.resumes).toBe(1);
    expect(runWhileHandled.statusReason).toBeNull();
    const replayEvent = (await db.collection(alertEventsPath(paths)).doc(messageId).get()).data()!;
    expect(replayEvent.snapshotId).toBe(first!.snapshot.id);
    expect(replayEvent.stoppedRuns).toEqual([]);
    expect(replayEvent.staleRuns).toEqual([run.runId]);
    const ignored = logLines.map((line) => JSON.parse(line) as { severity: string; message: string }).filter((line) => line.message.includes('ignored health snapshot'));
    expect(ignored).toEqual([
      expect.objectContaining({ severity: 'WARNING', message: `onMigrationAlert: ignored health snapshot ${first!.snapshot.id} for ${run.runId}: taken before the run was resumed` }),
    ]);

    // The new session's own critical snapshot stops it, and its rollback is requested for that session.
    expect(second).not.toBeNull();
    expect(second!.snapshot.status).toBe('CRITICAL');
    expect(second!.snapshot.runs.map((health) => ({ runId: health.runId, resumes: health.resumes, critical: health.critical }))).toEqual([{ runId: run.runId, resumes: 1, critical: true }]);
    expect(handled).toEqual(['stopped', 'stale', 'stopped']);
    const stopped = await runs.get(tradesV2.id, run.runId);
    expect(stopped.status).toBe('emergency_stopped');
    expect(stopped.statusReason).toContain(`health snapshot ${second!.snapshot.id} is CRITICAL`);
    expect(rollbackRequests.map((request) => ({ kind: request.kind, sourceRunId: request.kind === 'start' ? request.sourceRunId : null, epoch: request.epoch }))).toEqual([
      { kind: 'start', sourceRunId: run.runId, epoch: 0 },
      { kind: 'start', sourceRunId: run.runId, epoch: 1 },
    ]);
    const stops = (await new AuditLog(db, paths).forRun(run.runId)).filter((entry) => entry.action === 'run.stopped');
    expect(stops.map((entry) => entry.details?.snapshotId)).toEqual([first!.snapshot.id, second!.snapshot.id]);
    expect(alerts.undelivered).toEqual([]);
  });

  it('health: a running partition with no committed batch for longer than the stall threshold is reported stalled in the stored snapshot', async () => {
    // p0001's task after its second batch is lost: the other partitions finish, the run stays running.
    const lost = holdingQueue((task) => task.partition === 'p0001' && task.seq >= 2);
    const { requests, settle } = pipeline({ wrapBatchQueue: lost.wrap });
    const { run } = await requests.start({ migrationId: tradesV2.id, execute: true, reason: 'stall', actor });
    await settle();
    expect(lost.held.map((task) => `${task.payload.partition}-${task.payload.seq}`)).toEqual(['p0001-2']);
    expect((await new RunStore(db, paths).get(tradesV2.id, run.runId)).status).toBe('running');
    const partitions = await new PartitionStore(db, paths).list(tradesV2.id, run.runId);
    expect(partitions.filter((partition) => partition.status !== 'exhausted').map((partition) => partition.partition)).toEqual(['p0001']);

    const config = emulatorConfig({ MONITOR_SAMPLE_SIZE: '1' });
    const log = createLogger({ format: 'json', write: (line) => logLines.push(line) });
    const published: Array<Record<string, unknown>> = [];
    const alerts = {
      publish: async (_topic: string, message: Record<string, unknown>) => {
        published.push(message);
        return `message-${published.length}`;
      },
    };
    const stallAfterMs = 5 * 60_000;
    const stalledCheckOf = (snapshot: StoredHealthSnapshot) => snapshot.runs[0].checks.find((check) => check.name === 'stalledPartitions');
    const storedSnapshot = async (id: string) => (await db.collection(paths.healthSnapshots()).doc(id).get()).data() as StoredHealthSnapshot;

    // Now: p0001 committed its second batch moments ago, within the threshold.
    const fresh = await runHealthCheck({ db, paths, config, registry, alerts, stallAfterMs, log, indexes: null });
    const freshStored = await storedSnapshot(fresh.snapshot.id);
    expect(freshStored.runs.map((entry) => ({ runId: entry.runId, stalledPartitions: entry.stalledPartitions }))).toEqual([{ runId: run.runId, stalledPartitions: [] }]);
    expect(stalledCheckOf(freshStored)).toMatchObject({ status: 'ok', value: 0, threshold: 0 });

    // Six minutes later, with no batch committed meanwhile: p0001 is stalled.
    const later = new Date(Date.now() + stallAfterMs + 60_000);
    const { snapshot, alertMessageId } = await runHealthCheck({ db, paths, config, registry, alerts, stallAfterMs, log, indexes: null }, later);
    const stored = await storedSnapshot(snapshot.id);
    expect(stored.runs.map((entry) => ({ runId: entry.runId, stalledPartitions: entry.stalledPartitions }))).toEqual([{ runId: run.runId, stalledPartitions: ['p0001'] }]);
    const stalled = stalledCheckOf(stored)!;
    expect(stalled).toEqual({
      name: 'stalledPartitions',
      dimension: 'performance',
      status: 'error',
      value: 1,
      threshold: 0,
      unit: 'count',
      message: 'no batch committed for over 5 min in p0001',
      recommendedAction: expect.stringContaining('resume the run'),
      scope: { migrationId: tradesV2.id, runId: run.runId },
    });
    // The snapshot's own list of checks carries the same one.
    expect(stored.checks.filter((check) => check.name === 'stalledPartitions')).toEqual([stalled]);
    expect(stored.status).not.toBe('HEALTHY');
    // An error is an alert for people, not an escalation that stops the run.
    expect(alertMessageId).toBeNull();
    const alert = published.find((message) => message.kind === 'alert' && (message.alert as { metric: string }).metric === 'stalledPartitions');
    expect(alert).toMatchObject({ snapshotId: snapshot.id, alert: { severity: 'critical', value: 1, runId: run.runId, message: 'no batch committed for over 5 min in p0001' } });
  });
});
