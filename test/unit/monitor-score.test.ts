import { loadConfig } from '../../functions/src/config';
import { evaluateAbove, evaluateBelow } from '../../functions/src/monitor/evaluate';
import { percentile, summarizeLatencies } from '../../functions/src/monitor/percentiles';
import { countedLevels, healthScore, snapshotStatus } from '../../functions/src/monitor/score';

describe('health score and status', () => {
  it('is 100 − 5·warnings − 15·errors − 30·critical', () => {
    expect(healthScore([])).toBe(100);
    expect(healthScore(['ok', 'ok'])).toBe(100);
    expect(healthScore(['warning'])).toBe(95);
    expect(healthScore(['error'])).toBe(85);
    expect(healthScore(['critical'])).toBe(70);
    expect(healthScore(['warning', 'warning', 'error', 'critical', 'ok'])).toBe(100 - 10 - 15 - 30);
  });

  it('floors at 0', () => {
    expect(healthScore(['critical', 'critical', 'critical', 'critical'])).toBe(0);
    expect(healthScore(['critical', 'critical', 'critical', 'error'])).toBe(0);
  });

  it('leaves not-checkable checks out of the score', () => {
    const levels = countedLevels([{ status: 'not-checkable' }, { status: 'warning' }, { status: 'ok' }]);
    expect(levels).toEqual(['warning', 'ok']);
    expect(healthScore(levels)).toBe(95);
  });

  it('status: CRITICAL beats DEGRADED beats MAINTENANCE (a run in progress without issues) beats HEALTHY', () => {
    expect(snapshotStatus(['ok', 'critical', 'warning'], 0)).toBe('CRITICAL');
    expect(snapshotStatus(['ok', 'critical'], 2)).toBe('CRITICAL');
    expect(snapshotStatus(['ok', 'error'], 1)).toBe('DEGRADED');
    expect(snapshotStatus(['warning'], 0)).toBe('DEGRADED');
    expect(snapshotStatus(['ok', 'ok'], 1)).toBe('MAINTENANCE');
    expect(snapshotStatus(['ok'], 0)).toBe('HEALTHY');
    expect(snapshotStatus([], 0)).toBe('HEALTHY');
  });
});

describe('thresholds', () => {
  const defaults = loadConfig({}).monitor.alertThresholds;

  it('the seed defaults: response time 1 s / 3 s, error rate 1 % / 5 %, memory 512 / 1024 MB, integrity 95 % / 90 %', () => {
    expect(evaluateAbove(1000, defaults.responseTime)).toEqual({ status: 'ok', threshold: 1000 });
    expect(evaluateAbove(1001, defaults.responseTime)).toEqual({ status: 'warning', threshold: 1000 });
    expect(evaluateAbove(3001, defaults.responseTime)).toEqual({ status: 'critical', threshold: 3000 });
    expect(evaluateAbove(0.011, defaults.errorRate).status).toBe('warning');
    expect(evaluateAbove(0.051, defaults.errorRate).status).toBe('critical');
    expect(evaluateAbove(600, defaults.memory).status).toBe('warning');
    expect(evaluateAbove(1100, defaults.memory).status).toBe('critical');
    expect(evaluateBelow(0.95, defaults.integrity)).toEqual({ status: 'ok', threshold: 0.95 });
    expect(evaluateBelow(0.94, defaults.integrity)).toEqual({ status: 'warning', threshold: 0.95 });
    expect(evaluateBelow(0.89, defaults.integrity)).toEqual({ status: 'critical', threshold: 0.9 });
  });

  it('MONITOR_ALERT_THRESHOLDS overrides key by key', () => {
    const thresholds = loadConfig({ MONITOR_ALERT_THRESHOLDS: '{"responseTime":{"warning":50}}' }).monitor.alertThresholds;
    expect(thresholds.responseTime).toEqual({ warning: 50, critical: 3000 });
    expect(evaluateAbove(60, thresholds.responseTime)).toEqual({ status: 'warning', threshold: 50 });
    expect(thresholds.errorRate).toEqual(defaults.errorRate);
  });
});

describe('percentiles', () => {
  it('nearest rank: always a measured sample', () => {
    const samples = Array.from({ length: 100 }, (_, i) => i + 1);
    expect(summarizeLatencies(samples)).toEqual({ samples: 100, p50: 50, p95: 95, p99: 99, max: 100 });
    expect(summarizeLatencies([7, 3, 5])).toEqual({ samples: 3, p50: 5, p95: 7, p99: 7, max: 7 });
    expect(percentile([4], 99)).toBe(4);
  });

  it('no samples, no summary; a bad sample is an error', () => {
    expect(summarizeLatencies([])).toBeNull();
    expect(() => summarizeLatencies([1, Number.NaN])).toThrow('a latency sample must be a finite number ≥ 0, got NaN');
    expect(() => percentile([1], 0)).toThrow('percentile must be in (0, 100], got 0');
  });
});
