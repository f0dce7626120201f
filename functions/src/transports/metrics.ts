/** One measured value (never an invented one: see DESIGN.md, Health). */
export interface MetricPoint {
  /** e.g. `firemigrate/batch_latency_p95`. */
  name: string;
  value: number;
  /** `ms`, `MB`, `docs/s`, `ratio`, `count`, … */
  unit: string;
  /** Small, bounded label values: migration id, run id, partition — never document contents. */
  labels: Record<string, string>;
  /** When it was measured. */
  at: Date;
}

/** The metrics port (one method); the Cloud Monitoring adapter comes with its own issue. */
export interface MetricsSink {
  write(points: readonly MetricPoint[]): Promise<void>;
}
