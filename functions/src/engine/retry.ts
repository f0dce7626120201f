import { grpcCode, Status } from './wire/status';

/** gRPC codes worth retrying: the request may succeed when repeated (a commit's repeat is settled by its batch marker). */
export const TRANSIENT_CODES: ReadonlySet<number> = new Set([
  Status.UNAVAILABLE,
  Status.ABORTED,
  Status.DEADLINE_EXCEEDED,
  Status.RESOURCE_EXHAUSTED,
  Status.INTERNAL,
]);

export function isTransient(error: unknown): boolean {
  const code = grpcCode(error);
  return code !== undefined && TRANSIENT_CODES.has(code);
}

export interface BackoffOptions {
  /** MIGRATION_RETRY_DELAY: the first retry waits up to this long. */
  baseDelayMs: number;
  /** No single wait is longer than this. */
  maxDelayMs?: number;
  /** MIGRATION_MAX_RETRIES: retries after the first attempt. */
  maxRetries: number;
  /** Injectable for tests: a number in [0, 1). */
  random?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

export const DEFAULT_MAX_DELAY_MS = 30_000;

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Exponential backoff with FULL jitter: retry n waits a uniformly random time in
 * [0, min(cap, base·2^n)). Many workers hit by the same overload (RESOURCE_EXHAUSTED, a hot
 * document) would otherwise retry in lockstep and collide again; full jitter spreads them over
 * the whole window, which AWS's analysis ("Exponential Backoff and Jitter") found to finish the
 * contended work fastest with the fewest calls.
 */
export class Backoff {
  private retriesUsed = 0;
  private readonly random: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(private readonly options: BackoffOptions) {
    this.random = options.random ?? Math.random;
    this.sleep = options.sleep ?? realSleep;
  }

  get retries(): number {
    return this.retriesUsed;
  }

  get exhausted(): boolean {
    return this.retriesUsed >= this.options.maxRetries;
  }

  /** The wait before retry number `retry` (0-based). */
  delayMs(retry: number): number {
    const ceiling = Math.min(this.options.maxDelayMs ?? DEFAULT_MAX_DELAY_MS, this.options.baseDelayMs * 2 ** retry);
    return Math.floor(this.random() * ceiling);
  }

  /** Waits before the next retry; false (without waiting) when the retries are used up. */
  async wait(): Promise<boolean> {
    if (this.exhausted) return false;
    const delay = this.delayMs(this.retriesUsed);
    this.retriesUsed++;
    if (delay > 0) await this.sleep(delay);
    return true;
  }
}

/**
 * Runs `operation`, retrying transient gRPC failures with `backoff` (`onRetry` counts them);
 * other errors, and the transient one that finds the retries used up, are thrown.
 */
export async function withRetry<T>(operation: () => Promise<T>, backoff: Backoff, onRetry?: (error: unknown) => void): Promise<T> {
  for (;;) {
    try {
      return await operation();
    } catch (error) {
      if (!isTransient(error) || !(await backoff.wait())) throw error;
      onRetry?.(error);
    }
  }
}
