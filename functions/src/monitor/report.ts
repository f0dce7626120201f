import type { StoredHealthSnapshot } from './health-run';
import type { TrendReport } from './trends';
import { DIMENSIONS, type HealthCheck } from './types';

const MARK: Record<HealthCheck['status'], string> = { ok: 'ok', warning: 'WARN', error: 'ERROR', critical: 'CRIT', 'not-checkable': 'n/a' };

function formatValue(value: number | null, unit: string): string {
  if (value === null) return '-';
  if (unit === 'ratio') return `${(value * 100).toFixed(2)} %`;
  return `${Number(value.toFixed(unit === 'ms' ? 1 : 2))} ${unit}`;
}

function scopeText(check: HealthCheck): string {
  if (check.scope.runId) return `run ${check.scope.runId}`;
  return check.scope.migrationId ?? 'database';
}

function trendLines(trend: TrendReport): string[] {
  if (trend.comparedWith === 0) return ['Trend: first snapshot, nothing to compare with'];
  const moved = trend.metrics.filter((metric) => metric.direction !== 'stable');
  const lines = [`Trend: ${trend.overall} (against ${trend.comparedWith} previous snapshot${trend.comparedWith === 1 ? '' : 's'})`];
  for (const metric of moved) {
    const sign = metric.delta > 0 ? '+' : '';
    const relative = metric.relativeDelta === null ? '' : ` (${sign}${(metric.relativeDelta * 100).toFixed(1)} %)`;
    lines.push(`  ${metric.direction.padEnd(9)} ${metric.migrationId ? `${metric.migrationId}/` : ''}${metric.name}: ${Number(metric.current.toFixed(3))} vs ${Number(metric.baseline.toFixed(3))} ${metric.unit}, ${sign}${Number(metric.delta.toFixed(3))}${relative}`);
  }
  if (moved.length === 0) lines.push(`  every metric stable (${trend.metrics.length} compared)`);
  return lines;
}

/** The terminal report of one health run: checks by dimension with value, threshold and action; score, status, trend. */
export function renderHealthReport(snapshot: StoredHealthSnapshot, options: { criticalOnly?: boolean } = {}): string[] {
  const lines = [
    `Health ${snapshot.status} — score ${snapshot.score}/100 at ${snapshot.checkedAt.toDate().toISOString()} (snapshot ${snapshot.id}, ${snapshot.activeRuns} active run${snapshot.activeRuns === 1 ? '' : 's'}, ${snapshot.durationMs} ms)`,
  ];
  if (snapshot.version !== null) {
    const migrations = [...new Set(snapshot.checks.map((check) => check.scope.migrationId).filter((id): id is string => id !== null))];
    lines.push(`Only the migrations of version ${snapshot.version}: ${migrations.join(', ')}`);
  }
  const shown = options.criticalOnly ? snapshot.checks.filter((check) => check.status === 'critical' || check.status === 'error') : snapshot.checks;
  for (const dimension of DIMENSIONS) {
    const checks = shown.filter((check) => check.dimension === dimension);
    if (checks.length === 0) continue;
    lines.push('', `${dimension[0].toUpperCase()}${dimension.slice(1)}`);
    for (const check of checks) {
      const threshold = check.threshold === null ? '' : ` (threshold ${formatValue(check.threshold, check.unit)})`;
      lines.push(`  [${MARK[check.status].padEnd(5)}] ${check.name} — ${scopeText(check)}: ${formatValue(check.value, check.unit)}${threshold}`);
      lines.push(`          ${check.message}`);
      if (check.recommendedAction) lines.push(`          → ${check.recommendedAction}`);
    }
  }
  if (options.criticalOnly && shown.length === 0) lines.push('', 'No error or critical check.');
  const { alerts } = snapshot;
  lines.push('', `Alerts: ${alerts.opened} opened, ${alerts.changed} changed severity, ${alerts.persisting} still open, ${alerts.resolved} resolved`);
  lines.push(...trendLines(snapshot.trend));
  return lines;
}
