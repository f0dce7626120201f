import { compareTrends, metricMap } from '../../functions/src/monitor/trends';
import type { HealthMetric } from '../../functions/src/monitor/types';

const m = (name: string, value: number, migrationId: string | null = null, unit = 'ms'): HealthMetric => ({ name, migrationId, value, unit });

describe('health trends', () => {
  it('the first snapshot has nothing to compare with', () => {
    expect(compareTrends([m('score', 100, null, 'points')], [])).toEqual({ overall: 'stable', comparedWith: 0, metrics: [] });
  });

  it('compares each metric with the mean of its previous values, in the direction that is better for it', () => {
    const current = [m('score', 85, null, 'points'), m('batchP95Ms', 300, 'mig'), m('throughputDocsPerSecond', 50, 'mig', 'docs/s'), m('errorRate', 0.02, 'mig', 'ratio')];
    const previous = [
      metricMap([m('score', 95), m('batchP95Ms', 100, 'mig'), m('throughputDocsPerSecond', 100, 'mig'), m('errorRate', 0.02, 'mig')]),
      metricMap([m('score', 100), m('batchP95Ms', 140, 'mig'), m('throughputDocsPerSecond', 100, 'mig')]),
    ];
    const trend = compareTrends(current, previous);
    expect(trend.overall).toBe('degrading');
    expect(trend.comparedWith).toBe(2);
    const byName = Object.fromEntries(trend.metrics.map((metric) => [metric.name, metric]));
    expect(byName.score).toMatchObject({ current: 85, baseline: 97.5, delta: -12.5, direction: 'degrading', samples: 2 });
    expect(byName.batchP95Ms).toMatchObject({ current: 300, baseline: 120, delta: 180, relativeDelta: 1.5, direction: 'degrading' });
    expect(byName.throughputDocsPerSecond).toMatchObject({ baseline: 100, delta: -50, relativeDelta: -0.5, direction: 'degrading' });
    // Only one previous snapshot has it; equal → stable.
    expect(byName.errorRate).toMatchObject({ baseline: 0.02, delta: 0, direction: 'stable', samples: 1 });
  });

  it('improving: lower latency, higher score; within 10 % (or a few ms) is stable', () => {
    const trend = compareTrends(
      [m('score', 100, null, 'points'), m('probeP95Ms', 40, 'mig'), m('batchP99Ms', 102, 'mig'), m('integrityRatio', 0.99, 'mig', 'ratio')],
      [metricMap([m('score', 95), m('probeP95Ms', 80, 'mig'), m('batchP99Ms', 100, 'mig'), m('integrityRatio', 0.8, 'mig')])],
    );
    expect(trend.overall).toBe('improving');
    expect(trend.metrics.map((metric) => [metric.name, metric.direction])).toEqual([
      ['score', 'improving'],
      ['probeP95Ms', 'improving'],
      ['batchP99Ms', 'stable'],
      ['integrityRatio', 'improving'],
    ]);
  });

  it('a one-point score change is a direction (counts have no noise); metrics of another migration are not mixed in', () => {
    const trend = compareTrends([m('score', 95, null, 'points'), m('orphans', 3, 'a', 'count')], [metricMap([m('score', 100), m('orphans', 2, 'a'), m('orphans', 0, 'b')])]);
    expect(trend.overall).toBe('degrading');
    expect(trend.metrics.find((metric) => metric.name === 'orphans')).toMatchObject({ baseline: 2, delta: 1, direction: 'degrading' });
  });

  it('stores metrics under "<migration>/<name>"', () => {
    expect(metricMap([m('score', 90), m('batchP95Ms', 12, 'tradeya-trades-v2')])).toEqual({ score: 90, 'tradeya-trades-v2/batchP95Ms': 12 });
  });
});
