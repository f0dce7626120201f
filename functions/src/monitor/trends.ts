import type { HealthMetric } from './types';

export type TrendDirection = 'improving' | 'stable' | 'degrading';

/** Which way is better for a metric; metrics absent here are compared but never called better or worse. */
const BETTER: Record<string, 'higher' | 'lower'> = {
  score: 'higher',
  firestoreLatencyMs: 'lower',
  probeP50Ms: 'lower',
  probeP95Ms: 'lower',
  probeP99Ms: 'lower',
  probeErrorRate: 'lower',
  batchP95Ms: 'lower',
  batchP99Ms: 'lower',
  throughputDocsPerSecond: 'higher',
  errorRate: 'lower',
  rssMb: 'lower',
  poolUtilisation: 'lower',
  integrityRatio: 'higher',
  orphans: 'lower',
  readableRatio: 'higher',
  syncLaggingDocs: 'lower',
};

/**
 * A change within this fraction of the baseline is noise (latencies of a few ms wobble by tens of
 * percent, so also within `STABLE_ABSOLUTE` of it). Counts (score points, orphans) have no noise.
 */
export const STABLE_RELATIVE = 0.1;
const EXACT = new Set(['score', 'orphans', 'syncLaggingDocs']);
const STABLE_ABSOLUTE: Record<string, number> = { firestoreLatencyMs: 5, probeP50Ms: 5, probeP95Ms: 5, probeP99Ms: 5, batchP95Ms: 5, batchP99Ms: 5, rssMb: 8 };

export interface MetricTrend {
  name: string;
  migrationId: string | null;
  unit: string;
  current: number;
  /** Mean of the metric over the previous snapshots that have it. */
  baseline: number;
  delta: number;
  /** delta / baseline; null when the baseline is 0. */
  relativeDelta: number | null;
  direction: TrendDirection;
  /** Previous snapshots the baseline averages. */
  samples: number;
}

export interface TrendReport {
  /** The score's direction (stable when there is no previous snapshot). */
  overall: TrendDirection;
  /** Previous snapshots compared with. */
  comparedWith: number;
  metrics: MetricTrend[];
}

export function metricKey(metric: Pick<HealthMetric, 'name' | 'migrationId'>): string {
  return metric.migrationId ? `${metric.migrationId}/${metric.name}` : metric.name;
}

function direction(name: string, delta: number, baseline: number): TrendDirection {
  const better = BETTER[name];
  const tolerance = EXACT.has(name) ? 0 : Math.max(Math.abs(baseline) * STABLE_RELATIVE, STABLE_ABSOLUTE[name] ?? 0);
  if (!better || Math.abs(delta) <= tolerance) return 'stable';
  return (delta > 0) === (better === 'higher') ? 'improving' : 'degrading';
}

/**
 * Compares this run's metrics with the same metrics (by name and migration) of previous
 * snapshots, newest first: each metric against the mean of its previous values. The overall
 * direction is the score's against the latest previous score.
 */
export function compareTrends(current: readonly HealthMetric[], previous: ReadonlyArray<Record<string, number>>): TrendReport {
  const metrics: MetricTrend[] = [];
  for (const metric of current) {
    const key = metricKey(metric);
    const values = previous.map((snapshot) => snapshot[key]).filter((value): value is number => typeof value === 'number' && Number.isFinite(value));
    if (values.length === 0) continue;
    const baseline = values.reduce((sum, value) => sum + value, 0) / values.length;
    const delta = metric.value - baseline;
    metrics.push({
      name: metric.name,
      migrationId: metric.migrationId,
      unit: metric.unit,
      current: metric.value,
      baseline,
      delta,
      relativeDelta: baseline === 0 ? null : delta / baseline,
      direction: direction(metric.name, delta, baseline),
      samples: values.length,
    });
  }
  const score = current.find((metric) => metric.name === 'score' && metric.migrationId === null);
  const lastScore = previous.find((snapshot) => typeof snapshot.score === 'number')?.score;
  const overall: TrendDirection = score === undefined || lastScore === undefined ? 'stable' : direction('score', score.value - lastScore, lastScore);
  return { overall, comparedWith: previous.length, metrics };
}

/** The metrics as stored in a snapshot: `{ "<migrationId>/<name>" | "<name>": value }`. */
export function metricMap(metrics: readonly HealthMetric[]): Record<string, number> {
  return Object.fromEntries(metrics.map((metric) => [metricKey(metric), metric.value]));
}
