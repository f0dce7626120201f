export interface LatencySummary {
  samples: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/**
 * The nearest-rank percentile (the smallest sample with at least p % of the samples at or below
 * it): always a value that was measured, never an interpolation between two.
 */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) throw new RangeError('percentile of no samples');
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[rank - 1];
}

/** P50/P95/P99 and max of the samples; null without samples. */
export function summarizeLatencies(samples: readonly number[]): LatencySummary | null {
  if (samples.length === 0) return null;
  for (const sample of samples) {
    if (!Number.isFinite(sample) || sample < 0) throw new RangeError(`a latency sample must be a finite number ≥ 0, got ${sample}`);
  }
  const sorted = [...samples].sort((a, b) => a - b);
  return { samples: sorted.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), max: sorted[sorted.length - 1] };
}
