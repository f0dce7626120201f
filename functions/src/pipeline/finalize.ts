/**
 * The end of a task-driven run, once every partition is exhausted: the final sweep (G3: a run
 * completes only when a full scan finds no document left in the old shape), then the run's
 * status, the registry entry, the lease and the audit event — what the local runner's `finish`
 * does, for a run that no single process holds.
 *
 * Several tasks can reach this point (the last two partitions finishing at once, a redelivered
 * task): a transaction on the run document claims the finalisation for one task (the claimant:
 * its task id). Another claimant waits until the claim is older than FINALIZE_CLAIM_TTL_MS
 * (its task died without a retry); the same claimant — the retry of a task that failed or
 * crashed while finalising — takes it over at once. Each claim is a new attempt, and each
 * attempt sweeps in its own partition id (`sweep<resumes>`, then `sweep<resumes>a<attempt>`):
 * the batch seqs of a sweep depend on which documents are in the old shape when it scans, so an
 * attempt reusing an earlier attempt's seqs would find that attempt's markers for other keys and
 * take its own batches for committed. An attempt whose claim was taken over stops at its next
 * batch and records nothing.
 */
import { Timestamp } from '@google-cloud/firestore';
import type { RunAuditAction } from '../control/audit';
import type { RunDocument, RunStatus } from '../control/runs';
import type { Migration } from '../definitions/types';
import { WritePlanner } from '../engine/batch-dispatcher';
import { DEFAULT_MAX_SWEEP_PASSES, FinalSweep, sweepPartitionId, totalsByPhase, type SweepOutcome } from '../engine/final-sweep';
import { Throttler } from '../engine/throttler';
import { PIPELINE_IDENTITY, PipelineStores, pipelineHolder, type PipelineContext } from './context';

/** Longer than the final sweep of a large target takes in one task (the function's timeout is 30 min). */
export const FINALIZE_CLAIM_TTL_MS = 35 * 60 * 1000;

export type FinalizeOutcome = 'completed' | 'paused' | 'failed' | 'stopped' | 'not-ready' | 'claimed-elsewhere' | 'lease-lost';

/** The finalisation claim in the run document (`finalizing`); `finalizeAttempts` counts the session's claims. */
export interface FinalizeClaim {
  attempt: number;
  claimant: string;
  at: Timestamp;
}

type FinalizingRun = RunDocument & { finalizing?: FinalizeClaim | null; finalizeAttempts?: number };

/** The final sweep's partition id for a finalisation attempt of the session `resumes`. */
export function finalSweepPartition(resumes: number, attempt: number): string {
  return attempt <= 1 ? sweepPartitionId(resumes) : `${sweepPartitionId(resumes)}a${attempt}`;
}

/** The run changes that end a session's finalisation claims (a resume starts counting again). */
export const NO_FINALIZE_CLAIM = { finalizing: null, finalizeAttempts: 0 } as const;

/**
 * Finalises the run if every partition is exhausted and no other claimant is finalising it.
 * `claimant` names the task (its task id), so that its retry can take its own claim over.
 */
export async function finalizeRunIfDone(ctx: PipelineContext, migration: Migration, runId: string, claimant: string): Promise<FinalizeOutcome> {
  const stores = new PipelineStores(ctx);
  const partitions = await stores.partitions.list(migration.id, runId);
  if (partitions.length === 0 || partitions.some((partition) => partition.status !== 'exhausted')) return 'not-ready';

  const ref = stores.runs.ref(migration.id, runId);
  const claimed = await ctx.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as FinalizingRun | undefined;
    if (!current || current.status !== 'running') return null;
    const at = Timestamp.now();
    const held = current.finalizing;
    if (held && held.claimant !== claimant && at.toMillis() - held.at.toMillis() < FINALIZE_CLAIM_TTL_MS) return null;
    const claim: FinalizeClaim = { attempt: (current.finalizeAttempts ?? 0) + 1, claimant, at };
    tx.update(ref, { finalizing: claim, finalizeAttempts: claim.attempt, updatedAt: at });
    return { run: current as RunDocument, claim, takenOver: held ?? null };
  });
  if (!claimed) return 'claimed-elsewhere';
  const { run, claim, takenOver } = claimed;
  if (takenOver) {
    ctx.log.warning(`run ${runId}: finalisation attempt ${claim.attempt} takes over attempt ${takenOver.attempt} (claimed by ${takenOver.claimant})`, {
      runId, attempt: claim.attempt, previousAttempt: takenOver.attempt,
    });
  }

  const sweep = await runFinalSweep(ctx, migration, run, claim);
  if (sweep.superseded) return 'claimed-elsewhere';
  if (sweep.stoppedByStatus && !sweep.error) {
    // Paused or stopped meanwhile: the status and its reason are the stopper's; a resume sweeps again.
    await ctx.db.runTransaction(async (tx) => {
      const current = (await tx.get(ref)).data() as FinalizingRun | undefined;
      if (current?.finalizing?.attempt === claim.attempt) tx.update(ref, { finalizing: null, updatedAt: Timestamp.now() });
    });
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
      ...(NO_FINALIZE_CLAIM as Partial<RunDocument>),
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
  /** Another attempt took the finalisation over during the sweep. */
  superseded: boolean;
}

/**
 * The engine's final sweep (engine/final-sweep.ts), in this task, in the attempt's own partition
 * id. It stops early when the run leaves 'running' (a pause or an alert's stop) or another
 * attempt claims the finalisation, checked before each of its batches.
 */
async function runFinalSweep(ctx: PipelineContext, migration: Migration, run: RunDocument, claim: FinalizeClaim): Promise<SweepRun> {
  const { db, wire, config, paths } = ctx;
  let stopped = false;
  let superseded = false;
  let error: Error | null = null;
  const partition = finalSweepPartition(run.resumes, claim.attempt);
  const unsubscribe = db.doc(paths.run(migration.id, run.runId)).onSnapshot(
    (snapshot) => {
      const current = snapshot.data() as FinalizingRun | undefined;
      if (current?.status !== 'running') stopped = true;
      else if (current.finalizing?.attempt !== claim.attempt) superseded = true;
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
      stopping: () => stopped || superseded || error !== null,
      onBatchFailed: (partition, seq, failure) => {
        error ??= new Error(`batch ${partition}-${seq} failed: ${failure.message}`, { cause: failure });
      },
      onBatchSettled: (sweepPartition, seq, result) => {
        ctx.log.info(`final sweep: batch ${sweepPartition}-${seq} ${result.status}`, {
          runId: run.runId, partition: sweepPartition, seq, migrated: result.migrated, failed: result.failed, skipped: result.skipped,
        });
      },
      resumes: run.resumes,
      partition,
      maxPasses: DEFAULT_MAX_SWEEP_PASSES,
    });
    const outcome = await sweep.run();
    return { outcome, progress: sweep.progress(), error, stoppedByStatus: stopped, superseded: superseded && !stopped };
  } finally {
    unsubscribe();
  }
}
