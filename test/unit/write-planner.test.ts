import { WritePlanner } from '../../functions/src/engine/batch-dispatcher';
import type { BatchResult } from '../../functions/src/engine/batch-core';

const result = (status: BatchResult['status'], migrated: number): BatchResult => ({
  status,
  migrated,
  skipped: 0,
  alreadyMigrated: 0,
  failed: 0,
  preconditionRetries: 0,
  transientRetries: 0,
  latencyMs: 10,
  firstKey: 'trades/a',
  lastKey: 'trades/b',
  deferredKeys: [],
});

describe('the writes a batch plans for the throttle', () => {
  it('plans one write per document in the target collection and one in the before-image collection', () => {
    const planner = new WritePlanner({ collection: 'users/u1/trades' }, true);
    expect(planner.targetLabel).toBe('trades');
    expect(planner.plan(250)).toEqual({ trades: 250, firemigrate_backups: 250 });
    expect(new WritePlanner({ collectionGroup: 'messages' }, false).plan(40)).toEqual({ messages: 40 });
  });

  it('settles on what the batch wrote: its migrated documents, nothing for a duplicate delivery', () => {
    const planner = new WritePlanner({ collection: 'trades' }, true);
    expect(planner.actual(result('committed', 180))).toEqual({ trades: 180, firemigrate_backups: 180 });
    expect(planner.actual(result('duplicate', 180))).toEqual({ trades: 0, firemigrate_backups: 0 });
  });
});
