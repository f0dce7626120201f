/**
 * The `planRun` task handler (payload: transports/task-payloads.ts). The API creates a run in
 * 'planning' and enqueues this task, because planning a large target is never work inside an
 * HTTP request.
 * - dry run: the planner's report is stored in the run document and the run completes; nothing
 *   else is written.
 * - execute: takes the migration's lease, plans the partitions (PartitionQuery, or the key-scan
 *   fallback on the emulator), then writes the partition documents and moves the run to
 *   'running' in ONE transaction, and enqueues the first batch task of each partition.
 * - resume n > 0 (the API resumed the run): each unfinished partition continues after its
 *   highest contiguous committed batch in epoch n, with a first task of that epoch.
 * Delivery is at least once: a delivery that finds the run already running (or the partitions
 * already in epoch n) only enqueues the first tasks again — 'already-exists' is success.
 */
import { Timestamp } from '@google-cloud/firestore';
import { describeModeOutcome, modeForMigrateRun } from '../compat/mode-policy';
import { LeaseHeldError } from '../control/lease';
import { newPartitionDocument, type PartitionDocument } from '../control/partitions';
import { ZERO_TOTALS } from '../control/progress';
import { assertTransition, type RunDocument } from '../control/runs';
import type { Migration } from '../definitions/types';
import { surveyTarget } from '../engine/target-survey';
import { planMigration } from '../engine/planner';
import { planTaskId, taskId } from '../transports/task-id';
import { planRunTaskSchema, type PlanRunTask } from '../transports/task-payloads';
import { parseTaskPayload } from './batch-payload';
import { PIPELINE_IDENTITY, PipelineStores, pipelineHolder, type PipelineContext } from './context';
import { NO_FINALIZE_CLAIM, finalizeRunIfDone } from './finalize';

export type PlanTaskOutcome = 'malformed' | 'unknown-migration' | 'run-not-found' | 'stale' | 'planned' | 'dry-run-completed' | 'dispatched' | 'failed';

export async function handlePlanTask(ctx: PipelineContext, payload: unknown): Promise<PlanTaskOutcome> {
  const parsed = parseTaskPayload(planRunTaskSchema, payload);
  if (!parsed.task) {
    ctx.log.error(`planRun: dropping a malformed task: ${parsed.problems}`, { payload });
    return 'malformed';
  }
  const task = parsed.task;
  if (!ctx.registry.has(task.migrationId)) {
    ctx.log.error(`planRun: migration "${task.migrationId}" is not deployed with these functions; task dropped`, { ...task });
    return 'unknown-migration';
  }
  const migration = ctx.registry.get(task.migrationId);
  const stores = new PipelineStores(ctx);
  const run = (await stores.runs.ref(migration.id, task.runId).get()).data() as RunDocument | undefined;
  if (!run) {
    ctx.log.error(`planRun: run ${task.runId} does not exist; task dropped`, { ...task });
    return 'run-not-found';
  }
  if (run.resumes !== task.resume) {
    ctx.log.info(`planRun: stale task (run ${task.runId} has been resumed ${run.resumes} times, the task is for resume ${task.resume})`, { ...task });
    return 'stale';
  }
  if (task.resume > 0) return run.status === 'running' ? dispatchResumed(ctx, stores, migration, run) : stale(ctx, task, run);
  if (run.status === 'running') return dispatchFirstTasks(ctx, stores, migration, task.runId, planTaskId(task.runId, 0));
  if (run.status !== 'planning') return stale(ctx, task, run);
  return run.mode === 'dry-run' ? completeDryRun(ctx, stores, migration, run) : planExecutedRun(ctx, stores, migration, run);
}

function stale(ctx: PipelineContext, task: PlanRunTask, run: RunDocument): PlanTaskOutcome {
  ctx.log.info(`planRun: run ${task.runId} is ${run.status}; nothing to do`, { ...task });
  return 'stale';
}

async function completeDryRun(ctx: PipelineContext, stores: PipelineStores, migration: Migration, run: RunDocument): Promise<PlanTaskOutcome> {
  const report = await planMigration(ctx.db, migration, ctx.config);
  // The report holds counts, paths, field names and types (values only with showValues, off
  // here); the JSON round trip drops the `undefined`s Firestore refuses.
  const stored = JSON.parse(JSON.stringify(report)) as Record<string, unknown>;
  const now = Timestamp.now();
  await stores.runs.transition(migration.id, run.runId, 'completed', {
    startedAt: now,
    finishedAt: now,
    ...({ plan: stored } as Partial<RunDocument>),
  });
  await stores.audit.append({
    action: 'run.completed',
    migrationId: migration.id,
    runId: run.runId,
    user: run.user,
    identity: PIPELINE_IDENTITY,
    reason: run.reason,
    details: { mode: 'dry-run', counts: report.counts, via: 'cloud-tasks' },
  });
  ctx.log.info(`planRun: dry run ${run.runId} of "${migration.id}" completed`, { runId: run.runId, ...report.counts });
  return 'dry-run-completed';
}

async function planExecutedRun(ctx: PipelineContext, stores: PipelineStores, migration: Migration, run: RunDocument): Promise<PlanTaskOutcome> {
  const holder = pipelineHolder(run.runId);
  try {
    await ctx.db.runTransaction(async (tx) => {
      const claim = await stores.leases.claimIn(tx, migration.id, run.runId, holder);
      stores.registry.assertRunnable(claim.entry, migration);
      stores.leases.write(tx, claim, migration);
      tx.update(stores.runs.ref(migration.id, run.runId), { lease: claim.lease, updatedAt: Timestamp.now() });
    });
  } catch (error) {
    if (!(error instanceof LeaseHeldError) && (error as Error).name !== 'ChecksumMismatchError') throw error;
    // Another run holds the migration (or the definition changed after it was applied): a retry cannot help.
    await failPlanning(ctx, stores, migration, run, (error as Error).message);
    return 'failed';
  }

  const { total, atTarget, ...plan } = await surveyTarget(ctx.db, ctx.wire, migration, {
    workers: ctx.config.migration.concurrentBatches,
    maxRetries: ctx.config.migration.maxRetries,
    retryDelayMs: ctx.config.migration.retryDelayMs,
  });
  const planned = plan.ranges.map((range, index) => newPartitionDocument(index, range));
  const moved = await ctx.db.runTransaction(async (tx) => {
    const runRef = stores.runs.ref(migration.id, run.runId);
    const current = (await tx.get(runRef)).data() as RunDocument;
    if (current.status !== 'planning') return false;
    assertTransition(run.runId, current.status, 'running');
    // An earlier delivery may have crashed before this transaction: nothing of it was written.
    const now = Timestamp.now();
    for (const partition of planned) tx.create(stores.partitions.ref(migration.id, run.runId, partition.partition), partition);
    tx.update(runRef, {
      status: 'running',
      partitionCount: planned.length,
      partitionMethod: plan.method,
      startedAt: now,
      sessionStartedAt: now,
      updatedAt: now,
      totals: { ...ZERO_TOTALS, targetDocuments: total, updatedAt: now },
      before: { total, atTarget },
    });
    stores.audit.appendIn(tx, {
      action: 'run.started',
      migrationId: migration.id,
      runId: run.runId,
      user: run.user,
      identity: PIPELINE_IDENTITY,
      reason: run.reason,
      details: { holder, partitions: planned.length, partitionMethod: plan.method, total, via: 'cloud-tasks' },
    });
    return true;
  });
  if (!moved) ctx.log.info(`planRun: run ${run.runId} left 'planning' meanwhile (another delivery planned it)`, { runId: run.runId });
  ctx.log.info(`planRun: run ${run.runId} planned: ${planned.length} partitions (${plan.method}), ${total} documents`, { runId: run.runId, total });
  try {
    ctx.log.info(`planRun: ${describeModeOutcome(await modeForMigrateRun(ctx.db, ctx.paths, { migration, runId: run.runId, user: run.user, identity: PIPELINE_IDENTITY }))}`, { runId: run.runId });
  } catch (error) {
    ctx.log.error(`planRun: could not set the migration mode for run ${run.runId}: ${(error as Error).message}`, { runId: run.runId });
  }
  await dispatchFirstTasks(ctx, stores, migration, run.runId, planTaskId(run.runId, 0));
  return 'planned';
}

async function failPlanning(ctx: PipelineContext, stores: PipelineStores, migration: Migration, run: RunDocument, reason: string): Promise<void> {
  const now = Timestamp.now();
  await stores.runs.transition(migration.id, run.runId, 'failed', { statusReason: `failed while planning: ${reason}`, finishedAt: now });
  await stores.audit.append({
    action: 'run.failed',
    migrationId: migration.id,
    runId: run.runId,
    user: run.user,
    identity: PIPELINE_IDENTITY,
    reason,
    details: { during: 'planning', via: 'cloud-tasks' },
  });
  ctx.log.error(`planRun: run ${run.runId} failed while planning: ${reason}`, { runId: run.runId });
}

/** Enqueues the first task of the current epoch of every unfinished partition (already-exists is success). */
async function dispatchFirstTasks(ctx: PipelineContext, stores: PipelineStores, migration: Migration, runId: string, claimant: string): Promise<PlanTaskOutcome> {
  const partitions = await stores.partitions.list(migration.id, runId);
  await Promise.all(partitions.filter((partition) => partition.status !== 'exhausted').map((partition) => enqueueFirst(ctx, migration, runId, partition)));
  if (partitions.length > 0 && partitions.every((partition) => partition.status === 'exhausted')) await finalizeRunIfDone(ctx, migration, runId, claimant);
  return 'dispatched';
}

function enqueueFirst(ctx: PipelineContext, migration: Migration, runId: string, partition: PartitionDocument) {
  const payload = { migrationId: migration.id, runId, partition: partition.partition, seq: partition.resumeFromSeq, epoch: partition.epoch };
  return ctx.batchQueue.enqueue({ name: taskId(runId, partition.partition, payload.seq, payload.epoch), payload });
}

/**
 * Resume n: each unfinished partition still in an older epoch gets its resume point (after the
 * highest contiguous committed seq; new seqs above every existing marker) and epoch n — in a
 * transaction conditional on its epoch, so a redelivery does not compute it twice. Tasks of the
 * older epoch still in the queue then find themselves stale.
 */
async function dispatchResumed(ctx: PipelineContext, stores: PipelineStores, migration: Migration, run: RunDocument): Promise<PlanTaskOutcome> {
  const epoch = run.resumes;
  const holder = pipelineHolder(run.runId);
  try {
    await ctx.db.runTransaction(async (tx) => {
      const claim = await stores.leases.claimIn(tx, migration.id, run.runId, holder);
      stores.leases.write(tx, claim, migration);
      const now = Timestamp.now();
      // A new session: a new circuit-breaker window (task-breaker.ts) and new finalisation attempts.
      tx.update(stores.runs.ref(migration.id, run.runId), { lease: claim.lease, ...NO_FINALIZE_CLAIM, sessionStartedAt: now, updatedAt: now });
    });
  } catch (error) {
    if (!(error instanceof LeaseHeldError)) throw error;
    await failResume(ctx, stores, migration, run, error.message);
    return 'failed';
  }
  for (const partition of await stores.partitions.list(migration.id, run.runId)) {
    if (partition.status === 'exhausted' || partition.epoch >= epoch) continue;
    const point = await stores.partitions.resumePoint(migration.id, run.runId, partition);
    const ref = stores.partitions.ref(migration.id, run.runId, partition.partition);
    await ctx.db.runTransaction(async (tx) => {
      const current = (await tx.get(ref)).data() as PartitionDocument;
      if (current.epoch >= epoch) return;
      tx.update(ref, {
        cursor: point.cursor,
        resumeFromSeq: point.resumeFromSeq,
        nextSeq: point.resumeFromSeq,
        epoch,
        status: 'pending',
        updatedAt: Timestamp.now(),
      });
    });
  }
  return dispatchFirstTasks(ctx, stores, migration, run.runId, planTaskId(run.runId, epoch));
}

async function failResume(ctx: PipelineContext, stores: PipelineStores, migration: Migration, run: RunDocument, reason: string): Promise<void> {
  await stores.runs.transition(migration.id, run.runId, 'failed', { statusReason: `resume ${run.resumes} could not take the lease: ${reason}` });
  await stores.audit.append({
    action: 'run.failed',
    migrationId: migration.id,
    runId: run.runId,
    user: run.user,
    identity: PIPELINE_IDENTITY,
    reason,
    details: { during: 'resume', resume: run.resumes, via: 'cloud-tasks' },
  });
}
