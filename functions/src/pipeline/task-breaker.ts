/**
 * The circuit breaker of a task-driven run (MIGRATION_EMERGENCY_THRESHOLD over the last
 * MIGRATION_EMERGENCY_WINDOW documents, after a minimum sample: engine/breaker.ts decides). The
 * local runner keeps its window in memory; no process lives for a task-driven run, so each task
 * rebuilds the window after its commit from the batch markers the session committed, newest
 * first, until the window is full. No counter document is written by every batch, so nothing
 * becomes a hot spot, and the window is exactly what the commits recorded.
 *
 * The session is the run's current start or resume (`sessionStartedAt`): a resumed run — e.g.
 * after the transform was fixed — starts a new window, as the local runner starts a new breaker.
 * Final-sweep markers are left out (they hold old-shape documents only, most of which failed
 * before). A trip moves the run to `emergency_stopped` with the breaker's reason, in a
 * transaction conditional on `running`: concurrent tasks stop it once; it is resumable.
 */
import { Timestamp, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { RunDocument } from '../control/runs';
import { CircuitBreaker, type BreakerTrip } from '../engine/breaker';
import { isSweepPartition } from '../engine/final-sweep';
import { PIPELINE_IDENTITY, type PipelineContext, type PipelineStores } from './context';

/** Markers read per query page while filling the window. */
const MARKER_PAGE = 50;

/** When the run's current session began; runs planned before the field existed fall back to startedAt. */
export function sessionStartedAt(run: RunDocument): Timestamp | null {
  return (run as RunDocument & { sessionStartedAt?: Timestamp | null }).sessionStartedAt ?? run.startedAt;
}

/** The breaker over the session's most recent documents: the trip, or null while the rate is at or below the threshold. */
export async function readTaskBreaker(ctx: PipelineContext, run: RunDocument): Promise<BreakerTrip | null> {
  const since = sessionStartedAt(run);
  if (!since) return null;
  const breaker = CircuitBreaker.forMigration(ctx.config);
  const newestFirst: Array<{ ok: number; failed: number }> = [];
  let sample = 0;
  let last: QueryDocumentSnapshot | undefined;
  const base = ctx.db
    .collection(ctx.paths.batches(run.migrationId, run.runId))
    .where('committedAt', '>=', since)
    .orderBy('committedAt', 'desc')
    .select('partition', 'migrated', 'skipped', 'alreadyMigrated', 'failed')
    .limit(MARKER_PAGE);
  while (sample < breaker.window) {
    const page = await (last ? base.startAfter(last) : base).get();
    for (const marker of page.docs) {
      if (isSweepPartition(marker.get('partition') as string)) continue;
      const failed = marker.get('failed') as number;
      const ok = (marker.get('migrated') as number) + (marker.get('skipped') as number) + (marker.get('alreadyMigrated') as number);
      newestFirst.push({ ok, failed });
      sample += ok + failed;
      if (sample >= breaker.window) break;
    }
    if (page.size < MARKER_PAGE) break;
    last = page.docs[page.size - 1];
  }
  for (let i = newestFirst.length - 1; i >= 0; i--) breaker.record(newestFirst[i].ok, newestFirst[i].failed);
  return breaker.tripped();
}

/** Stops the run for the trip if it is still running; false when another task or request moved it first. */
export async function emergencyStop(ctx: PipelineContext, stores: PipelineStores, run: RunDocument, trip: BreakerTrip): Promise<boolean> {
  const ref = stores.runs.ref(run.migrationId, run.runId);
  const reason = `circuit breaker: ${trip.reason}`;
  const breaker = { rate: trip.rate, failed: trip.failed, sample: trip.sample, threshold: trip.threshold, window: trip.window };
  const stopped = await ctx.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as RunDocument | undefined;
    if (current?.status !== 'running') return false;
    tx.update(ref, { status: 'emergency_stopped', statusReason: reason, breaker, updatedAt: Timestamp.now() });
    stores.audit.appendIn(tx, {
      action: 'run.stopped',
      migrationId: run.migrationId,
      runId: run.runId,
      user: run.user,
      identity: PIPELINE_IDENTITY,
      reason,
      details: { trip: breaker, via: 'cloud-tasks' },
    });
    return true;
  });
  if (stopped) ctx.log.error(`migrateBatch: run ${run.runId} emergency-stopped: ${reason}`, { runId: run.runId, ...breaker });
  return stopped;
}
