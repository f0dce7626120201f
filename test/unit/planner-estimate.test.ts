import { documentsPerBatch, estimateProduction } from '../../functions/src/engine/planner';
import { durationForWrites } from '../../functions/src/engine/ramp';

describe('plan estimate', () => {
  it('keeps a commit within 500 writes: updates, their before-images and one batch marker', () => {
    expect(documentsPerBatch(100, true)).toBe(100);
    expect(documentsPerBatch(500, true)).toBe(249); // 249 × 2 + 1 = 499
    expect(documentsPerBatch(500, false)).toBe(499);
    expect(documentsPerBatch(1, true)).toBe(1);
  });

  it('counts reads, updates, before-images, batch markers and failure records', () => {
    const estimate = estimateProduction(
      { total: 2000, migrate: 1860, fail: 40 },
      { batchSize: 100, rollbackEnabled: true, quotaSafety: 0.8 },
    );
    expect(estimate.reads).toBe(2000);
    expect(estimate.writes).toEqual({ updates: 1860, beforeImages: 1860, batchMarkers: 19, failureRecords: 40, total: 3779 });
    expect(estimate.documentsPerBatch).toBe(100);
    expect(estimate.startOpsPerSecond).toBe(400);
    expect(estimate.durationSeconds).toBeCloseTo(3779 / 400, 10);
  });

  it('writes no before-images when rollback capture is off, and derives the duration from the total', () => {
    const estimate = estimateProduction(
      { total: 1_000_000, migrate: 900_000, fail: 0 },
      { batchSize: 500, rollbackEnabled: false, quotaSafety: 0.5 },
    );
    expect(estimate.writes).toEqual({ updates: 900_000, beforeImages: 0, batchMarkers: Math.ceil(900_000 / 499), failureRecords: 0, total: 900_000 + 1804 });
    expect(estimate.durationSeconds).toBe(durationForWrites(901_804, 0.5));
  });

  it('estimates nothing to write for a collection already migrated', () => {
    const estimate = estimateProduction({ total: 50, migrate: 0, fail: 0 }, { batchSize: 100, rollbackEnabled: true, quotaSafety: 1 });
    expect(estimate.writes.total).toBe(0);
    expect(estimate.durationSeconds).toBe(0);
  });
});
