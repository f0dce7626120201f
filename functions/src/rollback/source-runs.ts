import { FieldPath, type Firestore } from '@google-cloud/firestore';
import type { ControlPaths } from '../control/paths';
import type { RunDocument } from '../control/runs';

/** A migrate run whose changes a rollback undoes. */
export interface SourceRun {
  runId: string;
  status: RunDocument['status'];
  /** Whether the run captured before-images (its MIGRATION_ROLLBACK_ENABLED snapshot). */
  beforeImages: boolean;
  createdAtMs: number;
}

/**
 * The executed migrate runs of a migration (or the one named), NEWEST FIRST: a document migrated by
 * two runs is put back by the newer run's before-image first, then by the older one's, so it ends
 * at its oldest before-image. A migration has few runs: they are read whole and sorted here,
 * which needs no composite index.
 */
export async function listSourceRuns(db: Firestore, paths: ControlPaths, migrationId: string, runId?: string): Promise<SourceRun[]> {
  const snapshot = await db.collection(paths.runs(migrationId)).get();
  const runs = snapshot.docs
    .map((doc) => doc.data() as RunDocument)
    .filter((run) => run.kind === 'migrate' && run.mode === 'execute' && (runId === undefined || run.runId === runId))
    .map((run) => ({
      runId: run.runId,
      status: run.status,
      beforeImages: run.config?.migration?.rollbackEnabled !== false,
      createdAtMs: (run.startedAt ?? run.createdAt).toMillis(),
    }))
    .sort((a, b) => b.createdAtMs - a.createdAtMs || (a.runId < b.runId ? 1 : -1));
  if (runId !== undefined && runs.length === 0) {
    const exists = snapshot.docs.find((doc) => doc.id === runId);
    const what = exists ? `is a ${(exists.data() as RunDocument).kind} ${(exists.data() as RunDocument).mode} run, not an executed migrate run` : `does not exist under ${paths.runs(migrationId)}`;
    throw new Error(`Run ${runId} of migration "${migrationId}" ${what}: nothing to roll back.`);
  }
  return runs;
}

/** How many before-images a run stored (a count aggregation: no index, no document reads). */
export async function countBackups(db: Firestore, paths: ControlPaths, migrationId: string, runId: string): Promise<number> {
  const snapshot = await db.collection(paths.backups(migrationId, runId)).count().get();
  return snapshot.data().count;
}

/**
 * The ids of the next `limit` backups of a run after `afterBackupId`, by document id: the
 * backups' fields are exempt from indexing, so they are listed by key only (which also makes
 * the cursor of a resumable batch a backup id).
 */
export async function nextBackupIds(db: Firestore, paths: ControlPaths, migrationId: string, runId: string, afterBackupId: string | null, limit: number): Promise<string[]> {
  let query = db.collection(paths.backups(migrationId, runId)).select().orderBy(FieldPath.documentId()).limit(limit);
  if (afterBackupId !== null) query = query.startAfter(afterBackupId);
  const snapshot = await query.get();
  return snapshot.docs.map((doc) => doc.id);
}
