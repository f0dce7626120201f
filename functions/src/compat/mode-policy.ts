import type { Firestore } from '@google-cloud/firestore';
import type { ControlPaths } from '../control/paths';
import type { Migration, MigrationTarget } from '../definitions/types';
import { changeMode, type ModeChange, type ModeChangeResult, type ModeState } from './modes';

/**
 * The automatic mode changes around runs (what a careful operator expects):
 *  - a migrate run (started or resumed) puts its collection in `dual-read` and turns the sync
 *    trigger on for its migration: from then on the collection holds both shapes;
 *  - the mode STAYS dual-read after the run, whatever its end: completed, the app may still have
 *    legacy clients writing the old shape (the trigger upgrades what they write); paused, failed or
 *    aborted, the documents are in both shapes. Contract — `firemigrate cleanup` — is the step that
 *    ends dual-read for the collection, once legacy clients are gone;
 *  - a rollback keeps the collection in dual-read while it restores, with the sync trigger OFF for
 *    the migration (it would upgrade the restored documents again), and ends dual-read for the
 *    collection once it has completed (every document is back in the old shape);
 *  - a `maintenance` mode is never overridden: an operator froze client writes on purpose.
 * Each change is made in one transaction with its `mode.changed` audit event (who, why, run id).
 */

/** The collection id a migration's target writes (what the rules pass to migrationAllowsWrite). */
export function targetCollectionId(target: MigrationTarget): string {
  return 'collection' in target ? target.collection.split('/').pop()! : target.collectionGroup;
}

export interface RunModeCause {
  /** The migration the run executes (a cleanup run's derived migration included). */
  migration: Migration;
  runId: string;
  kind: 'migrate' | 'cleanup' | 'rollback';
  user: string;
  identity: string;
}

export type ModePolicyOutcome =
  | { action: 'changed'; result: ModeChangeResult }
  /** The mode already said what the policy wants. */
  | { action: 'unchanged'; mode: ModeState }
  /** An operator's maintenance mode stays: the run proceeds under it. */
  | { action: 'kept-maintenance'; mode: ModeState };

const union = (a: readonly string[], b: readonly string[]) => [...new Set([...a, ...b])];
const sameSet = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((x) => b.includes(x));

/** What a policy step makes of the current mode: a change, or the outcome of making none. */
type ModeDecision = { change: ModeChange } | { none: ModePolicyOutcome };

/** Applies `decide` in changeMode's transaction, never over an operator's maintenance mode. */
async function applyPolicy(db: Firestore, paths: ControlPaths, decide: (previous: ModeState | null) => ModeDecision): Promise<ModePolicyOutcome> {
  let none: ModePolicyOutcome | undefined;
  const result = await changeMode(
    db,
    (previous) => {
      const decision: ModeDecision = previous?.mode === 'maintenance' ? { none: { action: 'kept-maintenance', mode: previous } } : decide(previous);
      none = 'none' in decision ? decision.none : undefined;
      return 'change' in decision ? decision.change : null;
    },
    paths,
  );
  return result ? { action: 'changed', result } : none!;
}

/**
 * Adds the run's collection to dual-read. `sync`: add the migration to the trigger's list
 * (migrate runs), remove it (rollbacks), or leave the list (cleanup runs).
 */
function enterDualRead(db: Firestore, paths: ControlPaths, cause: RunModeCause, sync: 'on' | 'off' | 'keep', why: string): Promise<ModePolicyOutcome> {
  const collection = targetCollectionId(cause.migration.target);
  return applyPolicy(db, paths, (previous) => {
    const dual = previous?.mode === 'dual-read' ? previous : null;
    const collections = union(dual?.collections ?? [], [collection]);
    const current = dual?.migrations ?? [];
    const migrations = sync === 'on' ? union(current, [cause.migration.id]) : sync === 'off' ? current.filter((id) => id !== cause.migration.id) : current;
    if (dual && sameSet(dual.collections, collections) && sameSet(current, migrations)) return { none: { action: 'unchanged', mode: dual } };
    return { change: { mode: 'dual-read', collections, migrations, migrationId: cause.migration.id, runId: cause.runId, user: cause.user, identity: cause.identity, reason: why } };
  });
}

/** Takes the run's collection out of dual-read (normal once no collection is left), with the migrations targeting it. */
function leaveDualRead(db: Firestore, paths: ControlPaths, cause: RunModeCause, migrationsOfCollection: readonly string[], why: string): Promise<ModePolicyOutcome> {
  const collection = targetCollectionId(cause.migration.target);
  return applyPolicy(db, paths, (previous) => {
    if (previous?.mode !== 'dual-read' || !previous.collections.includes(collection)) {
      return { none: { action: 'unchanged', mode: previous ?? { mode: 'normal', collections: [], migrations: [], migrationId: null, runId: null, changedAt: null, changedBy: null, reason: null } } };
    }
    const collections = previous.collections.filter((id) => id !== collection);
    const base = { migrationId: cause.migration.id, runId: cause.runId, user: cause.user, identity: cause.identity, reason: why };
    if (collections.length === 0) return { change: { mode: 'normal', ...base } };
    const migrations = previous.migrations.filter((id) => !migrationsOfCollection.includes(id));
    return { change: { mode: 'dual-read', collections, migrations, ...base } };
  });
}

/** A migrate run started or resumed: its collection is dual-read and the sync trigger applies its migration. */
export function modeForMigrateRun(db: Firestore, paths: ControlPaths, cause: Omit<RunModeCause, 'kind'>): Promise<ModePolicyOutcome> {
  return enterDualRead(
    db,
    paths,
    { ...cause, kind: 'migrate' },
    'on',
    `run ${cause.runId} of ${cause.migration.id}: documents of both shapes until cleanup; the sync trigger upgrades what legacy clients write`,
  );
}

/** A cleanup run started: its collection stays (or becomes) dual-read; the sync trigger keeps its list. */
export function modeForCleanupRun(db: Firestore, paths: ControlPaths, cause: Omit<RunModeCause, 'kind'>): Promise<ModePolicyOutcome> {
  return enterDualRead(db, paths, { ...cause, kind: 'cleanup' }, 'keep', `cleanup run ${cause.runId} (${cause.migration.id}) removes the legacy fields`);
}

/**
 * A cleanup run completed: legacy clients are gone and the legacy fields removed, so the
 * collection leaves dual-read, with the migrations the trigger applied to it.
 */
export function modeAfterCleanup(db: Firestore, paths: ControlPaths, cause: Omit<RunModeCause, 'kind'>, migrationsOfCollection: readonly string[]): Promise<ModePolicyOutcome> {
  return leaveDualRead(db, paths, { ...cause, kind: 'cleanup' }, migrationsOfCollection, `cleanup run ${cause.runId} (${cause.migration.id}) completed: one shape left`);
}

/** A rollback started: the app still reads both shapes; the sync trigger must not upgrade what the rollback restores. */
export function modeForRollback(db: Firestore, paths: ControlPaths, cause: Omit<RunModeCause, 'kind'>): Promise<ModePolicyOutcome> {
  return enterDualRead(db, paths, { ...cause, kind: 'rollback' }, 'off', `rollback ${cause.runId} of ${cause.migration.id}: sync trigger off for it while documents are restored`);
}

/** A rollback completed: every document is back in the old shape, the collection leaves dual-read. */
export function modeAfterRollback(db: Firestore, paths: ControlPaths, cause: Omit<RunModeCause, 'kind'>): Promise<ModePolicyOutcome> {
  return leaveDualRead(db, paths, { ...cause, kind: 'rollback' }, [cause.migration.id], `rollback ${cause.runId} of ${cause.migration.id} completed: the old shape only`);
}

/** One line for logs: what the policy did. */
export function describeModeOutcome(outcome: ModePolicyOutcome): string {
  switch (outcome.action) {
    case 'changed': {
      const { previous, current } = outcome.result;
      return `mode ${previous?.mode ?? 'malformed'} → ${current.mode}${current.collections.length ? ` for ${current.collections.join(', ')}` : ''} (audit event ${outcome.result.auditEventId})`;
    }
    case 'unchanged':
      return `mode stays ${outcome.mode.mode}${outcome.mode.collections.length ? ` for ${outcome.mode.collections.join(', ')}` : ''}`;
    case 'kept-maintenance':
      return `mode stays maintenance for ${outcome.mode.collections.join(', ')} (set by ${outcome.mode.changedBy ?? 'an operator'}): not overridden`;
  }
}
