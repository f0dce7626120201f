import type { MetricPoint, MetricsSink } from './metrics';

/**
 * Metrics as structured log lines (one JSON line per point, in the shape Cloud Logging reads
 * from a function's stdout): `jsonPayload.metric` holds name, value, unit and labels, so a
 * log-based metric or a log query can chart them without any other service.
 */
export class LogMetricsSink implements MetricsSink {
  constructor(private readonly writeLine: (line: string) => void = (line) => process.stdout.write(line)) {}

  async write(points: readonly MetricPoint[]): Promise<void> {
    for (const point of points) {
      if (!point.name) throw new RangeError('a metric point needs a name');
      if (!Number.isFinite(point.value)) throw new RangeError(`metric ${point.name} has a non-finite value ${point.value}`);
      if (Number.isNaN(point.at.getTime())) throw new RangeError(`metric ${point.name} has an invalid time`);
    }
    for (const point of points) {
      const { name, value, unit, labels } = point;
      this.writeLine(
        `${JSON.stringify({
          severity: 'INFO',
          message: `metric ${name}=${value} ${unit}`,
          time: point.at.toISOString(),
          metric: { name, value, unit, labels },
          'logging.googleapis.com/labels': labels,
        })}\n`,
      );
    }
  }
}
