/**
 * The circuit breaker: the failure rate over the last `window` documents (MIGRATION_EMERGENCY_WINDOW)
 * stops a run once it passes the threshold (MIGRATION_EMERGENCY_THRESHOLD for a migration,
 * ROLLBACK_EMERGENCY_THRESHOLD for a rollback).
 *
 * - Outcomes are recorded per batch as counts, in a ring of batch entries with running sums:
 *   O(1) amortised per batch, however large the window. When the window boundary falls inside
 *   the oldest batch, that batch is trimmed in proportion (which of its documents failed, and in
 *   what order, is not known), in whole documents so the sums stay exact.
 * - It acts only after a minimum sample, min(window, 100) documents by default: early on a few
 *   bad documents are a large share (3 of the first 20 is 15 %) without saying anything about the
 *   collection.
 * - It trips when the rate is strictly ABOVE the threshold ("passes" it): at exactly the
 *   threshold it does not, so a threshold of 1 never trips. The rate is compared as
 *   failed / sample, whose rounding matches the threshold's when the two are equal.
 * - A trip latches: batches that finish after it (already in flight) cannot reset it. A resumed
 *   run starts a new breaker.
 */
import type { FiremigrateConfig } from '../config';

export interface BreakerOptions {
  /** Failure rate in (0, 1] that must be exceeded to trip. */
  threshold: number;
  /** How many of the most recent documents the rate covers. */
  window: number;
  /** Documents needed before it may trip; default min(window, DEFAULT_MIN_SAMPLE). */
  minSample?: number;
  /** The setting named in the trip's reason, e.g. `MIGRATION_EMERGENCY_THRESHOLD`. */
  thresholdName: string;
}

export interface BreakerReading {
  /** failed / sample; 0 for an empty sample. */
  rate: number;
  failed: number;
  /** Documents in the window (at most `window`). */
  sample: number;
}

export interface BreakerTrip extends BreakerReading {
  threshold: number;
  window: number;
  reason: string;
}

export const DEFAULT_MIN_SAMPLE = 100;

function percent(ratio: number): string {
  return `${Number((ratio * 100).toFixed(1))} %`;
}

function assertCount(what: string, value: number): void {
  if (!(Number.isInteger(value) && value >= 0)) throw new RangeError(`${what} must be a whole number ≥ 0, got ${value}`);
}

export class CircuitBreaker {
  readonly threshold: number;
  readonly window: number;
  readonly minSample: number;
  private readonly thresholdName: string;
  // The ring: batch i (oldest at `head`) had okAt[i] ok and failedAt[i] failed documents.
  private okAt: number[] = new Array<number>(16).fill(0);
  private failedAt: number[] = new Array<number>(16).fill(0);
  private head = 0;
  private length = 0;
  private ok = 0;
  private failed = 0;
  private trip: BreakerTrip | null = null;

  constructor(options: BreakerOptions) {
    const { threshold, window } = options;
    if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`${options.thresholdName} must be greater than 0 and at most 1, got ${threshold}`);
    if (!(Number.isInteger(window) && window >= 1)) throw new RangeError(`the circuit breaker's window must be a whole number ≥ 1, got ${window}`);
    const minSample = options.minSample ?? Math.min(window, DEFAULT_MIN_SAMPLE);
    if (!(Number.isInteger(minSample) && minSample >= 1 && minSample <= window)) {
      throw new RangeError(`the circuit breaker's minimum sample must be a whole number from 1 to the window (${window}), got ${minSample}`);
    }
    this.threshold = threshold;
    this.window = window;
    this.minSample = minSample;
    this.thresholdName = options.thresholdName;
  }

  static forMigration(config: Pick<FiremigrateConfig, 'migration'>): CircuitBreaker {
    const { emergencyThreshold, emergencyWindow } = config.migration;
    return new CircuitBreaker({ threshold: emergencyThreshold, window: emergencyWindow, thresholdName: 'MIGRATION_EMERGENCY_THRESHOLD' });
  }

  /** A rollback has no window setting of its own: it uses MIGRATION_EMERGENCY_WINDOW. */
  static forRollback(config: Pick<FiremigrateConfig, 'migration' | 'rollback'>): CircuitBreaker {
    return new CircuitBreaker({
      threshold: config.rollback.emergencyThreshold,
      window: config.migration.emergencyWindow,
      thresholdName: 'ROLLBACK_EMERGENCY_THRESHOLD',
    });
  }

  /** Records one batch: `ok` documents that went fine (migrated, skipped, already migrated), `failed` that failed. */
  record(ok: number, failed: number): void {
    assertCount('ok documents', ok);
    assertCount('failed documents', failed);
    if (ok + failed === 0) return;
    this.push(ok, failed);
    this.evictBeyondWindow();
    if (this.trip === null && this.sample >= this.minSample && this.failed / this.sample > this.threshold) {
      const reading = this.current();
      this.trip = {
        ...reading,
        threshold: this.threshold,
        window: this.window,
        reason:
          `failure rate ${percent(reading.rate)} (${reading.failed} of the last ${reading.sample} documents) ` +
          `is above ${this.thresholdName} ${percent(this.threshold)}`,
      };
    }
  }

  /** The first trip, or null while the rate has stayed at or below the threshold (or the sample is too small). */
  tripped(): BreakerTrip | null {
    return this.trip;
  }

  /** The rate over the window now (for status and health). */
  current(): BreakerReading {
    const sample = this.sample;
    return { rate: sample === 0 ? 0 : this.failed / sample, failed: this.failed, sample };
  }

  private get sample(): number {
    return this.ok + this.failed;
  }

  private push(ok: number, failed: number): void {
    if (this.length === this.okAt.length) this.grow();
    const at = (this.head + this.length) % this.okAt.length;
    this.okAt[at] = ok;
    this.failedAt[at] = failed;
    this.length++;
    this.ok += ok;
    this.failed += failed;
  }

  private grow(): void {
    const order = Array.from({ length: this.length }, (_, i) => (this.head + i) % this.okAt.length);
    const size = this.okAt.length * 2;
    this.okAt = [...order.map((i) => this.okAt[i]), ...new Array<number>(size - this.length).fill(0)];
    this.failedAt = [...order.map((i) => this.failedAt[i]), ...new Array<number>(size - this.length).fill(0)];
    this.head = 0;
  }

  private evictBeyondWindow(): void {
    while (this.sample > this.window) {
      const excess = this.sample - this.window;
      const ok = this.okAt[this.head];
      const failed = this.failedAt[this.head];
      if (ok + failed <= excess) {
        this.ok -= ok;
        this.failed -= failed;
        this.head = (this.head + 1) % this.okAt.length;
        this.length--;
        continue;
      }
      // Trim the oldest batch by `excess` documents, failed ones in proportion (whole documents).
      const failedOut = Math.round((excess * failed) / (ok + failed));
      const okOut = excess - failedOut;
      this.okAt[this.head] = ok - okOut;
      this.failedAt[this.head] = failed - failedOut;
      this.ok -= okOut;
      this.failed -= failedOut;
    }
  }
}
