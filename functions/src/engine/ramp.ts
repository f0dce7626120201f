/**
 * Firestore's "500/50/5" traffic ramp: a new or cold collection takes about 500 operations per
 * second, and traffic may grow by 50 % every 5 minutes (Firestore best practices, "Ramping up
 * traffic"). Going faster earns contention errors and latency, so both the throttle and the
 * plan's duration estimate follow this curve, scaled down by MIGRATION_QUOTA_SAFETY.
 */
export const RAMP_START_OPS_PER_SECOND = 500;
export const RAMP_GROWTH_PER_STEP = 1.5;
export const RAMP_STEP_MINUTES = 5;

const STEP_SECONDS = RAMP_STEP_MINUTES * 60;

function assertSafety(safety: number): void {
  if (!(safety > 0 && safety <= 1)) {
    throw new RangeError(`quota safety must be greater than 0 and at most 1, got ${safety}`);
  }
}

/** Operations per second the ramp allows `minute` minutes after the start (steps, not a slope). */
export function rampOpsPerSecond(minute: number, safety: number): number {
  assertSafety(safety);
  if (!(minute >= 0)) throw new RangeError(`minute must be 0 or more, got ${minute}`);
  const step = Math.floor(minute / RAMP_STEP_MINUTES);
  return RAMP_START_OPS_PER_SECOND * RAMP_GROWTH_PER_STEP ** step * safety;
}

/**
 * Seconds needed to perform `writes` operations when every second runs at the ramp's limit:
 * whole 5-minute steps at their rate, then the remainder at the last step's rate. The real run
 * can only be slower (it also waits for reads and commits), so this is the lower bound.
 */
export function durationForWrites(writes: number, safety: number): number {
  assertSafety(safety);
  if (!(writes >= 0) || !Number.isFinite(writes)) throw new RangeError(`writes must be a finite number ≥ 0, got ${writes}`);
  let remaining = writes;
  let seconds = 0;
  for (let step = 0; remaining > 0; step++) {
    const rate = RAMP_START_OPS_PER_SECOND * RAMP_GROWTH_PER_STEP ** step * safety;
    const capacity = rate * STEP_SECONDS;
    if (remaining <= capacity) return seconds + remaining / rate;
    remaining -= capacity;
    seconds += STEP_SECONDS;
  }
  return seconds;
}
