import type { MetricPoint, MetricsSink } from './metrics';

/** A custom metric type's prefix: metrics under it need no descriptor, Cloud Monitoring creates one on first write. */
export const CUSTOM_METRIC_PREFIX = 'custom.googleapis.com/';
/** Cloud Monitoring takes at most 200 time series per createTimeSeries call. */
export const MAX_SERIES_PER_CALL = 200;

/** The part of `@google-cloud/monitoring`'s MetricServiceClient this adapter uses. */
export interface TimeSeriesClient {
  createTimeSeries(request: {
    name: string;
    timeSeries: Array<{
      metric: { type: string; labels: Record<string, string> };
      resource: { type: string; labels: Record<string, string> };
      points: Array<{ interval: { endTime: { seconds: number; nanos: number } }; value: { doubleValue: number } }>;
    }>;
  }): Promise<unknown>;
}

const METRIC_NAME = /^[A-Za-z0-9_]+(\/[A-Za-z0-9_]+)*$/;
const LABEL_KEY = /^[a-z][a-z0-9_]{0,99}$/;

/**
 * Metrics as Cloud Monitoring custom metrics (gauges on the `global` resource of the project): one
 * time series per metric name and label set, one point per write. Cloud Monitoring refuses two
 * points of one series in a call and points closer than 5 s apart; the health run writes each
 * figure once a minute.
 */
export class CloudMonitoringMetricsSink implements MetricsSink {
  constructor(
    private readonly client: TimeSeriesClient,
    private readonly projectId: string,
  ) {
    if (!projectId) throw new Error('CloudMonitoringMetricsSink needs a project id');
  }

  /** A sink on Application Default Credentials (loads @google-cloud/monitoring only when used). */
  static async create(projectId: string): Promise<CloudMonitoringMetricsSink> {
    const { MetricServiceClient } = await import('@google-cloud/monitoring');
    return new CloudMonitoringMetricsSink(new MetricServiceClient({ projectId }) as unknown as TimeSeriesClient, projectId);
  }

  async write(points: readonly MetricPoint[]): Promise<void> {
    const seen = new Set<string>();
    for (const point of points) {
      if (!METRIC_NAME.test(point.name)) throw new RangeError(`metric name "${point.name}" is invalid: expected segments of letters, digits and _ separated by /`);
      if (!Number.isFinite(point.value)) throw new RangeError(`metric ${point.name} has a non-finite value ${point.value}`);
      if (Number.isNaN(point.at.getTime())) throw new RangeError(`metric ${point.name} has an invalid time`);
      for (const key of Object.keys(point.labels)) {
        if (!LABEL_KEY.test(key)) throw new RangeError(`metric ${point.name}: label key "${key}" is invalid: expected lower-case letters, digits and _, starting with a letter`);
      }
      const series = `${point.name}|${JSON.stringify(Object.entries(point.labels).sort(([a], [b]) => a.localeCompare(b)))}`;
      if (seen.has(series)) throw new RangeError(`metric ${point.name} has two points with the labels ${JSON.stringify(point.labels)} in one write`);
      seen.add(series);
    }
    const timeSeries = points.map((point) => {
      const millis = point.at.getTime();
      return {
        metric: { type: `${CUSTOM_METRIC_PREFIX}${point.name}`, labels: { ...point.labels, unit: point.unit } },
        resource: { type: 'global', labels: { project_id: this.projectId } },
        points: [{ interval: { endTime: { seconds: Math.floor(millis / 1000), nanos: (millis % 1000) * 1_000_000 } }, value: { doubleValue: point.value } }],
      };
    });
    for (let i = 0; i < timeSeries.length; i += MAX_SERIES_PER_CALL) {
      await this.client.createTimeSeries({ name: `projects/${this.projectId}`, timeSeries: timeSeries.slice(i, i + MAX_SERIES_PER_CALL) });
    }
  }
}
