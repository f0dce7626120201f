import { Timestamp } from '@google-cloud/firestore';
import { createLogger } from '../../functions/src/cli/log';
import { getMode } from '../../functions/src/compat/modes';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RegistryStore } from '../../functions/src/control/registry-store';
import { RunStore, type RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { Migration } from '../../functions/src/definitions/types';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import { handleMigrationAlert } from '../../functions/src/pipeline/alert-stop';
import { dispatchRollback } from '../../functions/src/pipeline/rollback-dispatch';
import { rollbackTaskId, type RollbackPipelineContext, type RollbackTask } from '../../functions/src/pipeline/rollback-payload';
import { AUTO_ROLLBACK_USER, handleRollbackTask, type RollbackTaskOutcome } from '../../functions/src/pipeline/rollback-task';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import type { TaskDelivery, TaskQueue } from '../../functions/src/transports/task-queue';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, testWire } from '../support/raw-seed';
import { rawCollections } from '../support/rollback-support';

interface Delivered {
  task: RollbackTask;
  outcome: RollbackTaskOutcome | 'threw';
  error?: string;
}

describeEmulator('rollback on Cloud Tasks: the rollbackBatch handler on the in-process queue', () => {
  const projectId = 'demo-rollback-tasks';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '60', ROLLBACK_BATCH_SIZE: '25', MIGRATION_RETRY_DELAY: '5' });
  const registry = createRegistry([tradesV2, conversationsV2]);
  const seeded = { docs: 200, seed: 7, now: new Date('2026-11-01T10:00:00Z') };
  const caller = { user: 'ops-team', identity: 'firebase-auth/u-admin <admin@example.com>', reason: 'rollback through tasks' };
  const logLines: string[] = [];
  const log = createLogger({ format: 'json', write: (line) => logLines.push(line), minSeverity: 'DEBUG' });

  beforeEach(async () => {
    await resetProject(projectId);
    logLines.length = 0;
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function migrate(migration: Migration): Promise<string> {
    const runCtx: RunnerContext = { db, wire, migration, config, paths, lease: { ttlMs: 10_000, renewEveryMs: 3000 }, holder: 'test-host/1/migrate', log };
    const outcome = await (await startRun(runCtx, { user: 'tester', identity: 'emulator', reason: 'migrate' })).outcome;
    expect(outcome.status).toBe('completed');
    return outcome.runId;
  }

  /** The rollbackBatch queue and its handler as index.ts wires them; hooks see each delivery. */
  function pipeline(hooks: {
    afterTask?: (task: RollbackTask, outcome: RollbackTaskOutcome, delivery: TaskDelivery, queue: InProcessTaskQueue<RollbackTask>) => Promise<void> | void;
    wrapQueue?: (queue: TaskQueue<RollbackTask>) => TaskQueue<RollbackTask>;
    lease?: { ttlMs: number; renewEveryMs: number };
    backoff?: { minBackoffMs: number; maxBackoffMs: number; maxAttempts: number };
  } = {}) {
    const delivered: Delivered[] = [];
    const queue: InProcessTaskQueue<RollbackTask> = new InProcessTaskQueue<RollbackTask>(
      async (task, delivery) => {
        let outcome: RollbackTaskOutcome;
        try {
          outcome = await handleRollbackTask(ctx, task);
        } catch (error) {
          delivered.push({ task, outcome: 'threw', error: (error as Error).message });
          throw error;
        }
        delivered.push({ task, outcome });
        await hooks.afterTask?.(task, outcome, delivery, queue);
      },
      { concurrency: 1, ...(hooks.backoff ?? { minBackoffMs: 10, maxBackoffMs: 100, maxAttempts: 5 }) },
    );
    const ctx: RollbackPipelineContext = {
      db,
      wire,
      config,
      paths,
      registry,
      lease: hooks.lease ?? { ttlMs: 60_000, renewEveryMs: 20_000 },
      log,
      rollbackQueue: hooks.wrapQueue ? hooks.wrapQueue(queue) : queue,
    };
    const settle = async () => {
      await queue.idle();
      expect(queue.givenUp).toEqual([]);
    };
    return { ctx, queue, delivered, settle };
  }

  async function expectRolledBack(rollbackRunId: string, sourceRuns: string[], user: string): Promise<void> {
    const runs = new RunStore(db, paths);
    const rollbackRun = (await runs.get(tradesV2.id, rollbackRunId)) as RunDocument & { rollback: Record<string, unknown> };
    expect(rollbackRun).toMatchObject({ kind: 'rollback', mode: 'execute', status: 'completed', statusReason: null, lease: null, user });
    expect(rollbackRun.rollback).toMatchObject({ strategy: 'restore', force: false, sourceRuns, validation: { ok: true, mismatches: [] } });
    for (const runId of sourceRuns) expect((await runs.get(tradesV2.id, runId)).status).toBe('rolled_back');
    const entry = await new RegistryStore(db, paths).get(tradesV2.id);
    expect(entry).toMatchObject({ status: 'rolled_back', activeRunId: null, lease: null });
    const actions = (await new AuditLog(db, paths).forRun(rollbackRunId)).map((event) => event.action);
    // The mode policy: dual-read (sync trigger off) while documents are restored, normal after.
    expect(actions).toEqual(['rollback.started', 'mode.changed', 'mode.changed', 'rollback.completed']);
    expect(await getMode(db)).toMatchObject({ mode: 'normal', collections: [], runId: rollbackRunId });
  }

  it('restores two runs of a migration exactly through a chain of tasks, each batch once despite a duplicate delivery and a crash between commit and enqueue', async () => {
    const manifest = await seedDemoData(db, seeded);
    const originals = await rawCollections(db, wire, ['trades']);
    const first = await migrate(tradesV2);
    // A legacy client creates trades in the old shape between the runs: the second run migrates them.
    const legacyFields = ['skillsOffered', 'skillsWanted', 'participants', 'schemaVersion'];
    const migratedOnes = [...(await rawCollections(db, wire, ['trades']))].filter(([path, fields]) => canonical(fields) !== canonical(originals.get(path)!)).map(([path]) => path);
    for (let i = 0; i < 6; i++) {
      const legacy = { ...(await db.doc(migratedOnes[i]).get()).data() };
      for (const field of legacyFields) delete legacy[field];
      await db.collection('trades').doc(`late-${i}`).set({ ...legacy, title: `late ${i}` });
    }
    const beforeSecond = await rawCollections(db, wire, ['trades']);
    const second = await migrate(tradesV2);

    let duplicated: string | null = null;
    let crashed = false;
    const { ctx, delivered, settle } = pipeline({
      afterTask(task, outcome, delivery, queue) {
        // The queue delivers the first source run's batch 1 a second time.
        if (task.kind === 'batch' && task.sourceRunId === first && task.seq === 1 && outcome === 'committed' && duplicated === null) {
          duplicated = delivery.id;
          queue.deliverAgain(delivery.id);
        }
      },
      wrapQueue: (queue) => ({
        async enqueue(task, options) {
          // The task of batch 2 of the first source run dies after its commit, before enqueueing batch 3.
          if (task.payload.kind === 'batch' && task.payload.sourceRunId === first && task.payload.seq === 3 && !crashed) {
            crashed = true;
            throw new Error('crash between commit and enqueue');
          }
          return queue.enqueue(task, options);
        },
      }),
    });
    const dispatched = await dispatchRollback(ctx, { migrationId: tradesV2.id, force: false, ...caller });
    expect(dispatched).toMatchObject({ migrationId: tradesV2.id, strategy: 'restore', sourceRuns: [second, first], enqueue: 'enqueued' });
    await settle();
    expect(crashed).toBe(true);
    expect(duplicated).not.toBeNull();

    // Every document is back: the originals as seeded, the late ones as the legacy client wrote them.
    const after = await rawCollections(db, wire, ['trades']);
    expect(after.size).toBe(originals.size + 6);
    for (const [path, fields] of after) {
      const expected = originals.get(path) ?? beforeSecond.get(path)!;
      expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(expected) });
    }

    // One marker per (source run, seq), each committed once: the duplicate and the retried task found theirs.
    const markers = (await db.collection(paths.batches(tradesV2.id, dispatched.runId)).get()).docs.map((doc) => doc.data());
    const bySource = (runId: string) => markers.filter((marker) => marker.sourceRunId === runId).map((marker) => marker.seq as number).sort((a, b) => a - b);
    expect(bySource(second)).toEqual([0]);
    expect(bySource(first)).toEqual([...Array(Math.ceil(manifest.trades.legacy / 25)).keys()]);
    expect(markers.reduce((sum, marker) => sum + (marker.restored as number), 0)).toBe(manifest.trades.legacy + 6);
    expect(markers.reduce((sum, marker) => sum + (marker.alreadyRestored as number) + (marker.conflicts as number) + (marker.failed as number), 0)).toBe(0);

    const outcomes = delivered.map((entry) => entry.outcome);
    expect(outcomes.filter((outcome) => outcome === 'duplicate')).toHaveLength(2);
    expect(outcomes.filter((outcome) => outcome === 'threw')).toHaveLength(1);
    expect(outcomes.filter((outcome) => outcome === 'finished')).toHaveLength(1);
    expect(outcomes[outcomes.length - 1]).toBe('finished');
    // The duplicate delivery re-enqueued its successor under the same hashed id: the queue refused it as already there.
    const ids = delivered.filter((entry) => entry.outcome !== 'threw').map((entry) => rollbackTaskId(entry.task));
    expect(ids.every((id) => /^[0-9a-f]{64}$/.test(id))).toBe(true);
    await expectRolledBack(dispatched.runId, [second, first], caller.user);
  });

  it('a paused rollback run dispatches nothing more, and its tasks commit nothing after the pause', async () => {
    await seedDemoData(db, seeded);
    const source = await migrate(tradesV2);
    const runs = new RunStore(db, paths);
    let rollbackRunId = '';
    const { ctx, delivered, settle } = pipeline({
      async afterTask(task, outcome) {
        if (task.kind === 'batch' && task.seq === 1 && outcome === 'committed') await runs.transition(tradesV2.id, rollbackRunId, 'paused', { statusReason: 'paused by test' });
      },
    });
    rollbackRunId = (await dispatchRollback(ctx, { migrationId: tradesV2.id, runId: source, force: false, ...caller })).runId;
    await settle();
    expect(delivered.map((entry) => [entry.task.kind === 'batch' ? entry.task.seq : -1, entry.outcome])).toEqual([
      [0, 'committed'],
      [1, 'committed'],
      [2, 'run-not-running'],
    ]);
    const markers = await db.collection(paths.batches(tradesV2.id, rollbackRunId)).get();
    expect(markers.docs.map((doc) => doc.data().seq).sort()).toEqual([0, 1]);
    expect((await runs.get(tradesV2.id, rollbackRunId)).status).toBe('paused');
    expect((await runs.get(tradesV2.id, source)).status).toBe('completed');
  });

  it('refuses a revert on the task path before creating any run', async () => {
    await seedDemoData(db, seeded);
    const source = await migrate(tradesV2);
    const { ctx } = pipeline();
    await expect(dispatchRollback(ctx, { migrationId: tradesV2.id, runId: source, strategy: 'revert', force: false, ...caller })).rejects.toThrow(
      /needs the revert strategy .* runs in one process only: firemigrate rollback/,
    );
    const rollbackRuns = (await db.collection(paths.runs(tradesV2.id)).where('kind', '==', 'rollback').get()).size;
    expect(rollbackRuns).toBe(0);
  });

  it('auto-rollback: onMigrationAlert stops a task-driven run whose policy is auto, and its rollback starts once the stopped run\'s lease lapses', async () => {
    await seedDemoData(db, seeded);
    const originals = await rawCollections(db, wire, ['trades']);
    const source = await migrate(tradesV2);
    // The run as it is while Cloud Tasks work on it: running, its lease held by the task holder.
    const leaseUntil = Timestamp.fromMillis(Date.now() + 1500);
    const lease = { holder: `cloud-tasks/${source}`, expiresAt: leaseUntil };
    await db.doc(paths.run(tradesV2.id, source)).update({ status: 'running', rollbackPolicy: 'auto', lease, finishedAt: null });
    await db.doc(paths.migration(tradesV2.id)).update({ status: 'running', activeRunId: source, lease });
    await db.collection(paths.healthSnapshots()).doc('snap-1').set({
      id: 'snap-1',
      status: 'CRITICAL',
      runs: [{ migrationId: tradesV2.id, runId: source, critical: true, checks: [{ status: 'critical', level: 'critical', message: 'error rate 12 % above 5 %' }] }],
    });
    const { ctx, delivered, settle } = pipeline({ lease: { ttlMs: 1500, renewEveryMs: 500 }, backoff: { minBackoffMs: 200, maxBackoffMs: 800, maxAttempts: 30 } });

    expect(await handleMigrationAlert({ db, paths, log, rollbackQueue: ctx.rollbackQueue }, 'event-1', { snapshotId: 'snap-1' })).toBe('stopped');
    // A redelivered alert stops nothing again and requests no second rollback.
    expect(await handleMigrationAlert({ db, paths, log, rollbackQueue: ctx.rollbackQueue }, 'event-1', { snapshotId: 'snap-1' })).toBe('duplicate');
    await settle();

    const starts = delivered.filter((entry) => entry.task.kind === 'start');
    // While the stopped run's lease was live the start failed and the queue retried it; then it dispatched once.
    expect(starts.map((entry) => entry.outcome).filter((outcome) => outcome !== 'threw')).toEqual(['dispatched']);
    expect(starts.filter((entry) => entry.outcome === 'threw').every((entry) => /is being run by run/.test(entry.error ?? ''))).toBe(true);
    const after = await rawCollections(db, wire, ['trades']);
    for (const [path, fields] of after) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path)!) });
    const rollbackRun = (await db.collection(paths.runs(tradesV2.id)).where('kind', '==', 'rollback').get()).docs.map((doc) => doc.data() as RunDocument);
    expect(rollbackRun).toHaveLength(1);
    expect(rollbackRun[0].reason).toMatch(/^auto-rollback \(rollbackPolicy auto\) after emergency stop: health snapshot snap-1 is CRITICAL/);
    expect(rollbackRun[0].identity).toBe('firemigrate/cloud-functions');
    await expectRolledBack(rollbackRun[0].runId, [source], AUTO_ROLLBACK_USER);
  });
});
