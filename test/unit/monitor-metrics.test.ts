import { CloudMonitoringMetricsSink, MAX_SERIES_PER_CALL, type TimeSeriesClient } from '../../functions/src/transports/metrics-cloud-monitoring';
import { metricPoints } from '../../functions/src/monitor/health-run';

function fakeClient() {
  const requests: Parameters<TimeSeriesClient['createTimeSeries']>[0][] = [];
  const client: TimeSeriesClient = {
    async createTimeSeries(request) {
      requests.push(request);
      return [{}];
    },
  };
  return { client, requests };
}

describe('Cloud Monitoring metrics sink (Cloud Monitoring client mocked: no emulator exists)', () => {
  const at = new Date('2026-11-29T12:00:01.250Z');

  it('writes each point as a custom gauge time series on the global resource (Cloud Monitoring client mocked: no emulator exists)', async () => {
    const { client, requests } = fakeClient();
    const sink = new CloudMonitoringMetricsSink(client, 'demo-project');
    await sink.write(metricPoints([{ name: 'score', migrationId: null, value: 85, unit: 'points' }, { name: 'batchP95Ms', migrationId: 'tradeya-trades-v2', value: 42, unit: 'ms' }], at));
    expect(requests).toEqual([
      {
        name: 'projects/demo-project',
        timeSeries: [
          {
            metric: { type: 'custom.googleapis.com/firemigrate/score', labels: { unit: 'points' } },
            resource: { type: 'global', labels: { project_id: 'demo-project' } },
            points: [{ interval: { endTime: { seconds: 1795953601, nanos: 250_000_000 } }, value: { doubleValue: 85 } }],
          },
          {
            metric: { type: 'custom.googleapis.com/firemigrate/batch_p95_ms', labels: { migration_id: 'tradeya-trades-v2', unit: 'ms' } },
            resource: { type: 'global', labels: { project_id: 'demo-project' } },
            points: [{ interval: { endTime: { seconds: 1795953601, nanos: 250_000_000 } }, value: { doubleValue: 42 } }],
          },
        ],
      },
    ]);
  });

  it('splits writes at 200 series per call (Cloud Monitoring client mocked: no emulator exists)', async () => {
    const { client, requests } = fakeClient();
    const points = Array.from({ length: MAX_SERIES_PER_CALL + 1 }, (_, i) => ({ name: 'firemigrate/x', value: i, unit: 'count', labels: { n: String(i) }, at }));
    await new CloudMonitoringMetricsSink(client, 'p').write(points);
    expect(requests.map((request) => request.timeSeries.length)).toEqual([200, 1]);
  });

  it('refuses what Cloud Monitoring would refuse, before calling it (Cloud Monitoring client mocked: no emulator exists)', async () => {
    const { client, requests } = fakeClient();
    const sink = new CloudMonitoringMetricsSink(client, 'p');
    const point = { name: 'firemigrate/x', value: 1, unit: 'ms', labels: {}, at };
    await expect(sink.write([{ ...point, value: Number.NaN }])).rejects.toThrow('metric firemigrate/x has a non-finite value NaN');
    await expect(sink.write([{ ...point, name: 'bad name' }])).rejects.toThrow('metric name "bad name" is invalid');
    await expect(sink.write([{ ...point, labels: { Bad: 'x' } }])).rejects.toThrow('label key "Bad" is invalid');
    await expect(sink.write([point, point])).rejects.toThrow('metric firemigrate/x has two points with the labels {} in one write');
    expect(requests).toEqual([]);
    expect(() => new CloudMonitoringMetricsSink(client, '')).toThrow('needs a project id');
  });
});
