import { renderPlanReport } from '../../functions/src/cli/commands/plan';
import { estimateProduction, type PlanReport } from '../../functions/src/engine/planner';

const counts = { total: 2000, migrate: 1860, alreadyAtTarget: 75, skipped: 25, fail: 40 };
const report: PlanReport = {
  migrationId: 'tradeya-trades-v2',
  version: '2.0',
  description: 'TradeYa trades v2',
  checksum: 'ab'.repeat(32),
  target: { kind: 'collectionGroup', name: 'trades', where: [{ field: 'status', op: '==', value: 'open' }] },
  validationEnabled: true,
  showValues: false,
  counts,
  skipReasons: [{ reason: 'archived', count: 25 }],
  skippedOtherReasons: 0,
  failures: [
    {
      errorClass: 'invalid-source',
      severity: 'medium',
      count: 40,
      paths: Array.from({ length: 6 }, (_, i) => `trades/t${i}`),
      messages: [
        { message: 'creatorId: invalid_type', count: 30, firstPath: 'trades/t0' },
        { message: 'offeredSkills: invalid_type', count: 10, firstPath: 'trades/t1' },
      ],
      otherMessages: 0,
    },
  ],
  samples: [{ path: 'trades/t9', changes: [{ path: ['skillsOffered'], kind: 'added', afterType: 'array<map>' }] }],
  estimate: estimateProduction(counts, { batchSize: 100, rollbackEnabled: true, quotaSafety: 0.8 }),
  elapsedMs: 2500,
};

describe('the human plan report', () => {
  const lines = renderPlanReport(report);
  const text = lines.join('\n');

  it('says what is planned and that nothing was written', () => {
    expect(lines[0]).toBe('Plan for tradeya-trades-v2 (version 2.0) — dry run, nothing was written');
    expect(text).toContain('target: collection group trades where status == "open"');
  });

  it('tabulates the counts with their shares, numbers right-aligned', () => {
    expect(text).toContain('would migrate      1,860  93.0 %');
    expect(text).toContain('already at target     75   3.8 %');
    expect(text).toContain('total read         2,000');
    expect(text).toContain('  archived: 25');
  });

  it('lists failures by class and message, with the listed paths and how many more there are', () => {
    expect(text).toContain('  invalid-source (medium): 40\n    30 × creatorId: invalid_type\n    10 × offeredSkills: invalid_type');
    expect(text).toContain('    trades/t0  trades/t1  trades/t2  trades/t3\n    trades/t4  trades/t5\n    … and 34 more');
  });

  it('says values are hidden, and gives the production estimate', () => {
    expect(text).toContain('Sample changes (field names and types; --show-values adds values)\n  trades/t9\n    + skillsOffered: array<map>');
    expect(text).toContain('400 ops/s at MIGRATION_QUOTA_SAFETY=0.8, +50 % every 5 min');
    expect(text).toContain('writes:   3,779 = 1,860 updates + 1,860 before-images + 19 batch markers (100 documents per batch) + 40 failure records');
    expect(text).toContain('duration: at least 9.4 s');
  });
});
