/**
 * Performance and availability: the migration's service probes (the app's own reads, run for
 * real, MONITOR_SAMPLE_SIZE times each), and — for a run in progress — batch latency, throughput,
 * error rate and worker memory from its recent batch markers, its stalled partitions, and the RPC
 * pool utilisation from the run's throttle summary.
 */
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { AlertThresholds } from '../../config';
import { PartitionStore } from '../../control/partitions';
import type { ControlPaths } from '../../control/paths';
import type { RunDocument } from '../../control/runs';
import type { ServiceProbe } from '../../definitions/types';
import { evaluateAbove, formatRatio, type Evaluation } from '../evaluate';
import { summarizeLatencies, type LatencySummary } from '../percentiles';
import type { CheckLevel, CheckResult } from '../types';

// ---- service probes -------------------------------------------------------------------------

export interface ProbeMeasurement {
  name: string;
  latencies: LatencySummary | null;
  attempts: number;
  failures: number;
  /** The first failure's message (the query's error, or the HTTP status). */
  firstError: string | null;
}

const WORSE: Record<CheckLevel, number> = { ok: 0, warning: 1, error: 2, critical: 3 };
const worst = (a: Evaluation, b: Evaluation): Evaluation => (WORSE[b.status] > WORSE[a.status] ? b : a);

export function probeCheck(measured: ProbeMeasurement, thresholds: AlertThresholds): CheckResult {
  const failureRate = measured.attempts > 0 ? measured.failures / measured.attempts : 0;
  const base = { name: `probe:${measured.name}`, dimension: 'performance' as const, unit: 'ms' };
  if (!measured.latencies) {
    return {
      ...base, status: 'critical', value: null, threshold: null,
      message: `all ${measured.attempts} runs of the app's query "${measured.name}" failed: ${measured.firstError ?? 'no answer'}`,
      recommendedAction: 'The app cannot read its data: pause the migration (firemigrate control pause) and check indexes and rules for this query.',
    };
  }
  const latency = evaluateAbove(measured.latencies.p95, thresholds.responseTime);
  const failures = measured.failures > 0 ? evaluateAbove(failureRate, thresholds.errorRate) : latency;
  const verdict = worst(latency, failures);
  const { p50, p95, p99, samples } = measured.latencies;
  const failed = measured.failures > 0 ? `; ${measured.failures} of ${measured.attempts} failed (${formatRatio(failureRate)}): ${measured.firstError}` : '';
  return {
    ...base, status: verdict.status, value: p95, threshold: verdict === latency ? latency.threshold : null,
    message: `app query "${measured.name}": P50 ${p50.toFixed(1)} ms, P95 ${p95.toFixed(1)} ms, P99 ${p99.toFixed(1)} ms over ${samples} runs${failed}`,
    recommendedAction:
      verdict.status === 'ok'
        ? null
        : 'The app\'s reads are slowing down: lower MIGRATION_CONCURRENT_BATCHES or MIGRATION_QUOTA_SAFETY, or pause the run (firemigrate control pause) until the probe recovers.',
  };
}

export interface ProbeOptions {
  samples: number;
  /** Deadline of one URL probe. */
  timeoutMs: number;
  now?: () => number;
}

/** Runs one probe `samples` times, one after the other (concurrent runs would measure contention of our own making). */
export async function measureProbe(db: Firestore, probe: ServiceProbe, options: ProbeOptions): Promise<ProbeMeasurement> {
  const now = options.now ?? (() => performance.now());
  const latencies: number[] = [];
  let failures = 0;
  let firstError: string | null = null;
  for (let i = 0; i < options.samples; i++) {
    const started = now();
    try {
      if ('query' in probe) {
        await probe.query(db).get();
      } else {
        const response = await fetch(probe.url, { signal: AbortSignal.timeout(options.timeoutMs) });
        await response.arrayBuffer();
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
      }
      latencies.push(now() - started);
    } catch (error) {
      failures++;
      firstError ??= (error as Error).message;
    }
  }
  return { name: probe.name, latencies: summarizeLatencies(latencies), attempts: options.samples, failures, firstError };
}

// ---- batch markers ----------------------------------------------------------------------------

/** The fields of a batch marker the monitor reads. */
export interface MarkerSample {
  partition: string;
  latencyMs: number;
  rssMb: number;
  migrated: number;
  skipped: number;
  alreadyMigrated: number;
  failed: number;
  committedAt: Timestamp;
}

export interface BatchFigures {
  batches: number;
  processed: number;
  failed: number;
  latency: LatencySummary | null;
  /** Documents per second between the first and the last commit of the window; null with fewer than 2 commits. */
  docsPerSecond: number | null;
  peakRssMb: number | null;
}

const processedOf = (marker: MarkerSample): number => marker.migrated + marker.skipped + marker.alreadyMigrated + marker.failed;

/** Figures of a set of markers (pure: the integration tests compare them with the markers read back). */
export function batchFigures(markers: readonly MarkerSample[]): BatchFigures {
  const ordered = [...markers].sort((a, b) => a.committedAt.toMillis() - b.committedAt.toMillis());
  const processed = ordered.reduce((sum, marker) => sum + processedOf(marker), 0);
  let docsPerSecond: number | null = null;
  if (ordered.length >= 2) {
    const spanMs = ordered[ordered.length - 1].committedAt.toMillis() - ordered[0].committedAt.toMillis();
    // The first commit opens the interval: the documents of the commits after it were done within it.
    if (spanMs > 0) docsPerSecond = ((processed - processedOf(ordered[0])) * 1000) / spanMs;
  }
  return {
    batches: ordered.length,
    processed,
    failed: ordered.reduce((sum, marker) => sum + marker.failed, 0),
    latency: summarizeLatencies(ordered.map((marker) => marker.latencyMs)),
    docsPerSecond,
    peakRssMb: ordered.length > 0 ? Math.max(...ordered.map((marker) => marker.rssMb)) : null,
  };
}

export interface RunFigureContext {
  thresholds: AlertThresholds;
  /** MIGRATION_MEMORY_THRESHOLD of the run: where its runner slows down. */
  runnerMemoryThresholdMb: number;
  windowMs: number;
}

export function batchChecks(figures: BatchFigures, ctx: RunFigureContext): CheckResult[] {
  const window = `the last ${Math.round(ctx.windowMs / 1000)} s`;
  if (figures.batches === 0) {
    const none = (name: string, unit: string): CheckResult => ({
      name, dimension: 'performance', status: 'not-checkable', value: null, threshold: null, unit,
      message: `not measured: no batch committed in ${window}`, recommendedAction: null,
    });
    return [none('batchLatency', 'ms'), none('throughput', 'docs/s'), none('errorRate', 'ratio'), none('workerMemory', 'MB')];
  }
  const latency = figures.latency!;
  const latencyVerdict = evaluateAbove(latency.p95, ctx.thresholds.responseTime);
  const rate = figures.processed > 0 ? figures.failed / figures.processed : 0;
  const rateVerdict = evaluateAbove(rate, ctx.thresholds.errorRate);
  const memoryVerdict = evaluateAbove(figures.peakRssMb!, ctx.thresholds.memory);
  return [
    {
      name: 'batchLatency', dimension: 'performance', status: latencyVerdict.status, value: latency.p95, threshold: latencyVerdict.threshold, unit: 'ms',
      message: `batch latency P95 ${latency.p95} ms, P99 ${latency.p99} ms over ${latency.samples} batches committed in ${window}`,
      recommendedAction: latencyVerdict.status === 'ok' ? null : 'Batches are slow: lower MIGRATION_BATCH_SIZE or MIGRATION_CONCURRENT_BATCHES, and look for contention with the app\'s writes (precondition retries).',
    },
    {
      name: 'throughput', dimension: 'performance', status: figures.docsPerSecond === null ? 'not-checkable' : 'ok', value: figures.docsPerSecond, threshold: null, unit: 'docs/s',
      message:
        figures.docsPerSecond === null
          ? `not measured: ${figures.batches} batch${figures.batches === 1 ? '' : 'es'} in ${window} (a rate needs two commits at different times)`
          : `${figures.docsPerSecond.toFixed(1)} documents/s over ${figures.batches} batches committed in ${window}`,
      recommendedAction: null,
    },
    {
      name: 'errorRate', dimension: 'performance', status: rateVerdict.status, value: rate, threshold: rateVerdict.threshold, unit: 'ratio',
      message: `${figures.failed} of ${figures.processed} documents failed in ${window} (${formatRatio(rate)})`,
      recommendedAction: rateVerdict.status === 'ok' ? null : 'Documents are failing: read the failure records (firemigrate status <run>), fix the transform or the data, then resume; roll back if the app is affected.',
    },
    {
      name: 'workerMemory', dimension: 'performance', status: memoryVerdict.status, value: figures.peakRssMb, threshold: memoryVerdict.threshold, unit: 'MB',
      message: `peak worker RSS ${figures.peakRssMb} MB over ${figures.batches} batches (the runner slows at MIGRATION_MEMORY_THRESHOLD ${ctx.runnerMemoryThresholdMb} MB)`,
      recommendedAction: memoryVerdict.status === 'ok' ? null : 'Lower MIGRATION_BATCH_SIZE or MIGRATION_CONCURRENT_BATCHES (memory grows with the documents in flight), or give the function more memory.',
    },
  ];
}

export function poolCheck(throttle: RunDocument['throttle']): CheckResult {
  if (!throttle) {
    return {
      name: 'rpcPool', dimension: 'performance', status: 'not-checkable', value: null, threshold: null, unit: 'ratio',
      message: 'not measured: the run has no throttle summary yet (the local runner writes one at each checkpoint; Cloud Tasks batches run one per instance)',
      recommendedAction: null,
    };
  }
  const utilisation = throttle.poolSize > 0 ? throttle.poolInUse / throttle.poolSize : 0;
  const saturated = utilisation >= 1;
  return {
    name: 'rpcPool', dimension: 'performance', status: saturated ? 'warning' : 'ok', value: utilisation, threshold: 1, unit: 'ratio',
    message: `${throttle.poolInUse} of ${throttle.poolSize} Firestore RPCs in flight at ${throttle.at.toDate().toISOString()}${throttle.throttled && throttle.reason ? `; throttled: ${throttle.reason}` : ''}`,
    recommendedAction: saturated ? 'Batches wait for RPC slots: raise MIGRATION_CONNECTION_POOL_SIZE if Firestore latency allows, or accept the slower pace.' : null,
  };
}

export function stalledCheck(stalled: readonly string[], stallAfterMs: number): CheckResult {
  return {
    name: 'stalledPartitions', dimension: 'performance', status: stalled.length > 0 ? 'error' : 'ok', value: stalled.length, threshold: 0, unit: 'count',
    message: stalled.length > 0 ? `no batch committed for over ${Math.round(stallAfterMs / 60000)} min in ${stalled.join(', ')}` : 'every unfinished partition committed recently',
    recommendedAction: stalled.length > 0 ? 'A partition stopped moving: check the migrateBatch task logs (or the runner process), then resume the run (firemigrate run --resume).' : null,
  };
}

/** Most recent markers read per health run: bounds the read whatever the run's pace. */
export const RECENT_MARKERS_LIMIT = 5000;

export async function readRecentMarkers(db: Firestore, paths: ControlPaths, run: Pick<RunDocument, 'migrationId' | 'runId'>, since: Timestamp): Promise<MarkerSample[]> {
  const snapshot = await db
    .collection(paths.batches(run.migrationId, run.runId))
    .where('committedAt', '>', since)
    .orderBy('committedAt', 'desc')
    .limit(RECENT_MARKERS_LIMIT)
    .select('partition', 'latencyMs', 'rssMb', 'migrated', 'skipped', 'alreadyMigrated', 'failed', 'committedAt')
    .get();
  return snapshot.docs.map((doc) => doc.data() as MarkerSample);
}

/** Unfinished partitions with no batch committed since `since` (and not planned or resumed since). */
export async function stalledPartitions(db: Firestore, paths: ControlPaths, run: Pick<RunDocument, 'migrationId' | 'runId'>, recent: readonly MarkerSample[], since: Timestamp): Promise<string[]> {
  const active = new Set(recent.map((marker) => marker.partition));
  const stalled: string[] = [];
  for (const partition of await new PartitionStore(db, paths).list(run.migrationId, run.runId)) {
    // updatedAt: planned or resumed (a new epoch) within the window counts as activity.
    if (partition.status === 'exhausted' || active.has(partition.partition) || partition.updatedAt.toMillis() > since.toMillis()) continue;
    stalled.push(partition.partition);
  }
  return stalled;
}
