/**
 * The throttler (gh-ost's role of the same name): before each batch it decides whether the batch
 * goes now, waits (and how long) or pauses — and says why, so the progress line and `status`
 * can show the reason. Three inputs:
 *
 * - the 500/50/5 ramp (ramp.ts) scaled by MIGRATION_QUOTA_SAFETY, one token bucket PER COLLECTION
 *   WRITTEN: the target and the before-image collection each start cold and ramp on their own
 *   clock (a batch of n documents writes n to each);
 * - MIGRATION_CONNECTION_POOL_SIZE, the bound on Firestore RPCs in flight (`pool`);
 * - the worker's RSS against the memory threshold (memory.ts): above SLOW_FRACTION of it each
 *   batch is delayed in proportion to how far over; at the threshold batches pause until it
 *   falls back below. While paused it calls `global.gc()` when node runs with `--expose-gc`:
 *   garbage then goes at once instead of at V8's leisure, so RSS can fall sooner; without the
 *   flag the pause waits for V8's own collections (and for the batches in flight to finish).
 *
 * Against the emulator the ramp is off (the emulator has no traffic ramp; DESIGN.md: keep
 * BulkWriter's throttle for production, turn it off there); the pool and memory still apply.
 * Time, sleep and the RSS reading are injected so tests are deterministic.
 */
import type { FiremigrateConfig } from '../config';
import { instanceMemory, memoryThresholdMb, rssMb, type InstanceMemory } from './memory';
import { RAMP_STEP_MINUTES, rampOpsPerSecond } from './ramp';

/** Writes per collection, e.g. `{ trades: 250, backups: 250 }` (keys are the labels shown in reasons). */
export type WritePlan = Readonly<Record<string, number>>;

export type ThrottleAction = 'go' | 'wait' | 'pause';

export interface ThrottleDecision {
  /**
   * `go`: admitted, its ramp tokens are taken; wait `waitMs` first when memory is over the slow
   * level. `wait`: nothing taken, ask again after `waitMs` (ramp). `pause`: memory at or over the
   * threshold, nothing taken, ask again after `waitMs`.
   */
  action: ThrottleAction;
  waitMs: number;
  /** Null only for a `go` without delay. */
  reason: string | null;
}

export interface RampState {
  collection: string;
  opsPerSecond: number;
  /** Whole minutes since this collection's writes started (the ramp's clock). */
  minute: number;
}

export interface ThrottleState {
  throttled: boolean;
  /** What holds batches back now: a memory pause, else the latest wait still running, else a full pool. */
  reason: string | null;
  /** Time left of the current wait (for a pause: until the next memory check); 0 when not throttled. */
  waitMs: number;
  poolInUse: number;
  poolSize: number;
  /** poolInUse / poolSize. */
  utilisation: number;
  /** RSS at the latest check. */
  rssMb: number;
  thresholdMb: number;
  rampEnabled: boolean;
  ramp: RampState[];
}

export interface ThrottlerOptions {
  /** MIGRATION_QUOTA_SAFETY: the share of the 500/50/5 ramp allowed. */
  quotaSafety: number;
  /** MIGRATION_CONNECTION_POOL_SIZE. */
  poolSize: number;
  /** RSS (MB) at which batches pause: `memoryThresholdMb(config)`. */
  memoryThresholdMb: number;
  /** False against the emulator: no ramp, the pool and memory still apply. */
  ramp: boolean;
  /** Share of the threshold above which batches slow down (default 0.8). */
  slowFraction?: number;
  /** Delay of a batch when RSS is just under the threshold; it grows linearly from 0 at the slow level (default 1000 ms). */
  maxSlowDelayMs?: number;
  /** How often a pause checks memory again (default 500 ms). */
  pausePollMs?: number;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
  readRssMb?: () => number;
  /** Called while paused for memory; default `global.gc`, present only under `node --expose-gc`. */
  gc?: (() => void) | null;
}

export const DEFAULT_SLOW_FRACTION = 0.8;
export const DEFAULT_MAX_SLOW_DELAY_MS = 1000;
export const DEFAULT_PAUSE_POLL_MS = 500;
/** A bucket holds one second of its rate: a burst is at most one second's worth of writes. */
const BURST_SECONDS = 1;
/** Slack for the float arithmetic of refills: a wait of exactly the computed whole milliseconds must suffice. */
const FLOAT_SLACK = 1e-6;
const MS_PER_MINUTE = 60_000;
/** A collection not written for a whole ramp step is cold again and restarts at the bottom of the ramp. */
const COLD_AFTER_MS = RAMP_STEP_MINUTES * MS_PER_MINUTE;

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function exposedGc(): (() => void) | null {
  const gc = (globalThis as { gc?: unknown }).gc;
  return typeof gc === 'function' ? (gc as () => void) : null;
}

function assertCount(what: string, value: number): void {
  if (!(Number.isInteger(value) && value >= 0)) throw new RangeError(`${what} must be a whole number ≥ 0, got ${value}`);
}

/** Bounds the Firestore RPCs in flight: `acquire` waits for a free permit, in arrival order. */
export class RpcPool {
  private available: number;
  private readonly queue: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`MIGRATION_CONNECTION_POOL_SIZE must be an integer ≥ 1, got ${size}`);
    this.available = size;
  }

  get inUse(): number {
    return this.size - this.available;
  }

  /** Callers waiting for a permit. */
  get waiting(): number {
    return this.queue.length;
  }

  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve) => this.queue.push(resolve));
  }

  release(): void {
    const next = this.queue.shift();
    if (next) next(); // the permit passes straight to the next caller
    else if (this.available < this.size) this.available++;
    else throw new Error('RpcPool.release() without a matching acquire()');
  }
}

/**
 * A token bucket whose refill rate follows the ramp from the collection's first write. Tokens may
 * go negative: a batch larger than the bucket goes once the bucket is full and leaves a debt the
 * next batch waits out, so the average rate is still the ramp's (BulkWriter's limiter refuses such
 * a request instead; our batches may be up to 499 writes against a first-step bucket of 400).
 */
class RampBucket {
  private startedAt: number;
  private tokens: number;
  private updatedAt: number;

  constructor(
    private readonly safety: number,
    now: number,
  ) {
    this.startedAt = now;
    this.updatedAt = now;
    this.tokens = this.capacity(now);
  }

  rate(now: number): number {
    return rampOpsPerSecond((now - this.startedAt) / MS_PER_MINUTE, this.safety);
  }

  minute(now: number): number {
    return Math.floor((now - this.startedAt) / MS_PER_MINUTE);
  }

  private capacity(now: number): number {
    return this.rate(now) * BURST_SECONDS;
  }

  private refill(now: number): void {
    if (now <= this.updatedAt) return;
    if (now - this.updatedAt >= COLD_AFTER_MS) {
      this.startedAt = now;
      this.tokens = this.capacity(now);
    } else {
      // The rate at the start of the interval: the ramp only grows, so this never over-fills.
      const added = (this.rate(this.updatedAt) * (now - this.updatedAt)) / 1000;
      this.tokens = Math.min(this.capacity(now), this.tokens + added);
    }
    this.updatedAt = now;
  }

  /** Milliseconds until `writes` may go (0: now). */
  waitMs(writes: number, now: number): number {
    this.refill(now);
    const needed = Math.min(writes, this.capacity(now));
    if (this.tokens + FLOAT_SLACK >= needed) return 0;
    return Math.ceil(((needed - this.tokens) / this.rate(now)) * 1000 - FLOAT_SLACK);
  }

  take(writes: number): void {
    this.tokens -= writes;
  }

  /** Gives back writes reserved but not made (negative: charges writes made beyond the reservation). */
  giveBack(writes: number, now: number): void {
    this.refill(now);
    this.tokens = Math.min(this.capacity(now), this.tokens + writes);
  }
}

export class Throttler {
  /** Acquire a permit before each Firestore RPC (or each batch, whose RPCs run one after the other) and release it after. */
  readonly pool: RpcPool;
  private readonly buckets = new Map<string, RampBucket>();
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly readRssMb: () => number;
  private readonly gc: (() => void) | null;
  private readonly thresholdMb: number;
  private readonly slowMb: number;
  private readonly slowFraction: number;
  private readonly maxSlowDelayMs: number;
  private readonly pausePollMs: number;
  private rss: number;
  private paused: { reason: string; nextCheckAt: number } | null = null;
  private latestWait: { reason: string; until: number } | null = null;
  private lastGcAt = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: ThrottlerOptions) {
    if (!(options.quotaSafety > 0 && options.quotaSafety <= 1)) {
      throw new RangeError(`MIGRATION_QUOTA_SAFETY must be greater than 0 and at most 1, got ${options.quotaSafety}`);
    }
    if (!(options.memoryThresholdMb > 0)) throw new RangeError(`the memory threshold must be greater than 0 MB, got ${options.memoryThresholdMb}`);
    this.slowFraction = options.slowFraction ?? DEFAULT_SLOW_FRACTION;
    if (!(this.slowFraction > 0 && this.slowFraction < 1)) throw new RangeError(`slowFraction must be between 0 and 1 (exclusive), got ${this.slowFraction}`);
    this.pool = new RpcPool(options.poolSize);
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? realSleep;
    this.readRssMb = options.readRssMb ?? rssMb;
    this.gc = options.gc === undefined ? exposedGc() : options.gc;
    this.thresholdMb = options.memoryThresholdMb;
    this.slowMb = this.thresholdMb * this.slowFraction;
    this.maxSlowDelayMs = options.maxSlowDelayMs ?? DEFAULT_MAX_SLOW_DELAY_MS;
    this.pausePollMs = options.pausePollMs ?? DEFAULT_PAUSE_POLL_MS;
    this.rss = this.readRssMb();
  }

  /**
   * The throttler for a run: the ramp off against the Firestore emulator, the memory threshold
   * capped by the instance's memory (pass `instance` to override the detection).
   */
  static fromConfig(
    config: Pick<FiremigrateConfig, 'migration' | 'emulator'>,
    overrides: Partial<ThrottlerOptions> & { instance?: InstanceMemory | null } = {},
  ): Throttler {
    const { instance = instanceMemory(), ...options } = overrides;
    return new Throttler({
      quotaSafety: config.migration.quotaSafety,
      poolSize: config.migration.connectionPoolSize,
      memoryThresholdMb: memoryThresholdMb(config, instance),
      ramp: !config.emulator.firestoreHost,
      ...options,
    });
  }

  /**
   * One look at memory and the ramp for a batch about to write `plan`. On `go` the ramp tokens
   * are taken; `admit` is this in a loop with the waits.
   */
  decide(plan: WritePlan): ThrottleDecision {
    for (const [collection, writes] of Object.entries(plan)) assertCount(`planned writes to ${collection}`, writes);
    const now = this.clock();
    this.rss = this.readRssMb();
    if (this.rss >= this.thresholdMb) {
      const reason = `memory: ${Math.round(this.rss)} MB ≥ ${Math.round(this.thresholdMb)} MB threshold: paused until it falls below`;
      this.paused = { reason, nextCheckAt: now + this.pausePollMs };
      return { action: 'pause', waitMs: this.pausePollMs, reason };
    }
    this.paused = null;
    if (this.options.ramp) {
      const ramp = this.rampWait(plan, now);
      if (ramp.waitMs > 0) {
        this.latestWait = { reason: ramp.reason, until: now + ramp.waitMs };
        return { action: 'wait', waitMs: ramp.waitMs, reason: ramp.reason };
      }
      for (const [collection, writes] of Object.entries(plan)) if (writes > 0) this.bucket(collection, now).take(writes);
    }
    const waitMs = Math.ceil(((this.rss - this.slowMb) / (this.thresholdMb - this.slowMb)) * this.maxSlowDelayMs);
    if (waitMs > 0) {
      const reason = `memory: ${Math.round(this.rss)} MB ≥ ${Math.round(this.slowFraction * 100)} % of ${Math.round(this.thresholdMb)} MB`;
      this.latestWait = { reason, until: now + waitMs };
      return { action: 'go', waitMs, reason };
    }
    return { action: 'go', waitMs: 0, reason: null };
  }

  /**
   * Waits until a batch writing `plan` may go: true when it may, false when `stopped()` turned
   * true meanwhile (checked after every wait). While paused for memory it calls `gc` (when
   * exposed) at most once per poll interval.
   */
  async admit(plan: WritePlan, stopped: () => boolean = () => false): Promise<boolean> {
    for (;;) {
      if (stopped()) return false;
      const decision = this.decide(plan);
      if (decision.action === 'pause') this.collectGarbage();
      if (decision.waitMs > 0) await this.sleep(decision.waitMs);
      if (decision.action === 'go') return !stopped();
    }
  }

  /**
   * After the batch: `actual` writes per collection replace the `planned` reservation — unused
   * writes (already-migrated, skipped, failed or deferred documents) go back to their buckets,
   * extra ones (before-image chunks) are charged to the next batches.
   */
  settle(planned: WritePlan, actual: WritePlan): void {
    if (!this.options.ramp) return;
    const now = this.clock();
    for (const collection of new Set([...Object.keys(planned), ...Object.keys(actual)])) {
      const reserved = planned[collection] ?? 0;
      const made = actual[collection] ?? 0;
      assertCount(`planned writes to ${collection}`, reserved);
      assertCount(`actual writes to ${collection}`, made);
      if (made !== reserved) this.bucket(collection, now).giveBack(reserved - made, now);
    }
  }

  state(): ThrottleState {
    const now = this.clock();
    const { inUse, size, waiting } = this.pool;
    let reason: string | null = null;
    let waitMs = 0;
    if (this.paused) {
      reason = this.paused.reason;
      waitMs = Math.max(0, this.paused.nextCheckAt - now);
    } else if (this.latestWait && this.latestWait.until > now) {
      reason = this.latestWait.reason;
      waitMs = this.latestWait.until - now;
    } else if (inUse === size && waiting > 0) {
      reason = `pool: ${inUse}/${size} RPCs in flight`;
    }
    return {
      throttled: reason !== null,
      reason,
      waitMs,
      poolInUse: inUse,
      poolSize: size,
      utilisation: inUse / size,
      rssMb: this.rss,
      thresholdMb: this.thresholdMb,
      rampEnabled: this.options.ramp,
      ramp: [...this.buckets].map(([collection, bucket]) => ({ collection, opsPerSecond: bucket.rate(now), minute: bucket.minute(now) })),
    };
  }

  private bucket(collection: string, now: number): RampBucket {
    let bucket = this.buckets.get(collection);
    if (!bucket) {
      bucket = new RampBucket(this.options.quotaSafety, now);
      this.buckets.set(collection, bucket);
    }
    return bucket;
  }

  /** The longest wait any collection of the plan asks for, and its reason. */
  private rampWait(plan: WritePlan, now: number): { waitMs: number; reason: string } {
    let longest = { waitMs: 0, reason: '' };
    for (const [collection, writes] of Object.entries(plan)) {
      if (writes === 0) continue;
      const bucket = this.bucket(collection, now);
      const waitMs = bucket.waitMs(writes, now);
      if (waitMs > longest.waitMs) {
        const rate = Math.round(bucket.rate(now));
        longest = { waitMs, reason: `ramp: ${collection} ${rate} ops/s (minute ${bucket.minute(now)}, safety ${this.options.quotaSafety})` };
      }
    }
    return longest;
  }

  private collectGarbage(): void {
    const now = this.clock();
    if (!this.gc || now - this.lastGcAt < this.pausePollMs) return;
    this.lastGcAt = now;
    this.gc();
  }
}
