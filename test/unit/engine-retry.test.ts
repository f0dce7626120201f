import { Backoff, DEFAULT_MAX_DELAY_MS, isTransient, TRANSIENT_CODES, withRetry } from '../../functions/src/engine/retry';
import { grpcError, Status } from '../../functions/src/engine/wire/status';

function recordingSleep() {
  const waits: number[] = [];
  return { waits, sleep: async (ms: number) => void waits.push(ms) };
}

describe('retry', () => {
  it('treats UNAVAILABLE, ABORTED, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED and INTERNAL as transient, nothing else', () => {
    expect([...TRANSIENT_CODES].sort((a, b) => a - b)).toEqual([Status.DEADLINE_EXCEEDED, Status.RESOURCE_EXHAUSTED, Status.ABORTED, Status.INTERNAL, Status.UNAVAILABLE]);
    expect(isTransient(grpcError(Status.UNAVAILABLE, 'x'))).toBe(true);
    expect(isTransient(grpcError(Status.FAILED_PRECONDITION, 'x'))).toBe(false);
    expect(isTransient(grpcError(Status.INVALID_ARGUMENT, 'x'))).toBe(false);
    expect(isTransient(new Error('no code'))).toBe(false);
  });

  it('waits a full-jitter delay: uniform in [0, min(cap, base·2^n))', () => {
    const high = new Backoff({ baseDelayMs: 100, maxRetries: 10, random: () => 0.999999 });
    expect([0, 1, 2, 3].map((n) => high.delayMs(n))).toEqual([99, 199, 399, 799]);
    expect(high.delayMs(20)).toBe(DEFAULT_MAX_DELAY_MS - 1);
    const low = new Backoff({ baseDelayMs: 100, maxRetries: 10, random: () => 0 });
    expect(low.delayMs(5)).toBe(0);
    const half = new Backoff({ baseDelayMs: 1000, maxDelayMs: 5000, maxRetries: 10, random: () => 0.5 });
    expect([0, 1, 2, 3, 4].map((n) => half.delayMs(n))).toEqual([500, 1000, 2000, 2500, 2500]);
  });

  it('allows MIGRATION_MAX_RETRIES retries, then reports exhaustion without waiting', async () => {
    const { waits, sleep } = recordingSleep();
    const backoff = new Backoff({ baseDelayMs: 10, maxRetries: 3, random: () => 0.5, sleep });
    expect(await backoff.wait()).toBe(true);
    expect(await backoff.wait()).toBe(true);
    expect(await backoff.wait()).toBe(true);
    expect(backoff.exhausted).toBe(true);
    expect(await backoff.wait()).toBe(false);
    expect(waits).toEqual([5, 10, 20]);
    expect(backoff.retries).toBe(3);
  });

  it('retries transient failures until success, counting them', async () => {
    const { waits, sleep } = recordingSleep();
    let calls = 0;
    const retried: unknown[] = [];
    const value = await withRetry(
      async () => {
        calls++;
        if (calls < 3) throw grpcError(Status.UNAVAILABLE, 'try again');
        return 'done';
      },
      new Backoff({ baseDelayMs: 100, maxRetries: 5, random: () => 0.25, sleep }),
      (error) => retried.push(error),
    );
    expect(value).toBe('done');
    expect(calls).toBe(3);
    expect(retried).toHaveLength(2);
    expect(waits).toEqual([25, 50]);
  });

  it('throws a permanent error at once, and the last transient one when retries run out', async () => {
    const { sleep } = recordingSleep();
    let calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw grpcError(Status.PERMISSION_DENIED, 'no');
      }, new Backoff({ baseDelayMs: 1, maxRetries: 5, sleep })),
    ).rejects.toMatchObject({ code: Status.PERMISSION_DENIED });
    expect(calls).toBe(1);

    calls = 0;
    await expect(
      withRetry(async () => {
        calls++;
        throw grpcError(Status.RESOURCE_EXHAUSTED, `attempt ${calls}`);
      }, new Backoff({ baseDelayMs: 1, maxRetries: 2, sleep })),
    ).rejects.toThrow('attempt 3');
    expect(calls).toBe(3);
  });
});
