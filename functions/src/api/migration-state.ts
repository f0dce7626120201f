/**
 * What the status, health and run routes report about runs: which runs are in progress, their
 * progress summed from the batch markers, and a throughput measured from the markers' commit
 * times — the markers are committed with the documents, so these figures are the data's own.
 */
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { ControlPaths } from '../control/paths';
import { countFailureRecords, processedOf, sumMarkers, type BatchCounters } from '../control/progress';
import { RegistryStore, type RegistryEntry } from '../control/registry-store';
import type { RunDocument, RunStatus } from '../control/runs';
import { compareVersions } from '../definitions/registry';

/** A run in these statuses is in progress: it has work left and holds its migration's turn. */
export const IN_PROGRESS_STATUSES: readonly RunStatus[] = ['planning', 'running', 'paused', 'emergency_stopped'];

/** Throughput is measured over the markers committed in this window before now… */
export const THROUGHPUT_WINDOW_MS = 5 * 60_000;
/** …the newest this many of them at most, so a fast run's status costs a bounded number of reads. */
export const THROUGHPUT_SAMPLE_BATCHES = 200;

export interface InProgressRun {
  run: RunDocument;
  entry: RegistryEntry;
}

export interface MigrationState {
  entries: RegistryEntry[];
  /** Executed (not dry) runs in progress, oldest first: these change the app's data. */
  inProgress: InProgressRun[];
}

/** Reads the registry (one entry per migration) and the in-progress runs of each migration. */
export async function readMigrationState(db: Firestore, paths: ControlPaths): Promise<MigrationState> {
  const entries = await new RegistryStore(db, paths).list();
  const perMigration = await Promise.all(
    entries.map(async (entry) => {
      const snapshot = await db.collection(paths.runs(entry.id)).where('status', 'in', [...IN_PROGRESS_STATUSES]).get();
      return snapshot.docs.map((doc) => ({ run: doc.data() as RunDocument, entry }));
    }),
  );
  const inProgress = perMigration
    .flat()
    .filter(({ run }) => run.mode === 'execute')
    .sort((a, b) => a.run.createdAt.toMillis() - b.run.createdAt.toMillis());
  return { entries, inProgress };
}

/**
 * The schema version of the app's data: the highest version being migrated to while runs are in
 * progress, else the highest applied version, else null (no migration applied yet).
 */
export function dataVersion(state: MigrationState): string | null {
  const versions = state.inProgress.length > 0
    ? state.inProgress.map(({ entry }) => entry.version)
    : state.entries.filter((entry) => entry.status === 'applied').map((entry) => entry.version);
  return versions.length > 0 ? versions.reduce((a, b) => (compareVersions(a, b) >= 0 ? a : b)) : null;
}

export interface Throughput {
  /** Documents handled per second between the oldest and newest sampled commit; null under two commits. */
  docsPerSecond: number | null;
  /** Markers sampled (committed within the window, newest first, at most THROUGHPUT_SAMPLE_BATCHES). */
  sampleBatches: number;
  /** Time between the oldest and the newest sampled commit. */
  sampleSeconds: number | null;
}

export interface TimedMarker extends BatchCounters {
  committedAt: Timestamp;
}

/**
 * The documents of every marker after the oldest, over the time from the oldest commit to the
 * newest: the oldest marker's documents were handled before its commit, so they fall outside
 * the measured interval.
 */
export function throughputOf(markers: readonly TimedMarker[]): Throughput {
  const sorted = [...markers].sort((a, b) => a.committedAt.toMillis() - b.committedAt.toMillis());
  if (sorted.length < 2) return { docsPerSecond: null, sampleBatches: sorted.length, sampleSeconds: null };
  const spanMs = sorted[sorted.length - 1].committedAt.toMillis() - sorted[0].committedAt.toMillis();
  const documents = sorted.slice(1).reduce((sum, marker) => sum + processedOf(marker), 0);
  return {
    docsPerSecond: spanMs > 0 ? (documents * 1000) / spanMs : null,
    sampleBatches: sorted.length,
    sampleSeconds: spanMs / 1000,
  };
}

export async function measureThroughput(db: Firestore, paths: ControlPaths, run: RunDocument, now: Date): Promise<Throughput> {
  const snapshot = await db
    .collection(paths.batches(run.migrationId, run.runId))
    .where('committedAt', '>=', Timestamp.fromMillis(now.getTime() - THROUGHPUT_WINDOW_MS))
    .orderBy('committedAt', 'desc')
    .limit(THROUGHPUT_SAMPLE_BATCHES)
    .select('committedAt', 'migrated', 'skipped', 'alreadyMigrated', 'failed')
    .get();
  return throughputOf(snapshot.docs.map((doc) => doc.data() as TimedMarker));
}

export interface RunProgress extends BatchCounters {
  batches: number;
  /** Documents handled: migrated, skipped, already at target or failed. */
  processed: number;
  /** Documents of the target when the run (or its latest resume) started; null until planned. */
  total: number | null;
  /** processed / total in percent (0.1 steps, at most 100); null without a total. */
  percent: number | null;
  meanBatchLatencyMs: number | null;
}

export interface RunFigures {
  progress: RunProgress;
  throughput: Throughput;
  /** Now + remaining documents / throughput, for a running run with a known total and throughput; else null. */
  estimatedCompletion: Date | null;
  /** Failure records (one per failed document path). */
  failureRecords: number;
}

export async function runFigures(db: Firestore, paths: ControlPaths, run: RunDocument, now: Date): Promise<RunFigures> {
  const [totals, throughput, failureRecords] = await Promise.all([
    sumMarkers(db, paths, run.migrationId, run.runId),
    measureThroughput(db, paths, run, now),
    countFailureRecords(db, paths, run.migrationId, run.runId),
  ]);
  const processed = processedOf(totals);
  const total = run.totals?.targetDocuments ?? null;
  const progress: RunProgress = {
    batches: totals.batches,
    migrated: totals.migrated,
    skipped: totals.skipped,
    alreadyMigrated: totals.alreadyMigrated,
    failed: totals.failed,
    processed,
    total,
    percent: percentOf(processed, total),
    meanBatchLatencyMs: totals.meanLatencyMs,
  };
  return { progress, throughput, estimatedCompletion: estimateCompletion(run, progress, throughput, now), failureRecords };
}

/** processed / total in percent, in 0.1 steps, at most 100 (a resume reads some documents twice); null without a total. */
export function percentOf(processed: number, total: number | null): number | null {
  if (total === null) return null;
  if (total === 0) return 100;
  return Math.min(100, Math.round((processed / total) * 1000) / 10);
}

export function estimateCompletion(run: Pick<RunDocument, 'status'>, progress: Pick<RunProgress, 'processed' | 'total'>, throughput: Throughput, now: Date): Date | null {
  if (run.status !== 'running' || progress.total === null || !throughput.docsPerSecond) return null;
  const remaining = Math.max(0, progress.total - progress.processed);
  return new Date(now.getTime() + Math.round((remaining / throughput.docsPerSecond) * 1000));
}
