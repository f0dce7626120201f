import type { Firestore, Timestamp } from '@google-cloud/firestore';
import { Router } from 'express';
import type { ControlPaths } from '../control/paths';
import { RegistryStore, type RegistryEntry } from '../control/registry-store';
import { RunStore } from '../control/runs';
import type { MigrationRegistry } from '../definitions/registry';
import type { Migration } from '../definitions/types';
import { requireRole, type IdTokenVerifier } from './auth';
import { ApiError } from './errors';
import type { HealthSnapshotReader } from './health-snapshots';
import { modeView, readMode } from './mode-routes';
import { dataVersion, percentOf, readMigrationState, runFigures, type RunProgress } from './migration-state';
import { runView, type RunView } from './run-views';
import { RUN_ID } from './schemas';

export interface ReadRoutesDeps {
  db: Firestore;
  paths: ControlPaths;
  registry: MigrationRegistry;
  verifier: IdTokenVerifier;
  health: HealthSnapshotReader;
}

const iso = (time: Timestamp | null): string | null => (time ? time.toDate().toISOString() : null);

/** The viewer routes: status, migrations, one run. */
export function readRoutes(deps: ReadRoutesDeps): Router {
  const router = Router();
  const viewer = requireRole(deps.verifier, 'viewer');
  const runs = new RunStore(deps.db, deps.paths);

  router.get('/status', viewer, async (_request, response) => {
    const now = new Date();
    const [state, health, mode] = await Promise.all([readMigrationState(deps.db, deps.paths), deps.health.latest(), readMode(deps.db)]);
    const views = await Promise.all(
      state.inProgress.map(async ({ run, entry }) => ({ version: entry.version, ...runView(run, await runFigures(deps.db, deps.paths, run, now), now) })),
    );
    response.json({
      inMigration: views.length > 0,
      version: dataVersion(state),
      healthStatus: health?.status ?? 'unknown',
      estimatedCompletion: overallCompletion(views),
      progress: overallProgress(views),
      health: health ? { status: health.status, score: health.score, checkedAt: health.checkedAt.toISOString() } : null,
      runs: views,
      mode: modeView(mode),
      checkedAt: now.toISOString(),
    });
  });

  router.get('/migrations', viewer, async (_request, response) => {
    const entries = new Map((await new RegistryStore(deps.db, deps.paths).list()).map((entry) => [entry.id, entry]));
    const now = Date.now();
    const deployed = deps.registry.all().map((migration) => migrationView(migration, entries.get(migration.id), now));
    const undeployed = [...entries.values()]
      .filter((entry) => !deps.registry.has(entry.id))
      .map((entry) => ({ id: entry.id, version: entry.version, description: null, target: null, checksum: null, deployed: false, registry: registryView(entry, now) }));
    response.json({ migrations: [...deployed, ...undeployed] });
  });

  router.get('/runs/:id', viewer, async (request, response) => {
    const runId = String(request.params.id);
    if (!RUN_ID.test(runId)) throw new ApiError(404, 'not-found', `"${runId}" is not a run id`, { runId });
    const run = await runs.find(runId);
    const now = new Date();
    response.json(runView(run, await runFigures(deps.db, deps.paths, run, now), now));
  });

  return router;
}

/** The latest completion of the running runs; null when none runs or one's estimate is unknown. */
function overallCompletion(views: readonly RunView[]): string | null {
  const running = views.filter((view) => view.status === 'running');
  if (running.length === 0 || running.some((view) => view.estimatedCompletion === null)) return null;
  return running.map((view) => view.estimatedCompletion!).sort().pop()!;
}

/** The runs' progress summed (total: null if one run's total is unknown); null when no run is in progress. */
function overallProgress(views: readonly RunView[]) {
  if (views.length === 0) return null;
  const sum = (pick: (progress: RunProgress) => number) => views.reduce((total, view) => total + pick(view.progress), 0);
  const totals = views.map((view) => view.progress.total);
  const total = totals.includes(null) ? null : (totals as number[]).reduce((a, b) => a + b, 0);
  const processed = sum((p) => p.processed);
  return {
    processed,
    total,
    percent: percentOf(processed, total),
    migrated: sum((p) => p.migrated),
    skipped: sum((p) => p.skipped),
    alreadyMigrated: sum((p) => p.alreadyMigrated),
    failed: sum((p) => p.failed),
    batches: sum((p) => p.batches),
  };
}

function migrationView(migration: Migration, entry: RegistryEntry | undefined, now: number) {
  return {
    id: migration.id,
    version: migration.version,
    description: migration.description,
    target: 'collection' in migration.target ? { collection: migration.target.collection } : { collectionGroup: migration.target.collectionGroup },
    checksum: migration.checksum,
    deployed: true,
    registry: entry ? { ...registryView(entry, now), checksumMatches: entry.checksum === migration.checksum } : null,
  };
}

function registryView(entry: RegistryEntry, now: number) {
  return {
    status: entry.status,
    checksum: entry.checksum,
    lastRunId: entry.lastRunId,
    appliedAt: iso(entry.appliedAt),
    appliedBy: entry.appliedBy,
    activeRunId: entry.activeRunId,
    lease: entry.lease ? { holder: entry.lease.holder, expiresAt: iso(entry.lease.expiresAt), live: entry.lease.expiresAt.toMillis() > now } : null,
    updatedAt: iso(entry.updatedAt),
  };
}
