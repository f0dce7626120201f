/**
 * The end of a task-driven run, once every partition is exhausted: the final sweep (G3: a run
 * completes only when a full scan finds no document left in the old shape), then the run's
 * status, the registry entry, the lease and the audit event — what the local runner's `finish`
 * does, for a run that no single process holds.
 *
 * Several tasks can reach this point (the last two partitions finishing at once, a redelivered
 * task): a transaction on the run document claims the finalisation, and a claim older than
 * FINALIZE_CLAIM_TTL_MS counts as abandoned (its task crashed), so a retry takes it over.
 */
import { Timestamp } from '@google-cloud/firestore';
import type { RunAuditAction } from '../control/audit';
import type { RunDocument, RunStatus } from '../control/runs';
import type { Migration } from '../definitions/types';
import { WritePlanner } from '../engine/batch-dispatcher';
import { DEFAULT_MAX_SWEEP_PASSES, FinalSweep, totalsByPhase, type SweepOutcome } from '../engine/final-sweep';
import { Throttler } from '../engine/throttler';
import { PIPELINE_IDENTITY, PipelineStores, pipelineHolder, type PipelineContext } from './context';

/** Longer than the final sweep of a large target takes in one task (the function's timeout is 30 min). */
export const FINALIZE_CLAIM_TTL_MS = 35 * 60 * 1000;

export type FinalizeOutcome = 'completed' | 'paused' | 'failed' | 'stopped' | 'not-ready' | 'claimed-elsewhere' | 'lease-lost';

/** Finalises the run if every partition is exhausted and no other task is finalising it. */
export async function finalizeRunIfDone(ctx: PipelineContext, migration: Migration, runId: string): Promise<FinalizeOutcome> {
  const stores = new PipelineStores(ctx);
  const partitions = await stores.partitions.list(migration.id, runId);
  if (partitions.length === 0 || partitions.some((partition) => partition.status !== 'exhausted')) return 'not-ready';

  const claimedAt = Timestamp.now();
  const run = await ctx.db.runTransaction(async (tx) => {
    const ref = stores.runs.ref(migration.id, runId);
    const current = (await tx.get(ref)).data() as (RunDocument & { finalizingAt?: Timestamp | null }) | undefined;
    if (!current || current.status !== 'running') return null;
    if (current.finalizingAt && claimedAt.toMillis() - current.finalizingAt.toMillis() < FINALIZE_CLAIM_TTL_MS) return null;
    tx.update(ref, { finalizingAt: claimedAt, updatedAt: claimedAt });
    return current;
  });
  if (!run) return 'claimed-elsewhere';

  const sweep = await runFinalSweep(ctx, migration, run);
  if (sweep.stoppedByStatus && !sweep.error) {
    // Paused or stopped meanwhile: the status and its reason are the stopper's; a resume sweeps again.
    await stores.runs.update(migration.id, runId, { finalizingAt: null } as Partial<RunDocument>);
    return 'stopped';
  }
  const holder = pipelineHolder(runId);
  const now = Timestamp.now();
  const totals = (await totalsByPhase(ctx.db, ctx.paths, migration.id, runId)).partitions;
  const { examined, migrated, skipped, failed } = sweep.progress;
  const sweepSummary = { passes: sweep.outcome.passes, examined, migrated, skipped, failed, completedAt: sweep.outcome.end === 'clean' ? now : null };

  let status: RunStatus & FinalizeOutcome;
  let action: RunAuditAction;
  let reason: string | null;
  if (sweep.outcome.end === 'clean') [status, action, reason] = ['completed', 'run.completed', null];
  else if (sweep.outcome.end === 'unsettled') {
    [status, action, reason] = [
      'paused',
      'run.paused',
      `final sweep unsettled: each of ${sweep.outcome.passes} full scans still migrated documents written in the old shape meanwhile ` +
        `(the last one ${sweep.outcome.lastPassMigrated}); resume to sweep again once the app writes the new shape (dual-read mode)`,
    ];
  } else [status, action, reason] = ['failed', 'run.failed', sweep.error ? `final sweep failed: ${sweep.error.message}` : 'the final sweep stopped'];

  const released = await stores.leases.release(migration.id, runId, holder, {
    entry: status === 'completed' ? stores.registry.appliedChanges(migration.checksum, run.user) : status === 'failed' ? stores.registry.failedChanges() : {},
    runStatus: status,
    runChanges: {
      statusReason: reason,
      sweep: sweepSummary,
      totals: { ...totals, targetDocuments: run.totals?.targetDocuments ?? null, updatedAt: now },
      ...(status === 'paused' ? {} : { finishedAt: now }),
      ...({ finalizingAt: null } as Partial<RunDocument>),
    },
  });
  if (!released) {
    ctx.log.error(`run ${runId}: another holder took migration "${migration.id}" over before the run could be finalised; nothing recorded`, { runId });
    return 'lease-lost';
  }
  await stores.audit.append({
    action,
    migrationId: migration.id,
    runId,
    user: run.user,
    identity: PIPELINE_IDENTITY,
    reason,
    details: { ...totals, sweep: { passes: sweepSummary.passes, examined, migrated }, via: 'cloud-tasks' },
  });
  ctx.log.info(`run ${runId} ${status}: ${totals.migrated} migrated, ${totals.failed} failed in ${totals.batches} batches; final sweep ${sweep.outcome.end}`, {
    runId, migrationId: migration.id, status, ...totals,
  });
  return status;
}

interface SweepRun {
  outcome: SweepOutcome;
  progress: ReturnType<FinalSweep['progress']>;
  error: Error | null;
  /** The run left 'running' during the sweep. */
  stoppedByStatus: boolean;
}

/**
 * The engine's final sweep (engine/final-sweep.ts), in this task. It stops early when the run
 * leaves 'running' (a pause or an alert's stop), checked before each of its batches.
 */
async function runFinalSweep(ctx: PipelineContext, migration: Migration, run: RunDocument): Promise<SweepRun> {
  const { db, wire, config, paths } = ctx;
  let stopped = false;
  let error: Error | null = null;
  const unsubscribe = db.doc(paths.run(migration.id, run.runId)).onSnapshot(
    (snapshot) => {
      if ((snapshot.data() as RunDocument | undefined)?.status !== 'running') stopped = true;
    },
    () => undefined,
  );
  try {
    const sweep = new FinalSweep({
      db,
      wire,
      migration,
      config,
      batch: { db, wire, migration, config, paths, runId: run.runId },
      throttle: Throttler.fromConfig(config),
      writes: new WritePlanner(migration.target, config.migration.rollbackEnabled),
      stopping: () => stopped || error !== null,
      onBatchFailed: (partition, seq, failure) => {
        error ??= new Error(`batch ${partition}-${seq} failed: ${failure.message}`, { cause: failure });
      },
      resumes: run.resumes,
      maxPasses: DEFAULT_MAX_SWEEP_PASSES,
    });
    const outcome = await sweep.run();
    return { outcome, progress: sweep.progress(), error, stoppedByStatus: stopped };
  } finally {
    unsubscribe();
  }
}
