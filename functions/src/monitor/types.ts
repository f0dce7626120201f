/**
 * The health monitor's vocabulary: one check result per measured figure, grouped into the seed's
 * four dimensions. A check that cannot be measured where it runs (the Admin API on the emulator, a
 * queue depth the API does not report) says so with `not-checkable` and counts as neither a pass
 * nor an issue: it never hides behind `ok`.
 */
export type Dimension = 'infrastructure' | 'performance' | 'integrity' | 'compatibility';
export const DIMENSIONS: readonly Dimension[] = ['infrastructure', 'performance', 'integrity', 'compatibility'];

/** The levels that count in the score: ok, warning (−5), error (−15), critical (−30). */
export type CheckLevel = 'ok' | 'warning' | 'error' | 'critical';
export type CheckStatus = CheckLevel | 'not-checkable';

export type SnapshotStatus = 'HEALTHY' | 'DEGRADED' | 'CRITICAL' | 'MAINTENANCE';

/** What a check is about: the whole database, one migration, or one run of it. */
export interface CheckScope {
  migrationId: string | null;
  runId: string | null;
}

export interface HealthCheck {
  /** Stable per scope (de-duplicates alerts): e.g. `probe:recent-open-trades`, `batchLatency`. */
  name: string;
  dimension: Dimension;
  status: CheckStatus;
  /** The measured value; null when nothing could be measured (see `message`). */
  value: number | null;
  /** The threshold the status was decided against (the one crossed, else the warning one); null when none applies. */
  threshold: number | null;
  /** `ms`, `ratio`, `MB`, `docs/s`, `count`, `docs`. */
  unit: string;
  message: string;
  /** What an operator should do about it; null when nothing is to be done. */
  recommendedAction: string | null;
  scope: CheckScope;
}

/** A check before the scope is attached (each check file builds these). */
export type CheckResult = Omit<HealthCheck, 'scope'>;

export function scoped(scope: CheckScope, results: readonly CheckResult[]): HealthCheck[] {
  return results.map((result) => ({ ...result, scope }));
}

/** One figure of a health run, for trends and the metrics sink. */
export interface HealthMetric {
  /** `score`, `probeP95Ms`, `batchP95Ms`, `batchP99Ms`, `throughputDocsPerSecond`, `errorRate`, `integrityRatio`, … */
  name: string;
  migrationId: string | null;
  value: number;
  unit: string;
}
