/**
 * The `rollbackBatch` task handler: one batch of a rollback run per task — the next
 * ROLLBACK_BATCH_SIZE before-images of one source run after a cursor (rollback/batch.ts), restored
 * in one commit with the batch marker — then the next batch as a new task; after the last batch
 * of the last source run, the rollback's finish (validation, statuses, audit). Source runs are
 * undone newest first, one chain of tasks, so a document migrated by two runs ends at its oldest
 * before-image.
 *
 * Correctness lives in Firestore (DESIGN.md "The pipeline"): a second delivery of a batch finds
 * its marker, commits nothing and re-enqueues the successor (whose id the queue may remember:
 * 'already-exists' is success) — that is also how a crash between commit and enqueue heals. A
 * rollback run that is not `running` (paused, stopped, aborted, finished) dispatches nothing more.
 *
 * The same queue carries the `start` task of an auto-rollback (`onMigrationAlert`, a run whose
 * `rollbackPolicy` is auto): it creates the rollback run and enqueues its first batch.
 */
import { LeaseHeldError, LeaseLostError, LeaseStore } from '../control/lease';
import { RegistryStore } from '../control/registry-store';
import { RunStore, type RunDocument } from '../control/runs';
import { CircuitBreaker } from '../engine/breaker';
import { rollbackBatch } from '../rollback/batch';
import { finishRollbackRun, RollbackRefusedError, sumRollbackMarkers, type RollbackRunDocument } from '../rollback/rollback-run';
import type { RollbackCaller, RollbackTotals } from '../rollback/types';
import { parseTaskPayload } from './batch-payload';
import { PIPELINE_IDENTITY } from './context';
import { dispatchRollback } from './rollback-dispatch';
import {
  rollbackContextOf,
  rollbackTaskId,
  rollbackTaskSchema,
  type RollbackBatchTask,
  type RollbackPipelineContext,
  type RollbackStartTask,
} from './rollback-payload';

export type RollbackTaskOutcome =
  /** Dropped: the payload, the migration or the run is not what a task of this run names. */
  | 'malformed'
  | 'unknown-migration'
  | 'run-not-found'
  /** The rollback run is paused, stopped, aborted or finished: nothing more is dispatched. */
  | 'run-not-running'
  /** From before a resume of the rollback run (an older epoch). */
  | 'stale'
  | 'lease-lost'
  /** The batch was committed before: only the successor was enqueued. */
  | 'duplicate'
  | 'committed'
  /** The rollback run ended with this task: completed, emergency-stopped or timed out (paused). */
  | 'finished'
  /** An auto-rollback start: the rollback run was created and its first batch enqueued. */
  | 'dispatched'
  /** An auto-rollback the rollback engine refused (e.g. nothing to restore). */
  | 'refused';

export async function handleRollbackTask(ctx: RollbackPipelineContext, payload: unknown): Promise<RollbackTaskOutcome> {
  const parsed = parseTaskPayload(rollbackTaskSchema, payload);
  if (!parsed.task) {
    ctx.log.error(`rollbackBatch: dropping a malformed task: ${parsed.problems}`, { payload });
    return 'malformed';
  }
  if (parsed.task.kind === 'start') return startAutoRollback(ctx, parsed.task);
  const task = parsed.task;
  const fields = { runId: task.rollbackRunId, migrationId: task.migrationId, sourceRunId: task.sourceRunId, seq: task.seq, epoch: task.epoch };
  if (!ctx.registry.has(task.migrationId)) {
    ctx.log.error(`rollbackBatch: migration "${task.migrationId}" is not deployed with these functions; task dropped`, fields);
    return 'unknown-migration';
  }
  const runs = new RunStore(ctx.db, ctx.paths);
  const snapshot = await runs.ref(task.migrationId, task.rollbackRunId).get();
  const run = snapshot.data() as RollbackRunDocument | undefined;
  if (!run) {
    ctx.log.error(`rollbackBatch: rollback run ${task.rollbackRunId} does not exist; task dropped`, fields);
    return 'run-not-found';
  }
  const sourceIndex = run.rollback?.sourceRuns.indexOf(task.sourceRunId) ?? -1;
  if (run.kind !== 'rollback' || sourceIndex < 0 || run.rollback.strategy !== 'restore') {
    ctx.log.error(`rollbackBatch: run ${task.rollbackRunId} is not a restore rollback of source run ${task.sourceRunId}; task dropped`, fields);
    return 'malformed';
  }
  if (run.status !== 'running') {
    ctx.log.info(`rollbackBatch: rollback run ${task.rollbackRunId} is ${run.status}; nothing dispatched`, fields);
    return 'run-not-running';
  }
  if (run.resumes !== task.epoch) {
    ctx.log.info(`rollbackBatch: stale task (the rollback run is in epoch ${run.resumes}); nothing dispatched`, fields);
    return 'stale';
  }
  const rctx = rollbackContextOf(ctx, task.holder);
  if (!(await renewLeaseIfDue(ctx, run, task.holder))) return 'lease-lost';
  const caller: RollbackCaller = { user: run.user, identity: run.identity, reason: run.reason ?? '' };

  const startedAt = (run.startedAt ?? run.createdAt).toMillis();
  if (Date.now() > startedAt + ctx.config.rollback.timeoutMs) {
    const reason = `ROLLBACK_TIMEOUT (${ctx.config.rollback.timeoutMs} ms) passed: stopped, resume to continue`;
    await finishRollbackRun(rctx, task.migrationId, task.rollbackRunId, { status: 'paused', reason, caller });
    ctx.log.error(`rollbackBatch: rollback run ${task.rollbackRunId}: ${reason}`, fields);
    return 'finished';
  }

  const result = await rollbackBatch(rctx, {
    rollbackRunId: task.rollbackRunId,
    migrationId: task.migrationId,
    sourceRunId: task.sourceRunId,
    seq: task.seq,
    afterBackupId: task.afterBackupId,
    force: run.rollback.force,
  });
  ctx.log.info(`rollbackBatch: batch ${task.sourceRunId}-${task.seq} ${result.status}`, { ...fields, ...result.totals, latencyMs: result.latencyMs, done: result.done });

  if (result.status !== 'empty') {
    const trip = breakerTrip(ctx, await sumRollbackMarkers(rctx, task.migrationId, task.rollbackRunId));
    if (trip) {
      await finishRollbackRun(rctx, task.migrationId, task.rollbackRunId, { status: 'emergency_stopped', reason: trip, caller });
      ctx.log.error(`rollbackBatch: rollback circuit breaker: ${trip}: emergency stop`, fields);
      return 'finished';
    }
  }

  const next = successor(task, run, sourceIndex, result);
  if (next) {
    await ctx.rollbackQueue.enqueue({ name: rollbackTaskId(next), payload: next });
    return result.status === 'duplicate' ? 'duplicate' : 'committed';
  }
  const outcome = await finishRollbackRun(rctx, task.migrationId, task.rollbackRunId, { status: 'completed', reason: null, caller });
  ctx.log.info(`rollbackBatch: rollback run ${task.rollbackRunId} finished: ${outcome.status}`, { ...fields, status: outcome.status, statusReason: outcome.statusReason });
  return 'finished';
}

/** The next batch of this source run, else the first of the next (older) source run, else null: the rollback is done. */
function successor(task: RollbackBatchTask, run: RollbackRunDocument, sourceIndex: number, result: { done: boolean; lastBackupId: string | null }): RollbackBatchTask | null {
  if (!result.done) return { ...task, seq: task.seq + 1, afterBackupId: result.lastBackupId };
  const nextSource = run.rollback.sourceRuns[sourceIndex + 1];
  return nextSource ? { ...task, sourceRunId: nextSource, seq: 0, afterBackupId: null } : null;
}

/**
 * ROLLBACK_EMERGENCY_THRESHOLD over the rollback's documents so far (the markers' sums: a task
 * keeps no memory between deliveries), after the breaker's minimum sample.
 */
function breakerTrip(ctx: RollbackPipelineContext, totals: RollbackTotals): string | null {
  const breaker = CircuitBreaker.forRollback(ctx.config);
  breaker.record(totals.restored + totals.alreadyRestored + totals.conflicts + totals.missingDocuments, totals.failed + totals.missingBackups);
  return breaker.tripped()?.reason ?? null;
}

/**
 * Renews the migration's lease when a third of its TTL has passed since the last renewal: the
 * tasks are the rollback's only sign of life. False when another holder has the migration now.
 */
async function renewLeaseIfDue(ctx: RollbackPipelineContext, run: RollbackRunDocument, holder: string): Promise<boolean> {
  const remaining = run.lease ? run.lease.expiresAt.toMillis() - Date.now() : 0;
  if (run.lease?.holder === holder && remaining > ctx.lease.ttlMs - ctx.lease.renewEveryMs) return true;
  try {
    await new LeaseStore(ctx.db, ctx.paths, ctx.lease).renew(run.migrationId, run.runId, holder);
    return true;
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    ctx.log.error(`rollbackBatch: ${error.message}`, { runId: run.runId });
    return false;
  }
}

/** Who starts an auto-rollback in the run documents and the audit trail. */
export const AUTO_ROLLBACK_USER = 'onMigrationAlert';

/**
 * The auto-rollback of an emergency-stopped run whose policy is `auto`. Dropped when the run is
 * no longer emergency-stopped in the same epoch (resumed, aborted, rolled back since), or when a
 * rollback run already holds the migration (an earlier delivery started it). While the stopped
 * run's lease is live, `LeaseHeldError` fails the task and the queue retries it later.
 */
async function startAutoRollback(ctx: RollbackPipelineContext, task: RollbackStartTask): Promise<RollbackTaskOutcome> {
  const fields = { runId: task.sourceRunId, migrationId: task.migrationId, epoch: task.epoch };
  if (!ctx.registry.has(task.migrationId)) {
    ctx.log.error(`rollbackBatch: migration "${task.migrationId}" is not deployed with these functions; auto-rollback dropped`, fields);
    return 'unknown-migration';
  }
  const runs = new RunStore(ctx.db, ctx.paths);
  const source = (await runs.ref(task.migrationId, task.sourceRunId).get()).data() as RunDocument | undefined;
  if (!source) {
    ctx.log.error(`rollbackBatch: run ${task.sourceRunId} does not exist; auto-rollback dropped`, fields);
    return 'run-not-found';
  }
  if (source.status !== 'emergency_stopped' || source.resumes !== task.epoch) {
    ctx.log.info(`rollbackBatch: run ${task.sourceRunId} is ${source.status} (epoch ${source.resumes}); auto-rollback dropped`, fields);
    return 'run-not-running';
  }
  const entry = await new RegistryStore(ctx.db, ctx.paths).get(task.migrationId);
  if (entry?.activeRunId && entry.activeRunId !== task.sourceRunId) {
    const active = (await runs.ref(task.migrationId, entry.activeRunId).get()).data() as RunDocument | undefined;
    if (active?.kind === 'rollback') {
      ctx.log.info(`rollbackBatch: rollback run ${active.runId} already holds "${task.migrationId}"; auto-rollback of ${task.sourceRunId} not started again`, fields);
      return 'duplicate';
    }
  }
  try {
    const dispatched = await dispatchRollback(ctx, {
      migrationId: task.migrationId,
      runId: task.sourceRunId,
      force: false,
      reason: task.reason,
      user: AUTO_ROLLBACK_USER,
      identity: PIPELINE_IDENTITY,
    });
    ctx.log.error(`rollbackBatch: auto-rollback of run ${task.sourceRunId}: rollback run ${dispatched.runId} started`, { ...fields, rollbackRunId: dispatched.runId });
    return 'dispatched';
  } catch (error) {
    if (error instanceof RollbackRefusedError) {
      ctx.log.error(`rollbackBatch: auto-rollback of run ${task.sourceRunId} refused: ${error.message}`, fields);
      return 'refused';
    }
    if (error instanceof LeaseHeldError) ctx.log.info(`rollbackBatch: auto-rollback of run ${task.sourceRunId} waits for the lease: ${error.message}`, fields);
    throw error;
  }
}
