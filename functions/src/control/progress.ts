import { AggregateField, type Firestore } from '@google-cloud/firestore';
import type { ControlPaths } from './paths';

/** Document counters of a batch marker, and of any sum of markers. */
export interface BatchCounters {
  migrated: number;
  skipped: number;
  alreadyMigrated: number;
  failed: number;
}

export interface MarkerTotals extends BatchCounters {
  batches: number;
  /** Mean commit latency over the batches (ms), null without batches. */
  meanLatencyMs: number | null;
}

export const ZERO_TOTALS: MarkerTotals = { batches: 0, migrated: 0, skipped: 0, alreadyMigrated: 0, failed: 0, meanLatencyMs: null };

/**
 * A run's totals, summed over its batch markers by one aggregation query: the markers are the
 * checkpoint, committed with the documents, so these figures are exact whatever happened to the
 * process. (A batch that landed out of order before a crash is read again after the resume and
 * its documents counted once more, as `alreadyMigrated`; `migrated` stays exact.)
 */
export async function sumMarkers(db: Firestore, paths: ControlPaths, migrationId: string, runId: string): Promise<MarkerTotals> {
  const markers = db.collection(paths.batches(migrationId, runId));
  // Firestore allows at most 5 aggregations per query.
  const [counters, latency] = await Promise.all([
    markers
      .aggregate({
        batches: AggregateField.count(),
        migrated: AggregateField.sum('migrated'),
        skipped: AggregateField.sum('skipped'),
        alreadyMigrated: AggregateField.sum('alreadyMigrated'),
        failed: AggregateField.sum('failed'),
      })
      .get(),
    markers.aggregate({ meanLatencyMs: AggregateField.average('latencyMs') }).get(),
  ]);
  const data = counters.data();
  return {
    batches: data.batches,
    migrated: data.migrated,
    skipped: data.skipped,
    alreadyMigrated: data.alreadyMigrated,
    failed: data.failed,
    meanLatencyMs: data.batches > 0 ? latency.data().meanLatencyMs : null,
  };
}

/** Failure records of a run: one per failed document (its id is the hash of the path), so a retried document counts once. */
export async function countFailureRecords(db: Firestore, paths: ControlPaths, migrationId: string, runId: string): Promise<number> {
  const snapshot = await db.collection(paths.failures(migrationId, runId)).count().get();
  return snapshot.data().count;
}

export function processedOf(counters: BatchCounters): number {
  return counters.migrated + counters.skipped + counters.alreadyMigrated + counters.failed;
}

export interface ProgressSnapshot extends BatchCounters {
  batches: number;
  /** Documents handled (migrated, skipped, already at target or failed), this run's earlier sessions included. */
  processed: number;
  /** Documents handled by this session (the process showing the progress). */
  sessionProcessed: number;
  /** Documents of the target when this session started (keys-only count), null if unknown. */
  total: number | null;
  /** Documents per second over the last `RATE_WINDOW_MS`. */
  docsPerSecond: number;
  /** Seconds left at the current rate; null while the rate or the total is unknown. */
  etaSeconds: number | null;
  /** Batches being read, transformed or committed right now. */
  inFlight: number;
  elapsedMs: number;
}

/** Long enough to smooth the steps of batch commits, short enough to follow a throttle. */
export const RATE_WINDOW_MS = 10_000;

/**
 * The live counters of a running session (the progress bar and the run document's checkpointed
 * totals), starting from what the markers of earlier sessions already account for. The rate comes
 * from a sliding window of (time, processed) samples taken at each batch, so it follows slowdowns.
 */
export class ProgressTracker {
  private readonly counters: BatchCounters & { batches: number };
  private readonly samples: Array<{ at: number; processed: number }> = [];
  private inFlight = 0;
  private readonly baseProcessed: number;

  constructor(
    base: MarkerTotals,
    private readonly total: number | null,
    private readonly startedAt: number = Date.now(),
  ) {
    this.counters = { batches: base.batches, migrated: base.migrated, skipped: base.skipped, alreadyMigrated: base.alreadyMigrated, failed: base.failed };
    this.baseProcessed = processedOf(this.counters);
    this.samples.push({ at: startedAt, processed: this.baseProcessed });
  }

  batchStarted(): void {
    this.inFlight++;
  }

  /** A batch ended; `counters` is null when it committed nothing (a duplicate or an error). */
  batchEnded(counters: BatchCounters | null, now: number = Date.now()): void {
    this.inFlight--;
    if (!counters) return;
    this.counters.batches++;
    this.counters.migrated += counters.migrated;
    this.counters.skipped += counters.skipped;
    this.counters.alreadyMigrated += counters.alreadyMigrated;
    this.counters.failed += counters.failed;
    this.samples.push({ at: now, processed: processedOf(this.counters) });
    // Keep one sample older than the window, so the rate always spans the whole window.
    while (this.samples.length > 2 && this.samples[1].at <= now - RATE_WINDOW_MS) this.samples.shift();
  }

  snapshot(now: number = Date.now()): ProgressSnapshot {
    const processed = processedOf(this.counters);
    const oldest = this.samples[0];
    const span = now - oldest.at;
    const docsPerSecond = span > 0 ? ((processed - oldest.processed) * 1000) / span : 0;
    const remaining = this.total === null ? null : Math.max(0, this.total - processed);
    return {
      ...this.counters,
      processed,
      sessionProcessed: processed - this.baseProcessed,
      total: this.total,
      docsPerSecond,
      etaSeconds: remaining === null ? null : remaining === 0 ? 0 : docsPerSecond > 0 ? remaining / docsPerSecond : null,
      inFlight: this.inFlight,
      elapsedMs: now - this.startedAt,
    };
  }
}
