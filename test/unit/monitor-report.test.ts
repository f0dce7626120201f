import { Timestamp } from '@google-cloud/firestore';
import { exitCodeOf } from '../../functions/src/cli/commands/monitor';
import type { StoredHealthSnapshot } from '../../functions/src/monitor/health-run';
import { renderHealthReport } from '../../functions/src/monitor/report';
import type { HealthCheck } from '../../functions/src/monitor/types';

const check = (fields: Partial<HealthCheck> & Pick<HealthCheck, 'name' | 'dimension' | 'status'>): HealthCheck => ({
  value: null, threshold: null, unit: 'ms', message: `${fields.name} message`, recommendedAction: null, scope: { migrationId: null, runId: null }, ...fields,
});

const snapshot: StoredHealthSnapshot = {
  id: 'snap-2',
  status: 'CRITICAL',
  score: 55,
  checkedAt: Timestamp.fromDate(new Date('2026-11-29T12:00:00Z')),
  durationMs: 830,
  activeRuns: 1,
  checks: [
    check({ name: 'firestoreReachable', dimension: 'infrastructure', status: 'ok', value: 12.34 }),
    check({ name: 'indexes', dimension: 'infrastructure', status: 'not-checkable', unit: 'count', message: 'not checkable on the emulator' }),
    check({ name: 'errorRate', dimension: 'performance', status: 'critical', value: 0.2, threshold: 0.05, unit: 'ratio', recommendedAction: 'read the failure records', scope: { migrationId: 'm', runId: 'r1' } }),
    check({ name: 'orphans', dimension: 'integrity', status: 'warning', value: 4, threshold: 0, unit: 'count', scope: { migrationId: 'm', runId: null } }),
  ],
  runs: [],
  metrics: { score: 55 },
  version: null,
  trend: {
    overall: 'degrading',
    comparedWith: 2,
    metrics: [
      { name: 'score', migrationId: null, unit: 'points', current: 55, baseline: 100, delta: -45, relativeDelta: -0.45, direction: 'degrading', samples: 2 },
      { name: 'batchP95Ms', migrationId: 'm', unit: 'ms', current: 101, baseline: 100, delta: 1, relativeDelta: 0.01, direction: 'stable', samples: 2 },
    ],
  },
  alerts: { opened: 2, changed: 0, persisting: 0, resolved: 1 },
};

describe('monitor report', () => {
  it('shows each dimension\'s checks with value, threshold and action, then score, status, alerts and trend', () => {
    expect(renderHealthReport(snapshot)).toEqual([
      'Health CRITICAL — score 55/100 at 2026-11-29T12:00:00.000Z (snapshot snap-2, 1 active run, 830 ms)',
      '',
      'Infrastructure',
      '  [ok   ] firestoreReachable — database: 12.3 ms',
      '          firestoreReachable message',
      '  [n/a  ] indexes — database: -',
      '          not checkable on the emulator',
      '',
      'Performance',
      '  [CRIT ] errorRate — run r1: 20.00 % (threshold 5.00 %)',
      '          errorRate message',
      '          → read the failure records',
      '',
      'Integrity',
      '  [WARN ] orphans — m: 4 count (threshold 0 count)',
      '          orphans message',
      '',
      'Alerts: 2 opened, 0 changed severity, 0 still open, 1 resolved',
      'Trend: degrading (against 2 previous snapshots)',
      '  degrading score: 55 vs 100 points, -45 (-45.0 %)',
    ]);
  });

  it('a run restricted to one version says so under the header, naming the migrations it covered', () => {
    expect(renderHealthReport({ ...snapshot, version: '2.0' }).slice(0, 3)).toEqual([
      'Health CRITICAL — score 55/100 at 2026-11-29T12:00:00.000Z (snapshot snap-2, 1 active run, 830 ms)',
      'Only the migrations of version 2.0: m',
      '',
    ]);
  });

  it('--critical-only keeps the error and critical checks', () => {
    const lines = renderHealthReport(snapshot, { criticalOnly: true });
    expect(lines.filter((line) => line.startsWith('  ['))).toEqual(['  [CRIT ] errorRate — run r1: 20.00 % (threshold 5.00 %)']);
  });

  it('exit codes for CI: 0 healthy or maintenance, 2 degraded, 1 critical', () => {
    expect([exitCodeOf('HEALTHY'), exitCodeOf('MAINTENANCE'), exitCodeOf('DEGRADED'), exitCodeOf('CRITICAL')]).toEqual([0, 0, 2, 1]);
  });
});
