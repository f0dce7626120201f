import type { Migration } from '../definitions/types';
import type { SourceRun } from './source-runs';
import type { RollbackStrategy } from './types';

export interface StrategyChoice {
  chosen: RollbackStrategy;
  reason: string;
  overridden: boolean;
  /** Why the chosen strategy cannot run (null: it can). */
  impossible: string | null;
}

/**
 * Restore when every run in scope captured before-images (exact); otherwise revert with `down`
 * (not exact: `down` recomputes the old shape). An override is honoured but checked the same way.
 */
export function chooseStrategy(migration: Migration, runs: readonly SourceRun[], override?: RollbackStrategy): StrategyChoice {
  const without = runs.filter((run) => !run.beforeImages).map((run) => run.runId);
  const revertImpossible = migration.down
    ? null
    : `migration "${migration.id}" defines no down(), so it cannot be reverted${without.length > 0 ? ` (and runs ${without.join(', ')} have no before-images)` : ''}`;
  if (override === 'restore') {
    return {
      chosen: 'restore',
      reason: 'restore requested',
      overridden: true,
      impossible: without.length > 0 ? `runs ${without.join(', ')} ran with MIGRATION_ROLLBACK_ENABLED=false: they have no before-images to restore` : null,
    };
  }
  if (override === 'revert') return { chosen: 'revert', reason: 'revert requested: down() is applied to documents at the target version', overridden: true, impossible: revertImpossible };
  if (runs.length === 0) return { chosen: 'restore', reason: 'the migration has no executed run: nothing to roll back', overridden: false, impossible: null };
  if (without.length === 0) {
    return { chosen: 'restore', reason: `every run in scope (${runs.length}) stored before-images: they are restored exactly`, overridden: false, impossible: null };
  }
  return {
    chosen: 'revert',
    reason:
      `runs ${without.join(', ')} ran with MIGRATION_ROLLBACK_ENABLED=false (no before-images): down() is applied instead, which is not an exact restore ` +
      'and also reverts documents that were at the target version before the migration (nothing tells them apart)',
    overridden: false,
    impossible: revertImpossible,
  };
}
