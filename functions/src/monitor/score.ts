import type { CheckLevel, CheckStatus, HealthCheck, SnapshotStatus } from './types';

const PENALTY: Record<CheckLevel, number> = { ok: 0, warning: 5, error: 15, critical: 30 };

/** The statuses that count: a `not-checkable` check is neither a pass nor an issue. */
export function countedLevels(checks: readonly Pick<HealthCheck, 'status'>[]): CheckLevel[] {
  return checks.map((check) => check.status).filter((status): status is CheckLevel => status !== 'not-checkable');
}

/** 100 − 5·warnings − 15·errors − 30·critical, floor 0 (the seed's formula). */
export function healthScore(levels: readonly CheckLevel[]): number {
  return Math.max(0, 100 - levels.reduce((sum, level) => sum + PENALTY[level], 0));
}

/** CRITICAL with any critical check, DEGRADED with any other issue, MAINTENANCE while a run is in progress without issues, else HEALTHY. */
export function snapshotStatus(levels: readonly CheckLevel[], activeRuns: number): SnapshotStatus {
  if (levels.includes('critical')) return 'CRITICAL';
  if (levels.some((level) => level !== 'ok')) return 'DEGRADED';
  return activeRuns > 0 ? 'MAINTENANCE' : 'HEALTHY';
}

export function isIssue(status: CheckStatus): status is 'warning' | 'error' | 'critical' {
  return status === 'warning' || status === 'error' || status === 'critical';
}
