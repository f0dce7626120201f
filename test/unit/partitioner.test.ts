import {
  MIN_DOCUMENTS_PER_PARTITION,
  PARTITIONS_PER_WORKER,
  SplitPointSampler,
  desiredPartitionCount,
  isUnimplemented,
  keepCollectionSplitPoints,
  rangesFromSplitPoints,
  splitEvery,
} from '../../functions/src/engine/partitioner';
import type { KeyRange } from '../../functions/src/control/partitions';

/** Keys `k000000`… in key order, like the scan sees them. */
const keysOf = (n: number) => Array.from({ length: n }, (_, i) => `items/k${String(i).padStart(6, '0')}`);

/** The sampler after a scan of `keys`. */
function sampled(keys: string[], workers: number): SplitPointSampler {
  const sampler = new SplitPointSampler(workers);
  for (const key of keys) sampler.add(key);
  return sampler;
}

function inRange(key: string, range: KeyRange): boolean {
  return (range.startAt === null || key >= range.startAt) && (range.endBefore === null || key < range.endBefore);
}

describe('partition arithmetic', () => {
  it('asks for 4 partitions per worker, at most one per 1000 documents, at least one', () => {
    expect(PARTITIONS_PER_WORKER).toBe(4);
    expect(MIN_DOCUMENTS_PER_PARTITION).toBe(1000);
    expect(desiredPartitionCount(0, 3)).toBe(1);
    expect(desiredPartitionCount(999, 3)).toBe(1);
    expect(desiredPartitionCount(1001, 3)).toBe(2);
    expect(desiredPartitionCount(5000, 3)).toBe(5);
    expect(desiredPartitionCount(50_000, 3)).toBe(12);
    expect(desiredPartitionCount(10_000_000, 8)).toBe(32);
    expect(() => desiredPartitionCount(-1, 3)).toThrow(/total must be an integer ≥ 0, got -1/);
    expect(() => desiredPartitionCount(10, 0)).toThrow(/workers must be an integer ≥ 1, got 0/);
  });

  it('takes every ⌈total/desired⌉-th key after the first as a split point', () => {
    expect(splitEvery(10, 3)).toBe(4);
    expect(splitEvery(9, 3)).toBe(3);
    expect(splitEvery(2, 5)).toBe(1);
    expect(splitEvery(0, 4)).toBe(1);
    expect(() => splitEvery(10, 0)).toThrow(/desired partitions must be an integer ≥ 1, got 0/);
  });

  it('turns n split points into n + 1 half-open ranges, open at both ends', () => {
    expect(rangesFromSplitPoints([])).toEqual([{ startAt: null, endBefore: null }]);
    expect(rangesFromSplitPoints(['a/2', 'a/5'])).toEqual([
      { startAt: null, endBefore: 'a/2' },
      { startAt: 'a/2', endBefore: 'a/5' },
      { startAt: 'a/5', endBefore: null },
    ]);
  });

  it.each([
    [1, 3],
    [64, 3],
    [999, 3],
    [1001, 3],
    [1500, 1],
    [5000, 3],
    [12_345, 3],
    [50_000, 3],
    [100_000, 3],
    [200_001, 8],
  ])('samples split points from a scan of %i keys (%i workers): every key in exactly one range, each within a quarter of the ideal size', (n, workers) => {
    const keys = keysOf(n);
    const sampler = sampled(keys, workers);
    expect(sampler.total).toBe(n);
    const desired = desiredPartitionCount(n, workers);
    const every = splitEvery(n, desired);
    const ranges = rangesFromSplitPoints(sampler.splitPoints());
    expect(ranges.length).toBeLessThanOrEqual(desired);
    // Enough candidates for every boundary: all desired ranges are there once the scan spans two spacings per range.
    if (every >= 2 * sampler.spacing) expect(ranges).toHaveLength(desired);
    const sizes = ranges.map((range) => keys.filter((key) => inRange(key, range)).length);
    for (const key of keys) expect(ranges.filter((range) => inRange(key, range))).toHaveLength(1);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(n);
    for (const size of sizes) {
      expect(size).toBeGreaterThan(0);
      expect(size).toBeLessThanOrEqual(every + sampler.spacing);
    }
    if (ranges.length === desired && desired > 1) expect(sampler.spacing).toBeLessThanOrEqual(Math.max(64, every / 4));
  });

  it('holds a bounded sample of keys however long the scan (memory stays flat)', () => {
    const sampler = new SplitPointSampler(3);
    let most = 0;
    for (let i = 0; i < 1_000_000; i++) {
      sampler.add(`items/k${String(i).padStart(7, '0')}`);
      most = Math.max(most, sampler.held);
    }
    // 8 candidates per range, 12 ranges for 3 workers.
    expect(most).toBeLessThanOrEqual(8 * 12);
    expect(sampler.splitPoints()).toHaveLength(11);
  });

  it('keeps only split points that are documents directly in the target collection', () => {
    const groupPoints = ['a/x/trades/t1', 'trades/b', 'trades/b/trades/n1', 'trades/m', 'users/u1/trades/z'];
    expect(keepCollectionSplitPoints('trades', groupPoints)).toEqual(['trades/b', 'trades/m']);
    expect(keepCollectionSplitPoints('users/u1/trades', groupPoints)).toEqual(['users/u1/trades/z']);
    expect(keepCollectionSplitPoints('posts', groupPoints)).toEqual([]);
  });

  it('recognises gRPC UNIMPLEMENTED (code 12) and nothing else', () => {
    expect(isUnimplemented(Object.assign(new Error('12 UNIMPLEMENTED: not supported'), { code: 12 }))).toBe(true);
    expect(isUnimplemented(Object.assign(new Error('14 UNAVAILABLE'), { code: 14 }))).toBe(false);
    expect(isUnimplemented(new Error('UNIMPLEMENTED'))).toBe(false);
    expect(isUnimplemented(undefined)).toBe(false);
  });
});
