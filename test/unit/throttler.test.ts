import { RpcPool, Throttler, type ThrottlerOptions } from '../../functions/src/engine/throttler';
import { loadConfig } from '../../functions/src/config';

const MINUTE = 60_000;

/** A throttler on a fake clock: `sleep` advances the clock, `rss` is whatever the test sets. */
function harness(options: Partial<ThrottlerOptions> = {}, afterSleep: () => void = () => {}) {
  const env = { now: 0, rss: 100, sleeps: [] as number[], gcCalls: 0 };
  const throttler = new Throttler({
    quotaSafety: 0.8,
    poolSize: 10,
    memoryThresholdMb: 512,
    ramp: true,
    clock: () => env.now,
    sleep: async (ms) => {
      env.sleeps.push(ms);
      env.now += ms;
      afterSleep();
    },
    readRssMb: () => env.rss,
    gc: () => void env.gcCalls++,
    ...options,
  });
  return { env, throttler };
}

function rampOf(throttler: Throttler, collection: string) {
  const entry = throttler.state().ramp.find((ramp) => ramp.collection === collection);
  if (!entry) throw new Error(`no ramp for ${collection}`);
  return entry;
}

describe('Throttler: the 500/50/5 ramp per collection', () => {
  it('follows the ramp from each collection\'s first write: 400, 600, 900 ops/s at minutes 0, 5, 10 (safety 0.8)', async () => {
    const { env, throttler } = harness();
    expect(await throttler.admit({ trades: 10 })).toBe(true);
    expect(rampOf(throttler, 'trades')).toEqual({ collection: 'trades', opsPerSecond: 400, minute: 0 });
    for (let minute = 1; minute <= 10; minute++) {
      env.now = minute * MINUTE;
      // The before-image collection starts writing at minute 5: its ramp starts there.
      expect(await throttler.admit(minute >= 5 ? { trades: 10, backups: 10 } : { trades: 10 })).toBe(true);
      if (minute === 5) {
        expect(rampOf(throttler, 'trades').opsPerSecond).toBeCloseTo(600, 9);
        expect(rampOf(throttler, 'backups').opsPerSecond).toBe(400);
      }
    }
    expect(rampOf(throttler, 'trades')).toMatchObject({ minute: 10 });
    expect(rampOf(throttler, 'trades').opsPerSecond).toBeCloseTo(900, 9);
    expect(rampOf(throttler, 'backups')).toMatchObject({ minute: 5 });
    expect(rampOf(throttler, 'backups').opsPerSecond).toBeCloseTo(600, 9);
    expect(env.sleeps).toEqual([]);
  });

  it('lets a batch go while its collection has the tokens, then computes the wait for the next', () => {
    const { env, throttler } = harness();
    expect(throttler.decide({ trades: 250 })).toEqual({ action: 'go', waitMs: 0, reason: null });
    // 150 tokens left at 400 ops/s: 100 more take 250 ms.
    expect(throttler.decide({ trades: 250 })).toEqual({ action: 'wait', waitMs: 250, reason: 'ramp: trades 400 ops/s (minute 0, safety 0.8)' });
    env.now = 249;
    expect(throttler.decide({ trades: 250 })).toMatchObject({ action: 'wait', waitMs: 1 });
    env.now = 250;
    expect(throttler.decide({ trades: 250 })).toEqual({ action: 'go', waitMs: 0, reason: null });
  });

  it('waits for the collection furthest behind, and names it', () => {
    const { throttler } = harness();
    expect(throttler.decide({ trades: 400 }).action).toBe('go');
    expect(throttler.decide({ backups: 100 }).action).toBe('go');
    expect(throttler.decide({ trades: 200, backups: 200 })).toEqual({
      action: 'wait',
      waitMs: 500,
      reason: 'ramp: trades 400 ops/s (minute 0, safety 0.8)',
    });
  });

  it('lets a batch larger than one second of the ramp go on a full bucket and makes the next one pay for it', async () => {
    const { env, throttler } = harness();
    expect(throttler.decide({ trades: 499 }).action).toBe('go');
    // 400 − 499 = −99 tokens: a full bucket (400) is 499 tokens away, 1247.5 ms at 400 ops/s.
    expect(throttler.decide({ trades: 499 })).toMatchObject({ action: 'wait', waitMs: 1248 });
    expect(await throttler.admit({ trades: 499 })).toBe(true);
    expect(env.sleeps).toEqual([1248]);
    expect(env.now).toBe(1248);
  });

  it('holds the average rate to the ramp over a long stretch of batches', async () => {
    const { env, throttler } = harness();
    let written = 0;
    while (env.now < 2 * MINUTE) {
      expect(await throttler.admit({ trades: 250 })).toBe(true);
      written += 250;
    }
    // One bucket's worth (400) may go at the start; after that 400 ops/s, never more.
    const seconds = env.now / 1000;
    expect(written).toBeLessThanOrEqual(400 * seconds + 400);
    expect(written).toBeGreaterThanOrEqual(400 * seconds);
  });

  it('admit() sleeps the computed wait, then goes; the state shows the reason while waiting', async () => {
    const { env, throttler } = harness();
    await throttler.admit({ trades: 400 });
    expect(throttler.decide({ trades: 200 }).action).toBe('wait');
    expect(throttler.state()).toMatchObject({ throttled: true, reason: 'ramp: trades 400 ops/s (minute 0, safety 0.8)', waitMs: 500 });
    env.now = 100;
    expect(throttler.state().waitMs).toBe(400);
    expect(await throttler.admit({ trades: 200 })).toBe(true);
    expect(env.sleeps).toEqual([400]);
    expect(throttler.state()).toMatchObject({ throttled: false, reason: null, waitMs: 0 });
  });

  it('settles a batch: unused writes go back to the bucket, extra ones (chunks) are charged', () => {
    const { throttler } = harness();
    expect(throttler.decide({ trades: 400, backups: 400 }).action).toBe('go');
    // Only 100 documents needed migrating; their before-images took 3 chunk documents more.
    throttler.settle({ trades: 400, backups: 400 }, { trades: 100, backups: 103 });
    expect(throttler.decide({ trades: 300 }).action).toBe('go');
    expect(throttler.decide({ backups: 300 })).toMatchObject({ action: 'wait', waitMs: 8 });
  });

  it('restarts the ramp of a collection left unwritten for a whole ramp step', async () => {
    const { env, throttler } = harness();
    for (let minute = 0; minute <= 6; minute++) {
      env.now = minute * MINUTE;
      await throttler.admit({ trades: 10 });
    }
    expect(rampOf(throttler, 'trades').opsPerSecond).toBeCloseTo(600, 9);
    env.now = 11 * MINUTE;
    await throttler.admit({ trades: 10 });
    expect(rampOf(throttler, 'trades')).toEqual({ collection: 'trades', opsPerSecond: 400, minute: 0 });
  });

  it('refuses a write count that is not a whole number ≥ 0, naming the collection', () => {
    const { throttler } = harness();
    expect(() => throttler.decide({ trades: -1 })).toThrow('planned writes to trades must be a whole number ≥ 0, got -1');
    expect(() => throttler.settle({ trades: 10 }, { trades: 2.5 })).toThrow('actual writes to trades must be a whole number ≥ 0, got 2.5');
    expect(() => harness({ quotaSafety: 0 })).toThrow(/MIGRATION_QUOTA_SAFETY/);
  });
});

describe('Throttler against the emulator (ramp off)', () => {
  it('never waits for the ramp but still bounds the pool and pauses for memory', async () => {
    const { env, throttler } = harness({ ramp: false, poolSize: 2 });
    for (let i = 0; i < 20; i++) expect(throttler.decide({ trades: 499, backups: 499 })).toEqual({ action: 'go', waitMs: 0, reason: null });
    expect(throttler.state()).toMatchObject({ rampEnabled: false, ramp: [] });
    await throttler.pool.acquire();
    await throttler.pool.acquire();
    let third = false;
    const waiting = throttler.pool.acquire().then(() => (third = true));
    await Promise.resolve();
    expect(third).toBe(false);
    expect(throttler.state()).toMatchObject({ throttled: true, reason: 'pool: 2/2 RPCs in flight', poolInUse: 2, poolSize: 2, utilisation: 1 });
    throttler.pool.release();
    await waiting;
    expect(third).toBe(true);
    env.rss = 600;
    expect(throttler.decide({ trades: 10 }).action).toBe('pause');
  });

  it('is what fromConfig builds when FIRESTORE_EMULATOR_HOST is set, and the ramp is on otherwise', () => {
    const instance = null;
    const emulated = Throttler.fromConfig(loadConfig({ FIRESTORE_EMULATOR_HOST: '127.0.0.1:8080' }), { instance, readRssMb: () => 50 });
    expect(emulated.state()).toMatchObject({ rampEnabled: false, poolSize: 10, thresholdMb: 512 });
    // A fixed clock: on a loaded machine, real time between the two decisions would refill the bucket.
    const production = Throttler.fromConfig(loadConfig({ MIGRATION_CONNECTION_POOL_SIZE: '4' }), { instance, readRssMb: () => 50, clock: () => 0 });
    expect(production.state()).toMatchObject({ rampEnabled: true, poolSize: 4 });
    expect(production.decide({ trades: 400 }).action).toBe('go');
    expect(production.decide({ trades: 1 }).action).toBe('wait');
  });

  it('caps the memory threshold at 75 % of the instance\'s memory (fromConfig)', () => {
    const throttler = Throttler.fromConfig(loadConfig({}), { instance: { mb: 256, source: 'FUNCTION_MEMORY_MB' }, readRssMb: () => 50 });
    expect(throttler.state().thresholdMb).toBe(192);
  });
});

describe('Throttler: connection pool', () => {
  it('never has more than MIGRATION_CONNECTION_POOL_SIZE RPCs in flight, however many tasks ask', async () => {
    const { throttler } = harness({ poolSize: 3 });
    let inFlight = 0;
    let peak = 0;
    const utilisations: number[] = [];
    const rpc = async (i: number) => {
      await throttler.pool.acquire();
      try {
        inFlight++;
        peak = Math.max(peak, inFlight);
        // A released permit passes straight to the next waiter, which counts before it resumes.
        expect(throttler.pool.inUse).toBeGreaterThanOrEqual(inFlight);
        expect(throttler.pool.inUse).toBeLessThanOrEqual(3);
        utilisations.push(throttler.state().utilisation);
        for (let tick = 0; tick < (i % 4) + 1; tick++) await new Promise<void>((resolve) => setImmediate(resolve));
      } finally {
        inFlight--;
        throttler.pool.release();
      }
    };
    await Promise.all(Array.from({ length: 60 }, (_, i) => rpc(i)));
    expect(peak).toBe(3);
    expect(Math.max(...utilisations)).toBe(1);
    expect(utilisations.every((u) => u > 0 && u <= 1)).toBe(true);
    expect(throttler.state()).toMatchObject({ poolInUse: 0, utilisation: 0, throttled: false });
  });

  it('serves waiters in arrival order and refuses a release without an acquire', async () => {
    const pool = new RpcPool(1);
    const order: number[] = [];
    await pool.acquire();
    const waiters = [1, 2, 3].map((n) => pool.acquire().then(() => order.push(n)));
    expect(pool.waiting).toBe(3);
    for (let i = 0; i < 3; i++) {
      pool.release();
      await waiters[i];
    }
    expect(order).toEqual([1, 2, 3]);
    pool.release();
    expect(pool.inUse).toBe(0);
    expect(() => pool.release()).toThrow('RpcPool.release() without a matching acquire()');
    expect(() => new RpcPool(0)).toThrow(/MIGRATION_CONNECTION_POOL_SIZE/);
  });
});

describe('Throttler: memory pressure', () => {
  it('goes without delay below 80 % of the threshold', () => {
    const { env, throttler } = harness();
    env.rss = 409;
    expect(throttler.decide({ trades: 1 })).toEqual({ action: 'go', waitMs: 0, reason: null });
  });

  it('delays each batch in proportion to how far RSS is over 80 % of the threshold', () => {
    const { env, throttler } = harness({ ramp: false });
    env.rss = 470; // (470 − 409.6) / (512 − 409.6) = 0.58984375 of the way to the threshold
    expect(throttler.decide({ trades: 1 })).toEqual({ action: 'go', waitMs: 590, reason: 'memory: 470 MB ≥ 80 % of 512 MB' });
    env.rss = 500;
    expect(throttler.decide({ trades: 1 }).waitMs).toBe(883);
    expect(throttler.state()).toMatchObject({ throttled: true, reason: 'memory: 500 MB ≥ 80 % of 512 MB', rssMb: 500 });
  });

  it('pauses at the threshold, calls gc while paused, and resumes once RSS falls below', async () => {
    const later = [512, 520, 300];
    const reasons: (string | null)[] = [];
    const { env, throttler } = harness({}, () => {
      reasons.push(throttler.state().reason);
      env.rss = later.shift() ?? env.rss;
    });
    env.rss = 530;
    expect(await throttler.admit({ trades: 10 })).toBe(true);
    expect(env.sleeps).toEqual([500, 500, 500]);
    expect(reasons).toEqual([
      'memory: 530 MB ≥ 512 MB threshold: paused until it falls below',
      'memory: 512 MB ≥ 512 MB threshold: paused until it falls below',
      'memory: 520 MB ≥ 512 MB threshold: paused until it falls below',
    ]);
    expect(env.gcCalls).toBe(3);
    expect(throttler.state()).toMatchObject({ throttled: false, reason: null, rssMb: 300 });
  });

  it('says why it pauses, and gives up waiting when the run stops', async () => {
    const { env, throttler } = harness({ gc: null });
    env.rss = 530;
    expect(throttler.decide({ trades: 1 })).toEqual({ action: 'pause', waitMs: 500, reason: 'memory: 530 MB ≥ 512 MB threshold: paused until it falls below' });
    let polls = 0;
    expect(await throttler.admit({ trades: 1 }, () => ++polls > 3)).toBe(false);
    expect(env.sleeps).toEqual([500, 500, 500]);
    expect(throttler.state()).toMatchObject({ throttled: true, reason: 'memory: 530 MB ≥ 512 MB threshold: paused until it falls below', rssMb: 530 });
  });

  it('takes no ramp tokens while paused', () => {
    const { env, throttler } = harness();
    env.rss = 600;
    expect(throttler.decide({ trades: 400 }).action).toBe('pause');
    env.rss = 100;
    expect(throttler.decide({ trades: 400 }).action).toBe('go');
  });
});
