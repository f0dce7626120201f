import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { AuditLog } from '../control/audit';
import type { ControlPaths } from '../control/paths';
import { RegistryStore } from '../control/registry-store';
import type { RunDocument } from '../control/runs';

/**
 * Before-images are what makes a rollback possible (DESIGN.md G4). They are kept for a retention
 * period after a run last wrote, and the contract step refuses to run while any run of the
 * migration can still be rolled back from them; after the period they are deleted.
 */
export const DEFAULT_RETENTION_DAYS = 30;
const DAY_MS = 24 * 60 * 60 * 1000;

/** One executed migrate run of a migration and its before-images. */
export interface RunRetention {
  migrationId: string;
  runId: string;
  status: RunDocument['status'];
  /** Stored before-images (top-level backup documents; chunks not counted). */
  beforeImages: number;
  /** The run's last batch commit (else its end, else its creation): the before-images are this old. */
  lastWriteAt: Timestamp;
  /** When the retention period of its before-images ends. */
  expiresAt: Timestamp;
  expired: boolean;
}

export interface RetentionReview {
  migrationId: string;
  registryStatus: string | null;
  retentionDays: number;
  runs: RunRetention[];
  /** Runs whose before-images still allow a rollback: not rolled back, not expired, with before-images. */
  rollbackPossibleFrom: RunRetention[];
  /** Runs whose before-images are past the retention period. */
  purgeable: RunRetention[];
}

export function retentionMs(days: number): number {
  if (!Number.isFinite(days) || days < 0) throw new RangeError(`the retention period must be a number of days of 0 or more, got ${String(days)}`);
  return days * DAY_MS;
}

async function lastWriteOf(db: Firestore, paths: ControlPaths, run: RunDocument): Promise<Timestamp> {
  const newest = await db.collection(paths.batches(run.migrationId, run.runId)).orderBy('committedAt', 'desc').limit(1).get();
  const committedAt = newest.docs[0]?.get('committedAt') as Timestamp | undefined;
  return committedAt ?? run.finishedAt ?? run.updatedAt ?? run.createdAt;
}

/** The executed migrate runs of `migrationId` and the age of their before-images. */
export async function reviewRetention(db: Firestore, paths: ControlPaths, migrationId: string, days: number, now: Timestamp = Timestamp.now()): Promise<RetentionReview> {
  const keepMs = retentionMs(days);
  const [entry, snapshot] = await Promise.all([new RegistryStore(db, paths).get(migrationId), db.collection(paths.runs(migrationId)).get()]);
  const runs: RunRetention[] = [];
  for (const doc of snapshot.docs) {
    const run = doc.data() as RunDocument;
    if (run.kind !== 'migrate' || run.mode !== 'execute') continue;
    const [lastWriteAt, count] = await Promise.all([lastWriteOf(db, paths, run), db.collection(paths.backups(migrationId, run.runId)).count().get()]);
    const expiresAt = Timestamp.fromMillis(lastWriteAt.toMillis() + keepMs);
    runs.push({ migrationId, runId: run.runId, status: run.status, beforeImages: count.data().count, lastWriteAt, expiresAt, expired: expiresAt.toMillis() <= now.toMillis() });
  }
  runs.sort((a, b) => a.lastWriteAt.toMillis() - b.lastWriteAt.toMillis());
  const rolledBack = entry?.status === 'rolled_back';
  return {
    migrationId,
    registryStatus: entry?.status ?? null,
    retentionDays: days,
    runs,
    rollbackPossibleFrom: rolledBack ? [] : runs.filter((run) => run.status !== 'rolled_back' && run.beforeImages > 0 && !run.expired),
    purgeable: runs.filter((run) => run.beforeImages > 0 && run.expired),
  };
}

export interface PurgeResult {
  migrationId: string;
  runId: string;
  beforeImages: number;
}

/**
 * Deletes the before-images (with their chunk documents) of the purgeable runs, marks each run
 * (`beforeImagesPurgedAt`) and records a `before-images.purged` audit event per run.
 */
export async function purgeBeforeImages(
  db: Firestore,
  paths: ControlPaths,
  review: RetentionReview,
  caller: { user: string; identity: string; reason: string | null },
): Promise<PurgeResult[]> {
  const audit = new AuditLog(db, paths);
  const purged: PurgeResult[] = [];
  for (const run of review.purgeable) {
    await db.recursiveDelete(db.collection(paths.backups(run.migrationId, run.runId)));
    await db.doc(paths.run(run.migrationId, run.runId)).update({ beforeImagesPurgedAt: Timestamp.now(), updatedAt: Timestamp.now() });
    await audit.append({
      action: 'before-images.purged',
      migrationId: run.migrationId,
      runId: run.runId,
      user: caller.user,
      identity: caller.identity,
      reason: caller.reason,
      details: { beforeImages: run.beforeImages, lastWriteAt: run.lastWriteAt.toDate().toISOString(), retentionDays: review.retentionDays },
    });
    purged.push({ migrationId: run.migrationId, runId: run.runId, beforeImages: run.beforeImages });
  }
  return purged;
}
