import { durationForWrites, rampOpsPerSecond } from '../../functions/src/engine/ramp';

describe('the 500/50/5 ramp', () => {
  it('starts at 500 ops/s and grows by 50 % at every 5-minute step', () => {
    expect(rampOpsPerSecond(0, 1)).toBe(500);
    expect(rampOpsPerSecond(4.99, 1)).toBe(500);
    expect(rampOpsPerSecond(5, 1)).toBe(750);
    expect(rampOpsPerSecond(10, 1)).toBe(1125);
    expect(rampOpsPerSecond(19, 1)).toBe(1687.5);
  });

  it('scales every step by the quota safety factor', () => {
    expect(rampOpsPerSecond(0, 0.8)).toBe(400);
    expect(rampOpsPerSecond(5, 0.8)).toBeCloseTo(600, 10);
    expect(rampOpsPerSecond(12, 0.5)).toBeCloseTo(562.5, 10);
  });

  it('refuses a safety factor outside (0, 1] and a negative minute', () => {
    expect(() => rampOpsPerSecond(0, 0)).toThrow(/quota safety/);
    expect(() => rampOpsPerSecond(0, 1.2)).toThrow(/quota safety/);
    expect(() => rampOpsPerSecond(-1, 1)).toThrow(/minute/);
    expect(() => durationForWrites(10, Number.NaN)).toThrow(/quota safety/);
    expect(() => durationForWrites(-1, 1)).toThrow(/writes/);
    expect(() => durationForWrites(Number.POSITIVE_INFINITY, 1)).toThrow(/writes/);
  });

  it('needs no time for no writes, and writes within the first step at the start rate', () => {
    expect(durationForWrites(0, 1)).toBe(0);
    expect(durationForWrites(500, 1)).toBe(1);
    expect(durationForWrites(3779, 0.8)).toBeCloseTo(3779 / 400, 10);
  });

  it('fills whole 5-minute steps at their rate, then the remainder at the next rate', () => {
    // first step: 500 ops/s × 300 s = 150 000 writes
    expect(durationForWrites(150_000, 1)).toBe(300);
    expect(durationForWrites(150_000 + 1125, 1)).toBeCloseTo(300 + 1125 / 750, 10);
    // second step: 750 × 300 = 225 000 → 375 000 writes in 10 minutes
    expect(durationForWrites(375_000, 1)).toBeCloseTo(600, 10);
    // safety 0.8: 120k, 180k, 270k, 405k per step (975k in 20 min), then 2025 ops/s
    expect(durationForWrites(1_000_000, 0.8)).toBeCloseTo(1200 + 25_000 / 2025, 6);
  });

  it('takes longer for more writes and for a lower safety factor', () => {
    let previous = 0;
    for (const writes of [1, 10_000, 200_000, 2_000_000, 50_000_000]) {
      const seconds = durationForWrites(writes, 0.8);
      expect(seconds).toBeGreaterThan(previous);
      expect(durationForWrites(writes, 0.4)).toBeGreaterThan(seconds);
      previous = seconds;
    }
  });
});
