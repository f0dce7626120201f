/**
 * The final sweep (DESIGN.md G3): a run completes only when a full scan of the target finds no
 * document left in the old shape that could still be migrated. The partitions' key streams read
 * snapshots, so a document the app creates — or edits back into the old shape — behind a
 * partition's cursor is never seen by them; the sweep catches it.
 *
 * A pass streams the target in key order with the marker field only (`!=` queries cannot find
 * documents missing the marker field, so it scans; one read per document, no document bodies)
 * and sends the documents in the old shape through the same batch core as the partitions, in the
 * sweep's own partition id (`sweep<resumes>`: one seq space per session, so no seq can collide
 * with a crashed session's). The batch core re-reads and classifies them:
 * - pass 1 sends every document in the old shape: documents created or edited behind the
 *   cursors migrate; documents that failed or were skipped are classified again (contention
 *   failures get their retry, a resume with a fixed definition retries every failure, a failure
 *   record's `attempts` grows by one);
 * - pass k > 1 sends only the old-shape documents updated since pass k−1 began (its stream's
 *   read time, Firestore's clock): every other one was classified by pass k−1 as it is now.
 * The sweep ends when a pass migrates nothing: every document left in the old shape then failed
 * (a failure record with its class and severity: the run completes WITH recorded failures) or
 * was skipped by `up()`. After `maxPasses` passes that each still migrated documents (the app
 * keeps writing the old shape), it gives up and the run pauses, resumable.
 *
 * The circuit breaker does not see sweep batches: they hold old-shape documents only, most of
 * which failed before, so their failure rate says nothing about the migration.
 */
import { FieldPath, type Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import type { ControlPaths } from '../control/paths';
import { sumMarkers, type MarkerTotals } from '../control/progress';
import type { Migration } from '../definitions/types';
import type { BatchContext, BatchResult } from './batch-core';
import { documentsPerCommit } from './batch-size';
import { BatchDispatcher, type WritePlanner } from './batch-dispatcher';
import { streamQueryDocuments } from './key-reader';
import { targetQuery } from './planner';
import type { Throttler } from './throttler';
import type { WireClient } from './wire/client';
import { hasTargetMarker } from './target-survey';
import type { RawFields, RawTimestamp } from './wire/types';

export const DEFAULT_MAX_SWEEP_PASSES = 5;

/** Marker ids of every session's sweep (`sweep0-00000000`, `sweep1-…`) lie in [from, before). */
const SWEEP_MARKER_IDS = { from: 'sweep', before: 'sweeq' } as const;

/** The sweep's partition id in a session: `resumes` is unique per session of a run. */
export function sweepPartitionId(resumes: number): string {
  return `sweep${resumes}`;
}

/** Whether a batch marker's partition is a final sweep's (every sweep partition id starts so). */
export function isSweepPartition(partition: string): boolean {
  return partition.startsWith('sweep');
}

export interface TotalsByPhase {
  /** The partitions' markers: the main pass. */
  partitions: MarkerTotals;
  /** The final sweeps' markers, over every session. */
  sweep: MarkerTotals;
}

/**
 * A run's marker totals split into the main pass and the final sweep. Firestore cannot sum with a
 * range filter on the id (it would need an index with fields after `__name__`), so the sweep's
 * markers — few: they hold only documents found in the old shape after the main pass — are
 * streamed and added up, and the main pass is the aggregation over all markers minus them.
 */
export async function totalsByPhase(db: Firestore, paths: ControlPaths, migrationId: string, runId: string): Promise<TotalsByPhase> {
  const markers = db.collection(paths.batches(migrationId, runId));
  const sweepQuery = markers
    .where(FieldPath.documentId(), '>=', markers.doc(SWEEP_MARKER_IDS.from))
    .where(FieldPath.documentId(), '<', markers.doc(SWEEP_MARKER_IDS.before))
    .select('migrated', 'skipped', 'alreadyMigrated', 'failed', 'latencyMs');
  const sweepSum = async (): Promise<MarkerTotals & { latencyMs: number }> => {
    const sum = { batches: 0, migrated: 0, skipped: 0, alreadyMigrated: 0, failed: 0, meanLatencyMs: null, latencyMs: 0 };
    for await (const snapshot of sweepQuery.stream() as AsyncIterable<QueryDocumentSnapshot>) {
      const marker = snapshot.data();
      sum.batches++;
      sum.migrated += marker.migrated;
      sum.skipped += marker.skipped;
      sum.alreadyMigrated += marker.alreadyMigrated;
      sum.failed += marker.failed;
      sum.latencyMs += marker.latencyMs;
    }
    return sum;
  };
  const [all, sweep] = await Promise.all([sumMarkers(db, paths, migrationId, runId), sweepSum()]);
  const batches = all.batches - sweep.batches;
  const { latencyMs, ...sweepTotals } = sweep;
  return {
    partitions: {
      batches,
      migrated: all.migrated - sweep.migrated,
      skipped: all.skipped - sweep.skipped,
      alreadyMigrated: all.alreadyMigrated - sweep.alreadyMigrated,
      failed: all.failed - sweep.failed,
      meanLatencyMs: batches > 0 && all.meanLatencyMs !== null ? (all.meanLatencyMs * all.batches - latencyMs) / batches : null,
    },
    sweep: { ...sweepTotals, meanLatencyMs: sweep.batches > 0 ? latencyMs / sweep.batches : null },
  };
}

export interface SweepProgress {
  /** The pass under way (1-based; 0 before the first). */
  pass: number;
  /** Documents the current pass has read. */
  scanned: number;
  /** Documents sent through the batch core, over all passes of this session. */
  examined: number;
  migrated: number;
  skipped: number;
  alreadyMigrated: number;
  failed: number;
  batches: number;
}

/**
 * `clean`: the last pass migrated nothing. `stopped`: the run stopped (or a batch failed) during
 * the sweep. `unsettled`: `maxPasses` passes each migrated documents.
 */
export type SweepEnd = 'clean' | 'stopped' | 'unsettled';

export interface SweepOutcome {
  end: SweepEnd;
  passes: number;
  /** Documents migrated by the last pass made. */
  lastPassMigrated: number;
}

export interface SweepDeps {
  db: Firestore;
  wire: WireClient;
  migration: Migration;
  config: FiremigrateConfig;
  batch: BatchContext;
  throttle: Throttler;
  writes: WritePlanner;
  stopping: () => boolean;
  /** The batch core threw in a sweep batch. */
  onBatchFailed: (partition: string, seq: number, error: Error) => void;
  /** Each settled sweep batch (for logs). */
  onBatchSettled?: (partition: string, seq: number, result: BatchResult) => void;
  /** The session's resume count (see `sweepPartitionId`). */
  resumes: number;
  /**
   * The sweep's partition id when one session may sweep more than once (a retried task-driven
   * finalisation): must start with `sweepPartitionId(resumes)`. Default: exactly that.
   */
  partition?: string;
  maxPasses: number;
  restartEveryMs?: number;
}

function isAfterOrAt(time: RawTimestamp | null | undefined, since: RawTimestamp): boolean {
  if (!time) return true;
  // Seconds arrive as int64 (a string or a Long, depending on the decoder's options).
  const seconds = Number(String(time.seconds ?? 0));
  const sinceSeconds = Number(String(since.seconds ?? 0));
  return seconds > sinceSeconds || (seconds === sinceSeconds && (time.nanos ?? 0) >= (since.nanos ?? 0));
}

export class FinalSweep {
  private readonly state: SweepProgress = { pass: 0, scanned: 0, examined: 0, migrated: 0, skipped: 0, alreadyMigrated: 0, failed: 0, batches: 0 };
  private readonly dispatcher: BatchDispatcher;

  constructor(private readonly deps: SweepDeps) {
    if (!(Number.isInteger(deps.maxPasses) && deps.maxPasses >= 1)) throw new RangeError(`the final sweep's maxPasses must be an integer ≥ 1, got ${deps.maxPasses}`);
    const partition = deps.partition ?? sweepPartitionId(deps.resumes);
    if (!partition.startsWith(sweepPartitionId(deps.resumes))) throw new RangeError(`the final sweep's partition id must start with ${sweepPartitionId(deps.resumes)}, got ${partition}`);
    this.dispatcher = new BatchDispatcher(
      {
        batch: deps.batch,
        throttle: deps.throttle,
        writes: deps.writes,
        stopping: deps.stopping,
        events: {
          started: () => undefined,
          settled: (seq, result) => {
            this.count(result);
            deps.onBatchSettled?.(partition, seq, result);
          },
          failed: (seq, error) => deps.onBatchFailed(partition, seq, error),
        },
      },
      partition,
      // One stream feeds the sweep: it may use the whole pool.
      deps.throttle.pool.size,
      0,
    );
  }

  progress(): SweepProgress {
    return { ...this.state };
  }

  async run(): Promise<SweepOutcome> {
    let since: RawTimestamp | null = null;
    let lastPassMigrated = 0;
    for (let pass = 1; pass <= this.deps.maxPasses; pass++) {
      this.state.pass = pass;
      this.state.scanned = 0;
      const migratedBefore = this.state.migrated;
      const result = await this.pass(since);
      lastPassMigrated = this.state.migrated - migratedBefore;
      if (!result.completed) return { end: 'stopped', passes: pass, lastPassMigrated };
      if (lastPassMigrated === 0) return { end: 'clean', passes: pass, lastPassMigrated };
      since = result.startedAt;
    }
    return { end: 'unsettled', passes: this.deps.maxPasses, lastPassMigrated };
  }

  /** One full scan; `startedAt` is the read time of its first response (null for an empty target). */
  private async pass(since: RawTimestamp | null): Promise<{ completed: boolean; startedAt: RawTimestamp | null }> {
    const { db, wire, migration, config, stopping } = this.deps;
    const { field } = migration.marker;
    const perBatch = documentsPerCommit(config.migration);
    const query = targetQuery(db, migration.target).select(new FieldPath(field)).orderBy(FieldPath.documentId());
    const stream = streamQueryDocuments(db, wire, query, {
      restartEveryMs: this.deps.restartEveryMs,
      maxRetries: config.migration.maxRetries,
      retryDelayMs: config.migration.retryDelayMs,
    });
    let startedAt: RawTimestamp | null = null;
    let keys: string[] = [];
    let stopped = false;
    try {
      for await (const { path, document, readTime } of stream) {
        if (stopping()) {
          stopped = true;
          break;
        }
        startedAt ??= readTime ?? null;
        this.state.scanned++;
        if (hasTargetMarker(document.fields as RawFields, migration.marker)) continue;
        if (since && !isAfterOrAt(document.updateTime, since)) continue;
        keys.push(path);
        if (keys.length === perBatch) {
          if (!(await this.dispatcher.dispatchDeferred()) || !(await this.dispatcher.dispatch(keys))) {
            stopped = true;
            break;
          }
          keys = [];
        }
      }
      if (!stopped && keys.length > 0 && !(await this.dispatcher.dispatch(keys))) stopped = true;
      if (!stopped) await this.dispatcher.drain();
    } finally {
      await this.dispatcher.settle();
    }
    const completed = !stopped && !stopping() && !this.dispatcher.hasDeferred && this.dispatcher.failedBatches === 0;
    return { completed, startedAt };
  }

  private count(result: BatchResult): void {
    this.state.batches++;
    this.state.examined += result.migrated + result.skipped + result.alreadyMigrated + result.failed;
    this.state.migrated += result.migrated;
    this.state.skipped += result.skipped;
    this.state.alreadyMigrated += result.alreadyMigrated;
    this.state.failed += result.failed;
  }
}
