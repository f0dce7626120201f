/**
 * The read-only viewer routes the operator dashboard polls: the runs of every migration, one
 * run's details (partitions, throughput over time, batch latency, failures) and the health
 * history (score timeline, open and resolved alerts). The control data stays closed to clients
 * in firestore.rules: the page reads it only through these routes.
 */
import type { Firestore, Timestamp } from '@google-cloud/firestore';
import { Router, type Request } from 'express';
import { z } from 'zod';
import type { PartitionDocument } from '../control/partitions';
import type { ControlPaths } from '../control/paths';
import { RunStore, runFacts, type RunDocument } from '../control/runs';
import { alertsOf, AlertStateStore, type HealthAlert } from '../monitor/alerts';
import { summarizeLatencies } from '../monitor/percentiles';
import type { HealthCheck } from '../monitor/types';
import { requireRole, type IdTokenVerifier } from './auth';
import { ApiError, invalidRequest } from './errors';
import { RUN_ID } from './schemas';

export interface DashboardRoutesDeps {
  db: Firestore;
  paths: ControlPaths;
  verifier: IdTokenVerifier;
}

/** `GET /runs?limit=`: the newest runs of each migration. */
export const runListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
});

/** `GET /runs/:id/details?failures=`: how many failure records to list (the count is always exact). */
export const runDetailsQuery = z.strictObject({
  failures: z.coerce.number().int().min(0).max(500).default(50),
});

/** `GET /health/history?limit=`: how many of the newest health snapshots to return. */
export const healthHistoryQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(60),
});

/** Markers read for one run's details at most, newest first: bounds the cost of a poll. */
export const DETAIL_MARKER_LIMIT = 5000;
/** The throughput chart's points at most: markers are grouped into this many equal time buckets… */
export const THROUGHPUT_POINTS = 60;
/** …of at least this width: batches commit seconds apart, and narrower buckets read as a saw-tooth of zeros. */
export const THROUGHPUT_MIN_BUCKET_MS = 5000;

const iso = (time: Timestamp | null | undefined): string | null => (time ? time.toDate().toISOString() : null);
const count = (value: unknown): number => (typeof value === 'number' && Number.isFinite(value) ? value : 0);

function parseQuery<S extends z.ZodType>(schema: S, request: Request): z.output<S> {
  const result = schema.safeParse(request.query);
  if (!result.success) throw invalidRequest('the query string', result.error.issues);
  return result.data;
}

function runIdOf(request: Request): string {
  const runId = String(request.params.id);
  if (!RUN_ID.test(runId)) throw new ApiError(404, 'not-found', `"${runId}" is not a run id`, { runId });
  return runId;
}

export function dashboardRoutes(deps: DashboardRoutesDeps): Router {
  const router = Router();
  const viewer = requireRole(deps.verifier, 'viewer');
  const runs = new RunStore(deps.db, deps.paths);

  router.get('/runs', viewer, async (request, response) => {
    const { limit } = parseQuery(runListQuery, request);
    response.json({ runs: (await runs.listAll(limit)).map(runListItem) });
  });

  router.get('/runs/:id/details', viewer, async (request, response) => {
    const runId = runIdOf(request);
    const { failures } = parseQuery(runDetailsQuery, request);
    const run = await runs.find(runId);
    response.json(await runDetails(deps.db, deps.paths, run, failures));
  });

  router.get('/health/history', viewer, async (request, response) => {
    const { limit } = parseQuery(healthHistoryQuery, request);
    response.json(await healthHistory(deps.db, deps.paths, limit));
  });

  return router;
}

function runListItem(run: RunDocument) {
  const rollback = (run as { rollback?: { sourceRuns?: string[]; strategy?: string } }).rollback;
  return {
    ...runFacts(run),
    createdAt: iso(run.createdAt),
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
    ...(rollback ? { rollback: { sourceRuns: rollback.sourceRuns ?? [], strategy: rollback.strategy ?? null } } : {}),
  };
}

interface MarkerRow {
  partition: string;
  processed: number;
  failed: number;
  latencyMs: number | null;
  committedAt: number;
}

/** One run's partitions, throughput series, batch-latency percentiles and failure records. */
export async function runDetails(db: Firestore, paths: ControlPaths, run: RunDocument, failureLimit: number) {
  const [markerSnapshot, partitionSnapshot, failureSnapshot, failureCount] = await Promise.all([
    db
      .collection(paths.batches(run.migrationId, run.runId))
      .orderBy('committedAt', 'desc')
      .limit(DETAIL_MARKER_LIMIT)
      .select('partition', 'committedAt', 'latencyMs', 'migrated', 'skipped', 'alreadyMigrated', 'failed', 'restored', 'conflicts', 'forced', 'missingDocuments', 'missingBackups')
      .get(),
    db.collection(paths.partitions(run.migrationId, run.runId)).orderBy('index').get(),
    failureLimit > 0 ? db.collection(paths.failures(run.migrationId, run.runId)).orderBy('path').limit(failureLimit).get() : null,
    db.collection(paths.failures(run.migrationId, run.runId)).count().get(),
  ]);
  const markers: MarkerRow[] = markerSnapshot.docs.map((doc) => {
    const data = doc.data();
    // A rollback run's markers count restores instead of migrations.
    const processed =
      count(data.migrated) + count(data.skipped) + count(data.alreadyMigrated) + count(data.failed) +
      count(data.restored) + count(data.conflicts) + count(data.missingDocuments) + count(data.missingBackups);
    return {
      partition: typeof data.partition === 'string' ? data.partition : '-',
      processed,
      failed: count(data.failed),
      latencyMs: typeof data.latencyMs === 'number' ? data.latencyMs : null,
      committedAt: (data.committedAt as Timestamp | undefined)?.toMillis() ?? 0,
    };
  });

  const perPartition = new Map<string, { batches: number; processed: number; failed: number; lastCommitAt: number }>();
  for (const marker of markers) {
    const entry = perPartition.get(marker.partition) ?? { batches: 0, processed: 0, failed: 0, lastCommitAt: 0 };
    entry.batches++;
    entry.processed += marker.processed;
    entry.failed += marker.failed;
    entry.lastCommitAt = Math.max(entry.lastCommitAt, marker.committedAt);
    perPartition.set(marker.partition, entry);
  }
  const partitions = partitionSnapshot.docs.map((doc) => {
    const partition = doc.data() as PartitionDocument;
    const figures = perPartition.get(partition.partition);
    return {
      partition: partition.partition,
      index: partition.index,
      status: partition.status,
      startAt: partition.startAt,
      endBefore: partition.endBefore,
      epoch: partition.epoch,
      batches: figures?.batches ?? 0,
      processed: figures?.processed ?? 0,
      failed: figures?.failed ?? 0,
      lastCommitAt: figures ? new Date(figures.lastCommitAt).toISOString() : null,
    };
  });

  const latencies = markers.map((marker) => marker.latencyMs).filter((value): value is number => value !== null && value >= 0);
  return {
    run: { ...runFacts(run), createdAt: iso(run.createdAt), startedAt: iso(run.startedAt), finishedAt: iso(run.finishedAt) },
    markersRead: markers.length,
    markersTruncated: markers.length === DETAIL_MARKER_LIMIT,
    partitions,
    throughput: throughputSeries(markers),
    batchLatency: summarizeLatencies(latencies),
    failures: {
      total: failureCount.data().count,
      listed: (failureSnapshot?.docs ?? []).map((doc) => {
        const data = doc.data();
        return {
          path: String(data.path),
          errorClass: String(data.errorClass),
          severity: String(data.severity),
          message: String(data.message),
          attempts: count(data.attempts),
          partition: typeof data.partition === 'string' ? data.partition : null,
          failedAt: iso(data.failedAt as Timestamp | undefined),
        };
      }),
    },
  };
}

/**
 * Documents per second over time: the span from the first to the last commit cut into at most
 * THROUGHPUT_POINTS equal buckets (at least THROUGHPUT_MIN_BUCKET_MS each); each bucket's documents over its
 * width. The first marker's documents were handled before its commit, so the series starts at it.
 */
export function throughputSeries(markers: readonly Pick<MarkerRow, 'processed' | 'committedAt'>[]) {
  if (markers.length < 2) return { bucketSeconds: null, points: [] as Array<{ at: string; docsPerSecond: number }> };
  const sorted = [...markers].sort((a, b) => a.committedAt - b.committedAt);
  const start = sorted[0].committedAt;
  const span = sorted[sorted.length - 1].committedAt - start;
  const bucketMs = Math.max(THROUGHPUT_MIN_BUCKET_MS, Math.ceil(span / THROUGHPUT_POINTS));
  const buckets = Math.floor(span / bucketMs) + 1;
  const documents = new Array<number>(buckets).fill(0);
  for (const marker of sorted.slice(1)) documents[Math.min(buckets - 1, Math.floor((marker.committedAt - start) / bucketMs))] += marker.processed;
  return {
    bucketSeconds: bucketMs / 1000,
    points: documents.map((docs, index) => ({
      at: new Date(start + (index + 1) * bucketMs).toISOString(),
      docsPerSecond: Math.round((docs * 10_000) / bucketMs) / 10,
    })),
  };
}

interface SnapshotRow {
  id: string;
  status: string;
  score: number;
  checkedAt: Timestamp;
  checks?: HealthCheck[];
}

/**
 * The score timeline (oldest first), the open alerts (the monitor's alert state) and the alerts
 * resolved within the timeline: conditions a snapshot in it raised that are no longer open.
 */
export async function healthHistory(db: Firestore, paths: ControlPaths, limit: number) {
  const [snapshot, open] = await Promise.all([
    db.collection(paths.healthSnapshots()).orderBy('checkedAt', 'desc').limit(limit).select('id', 'status', 'score', 'checkedAt', 'checks').get(),
    new AlertStateStore(db, paths).open(),
  ]);
  const rows = snapshot.docs.map((doc) => ({ ...(doc.data() as SnapshotRow), id: doc.id }));
  const openKeys = new Set(open.map((entry) => entry.alert.key));
  const resolved = new Map<string, { alert: HealthAlert; firstSeenAt: Timestamp; lastSeenAt: Timestamp; lastSnapshotId: string }>();
  // Newest first: the first snapshot seen with an alert is its last sighting.
  for (const row of rows) {
    for (const alert of alertsOf(row.checks ?? [])) {
      if (openKeys.has(alert.key)) continue;
      const seen = resolved.get(alert.key);
      if (seen) seen.firstSeenAt = row.checkedAt;
      else resolved.set(alert.key, { alert, firstSeenAt: row.checkedAt, lastSeenAt: row.checkedAt, lastSnapshotId: row.id });
    }
  }
  const latest = rows[0];
  return {
    latest: latest ? { id: latest.id, status: latest.status.toLowerCase(), score: latest.score, checkedAt: iso(latest.checkedAt) } : null,
    timeline: rows
      .map((row) => ({ id: row.id, status: row.status.toLowerCase(), score: row.score, checkedAt: iso(row.checkedAt) }))
      .reverse(),
    openAlerts: open
      .map((entry) => ({ ...entry.alert, openedAt: iso(entry.openedAt), lastSeenAt: iso(entry.lastSeenAt) }))
      .sort((a, b) => (a.severity === b.severity ? a.key.localeCompare(b.key) : a.severity === 'critical' ? -1 : 1)),
    resolvedAlerts: [...resolved.values()].map((entry) => ({
      ...entry.alert,
      firstSeenAt: iso(entry.firstSeenAt),
      lastSeenAt: iso(entry.lastSeenAt),
      lastSnapshotId: entry.lastSnapshotId,
    })),
  };
}
