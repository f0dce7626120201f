import type { Firestore } from '@google-cloud/firestore';
import type { RequestHandler } from 'express';
import type { Logger } from '../cli/log';
import { MODE_DOCUMENT_PATH, type ControlPaths } from '../control/paths';
import type { HealthSnapshotReader, HealthStatus } from './health-snapshots';
import { readMigrationState } from './migration-state';

/** The migration mode as the rule functions read it: a missing document (or field) means 'normal'. */
interface ModeView {
  mode: string;
  collections: string[];
}

/** What the open health route tells about the migration: no run ids, migration ids or figures. */
interface MigrationSummary {
  inMigration: boolean;
  activeRuns: number;
  healthStatus: HealthStatus | 'unknown';
  healthCheckedAt: string | null;
}

export interface HealthRouteOptions {
  db: Firestore;
  paths: ControlPaths;
  health: HealthSnapshotReader;
  log: Logger;
  /** How long the route waits for each Firestore read (load balancers time out too). */
  timeoutMs: number;
  /** How long the migration summary is reused: probes come every few seconds from many probers. */
  stateTtlMs: number;
}

/**
 * `GET /api/migration/health`, for the load balancers in front of the APP: 200 whenever the app
 * can be served — Firestore answers and the mode document (the compatibility layer's switch,
 * read by the rules and the compatibility reader) can be read — whatever the migration's own
 * health, which is in the body. 503 only when that read fails or times out: a 503 takes healthy
 * app servers out of rotation, so a critical migration must never cause one. Open (no token):
 * the body says only whether a migration is in progress and its health verdict.
 */
export function healthRoute(options: HealthRouteOptions): RequestHandler {
  let cached: { at: number; summary: Promise<MigrationSummary> } | null = null;
  const summary = (): Promise<MigrationSummary> => {
    if (!cached || Date.now() - cached.at > options.stateTtlMs) {
      const entry = { at: Date.now(), summary: readSummary(options) };
      // A failed read is not reused: the next probe tries again.
      entry.summary.catch(() => {
        if (cached === entry) cached = null;
      });
      cached = entry;
    }
    return cached.summary;
  };

  return async (_request, response) => {
    const lastCheck = new Date().toISOString();
    response.set('Cache-Control', 'no-store');
    let mode: ModeView;
    try {
      mode = await withTimeout(readMode(options.db), options.timeoutMs, 'reading the mode document');
    } catch (error) {
      options.log.error('health: Firestore is unusable, answering 503', { error });
      response.status(503).json({ status: 'unavailable', lastCheck, compatibilityLayer: false, error: (error as Error).message });
      return;
    }
    let migration: MigrationSummary | null = null;
    let migrationError: string | undefined;
    try {
      migration = await withTimeout(summary(), options.timeoutMs, 'reading the migration state');
    } catch (error) {
      options.log.warning('health: the migration state could not be read; the app is still served', { error });
      migrationError = (error as Error).message;
    }
    response.status(200).json({
      status: mode.mode === 'maintenance' ? 'maintenance' : 'operational',
      lastCheck,
      compatibilityLayer: true,
      mode: mode.mode,
      modeCollections: mode.collections,
      migration,
      ...(migrationError ? { migrationError } : {}),
    });
  };
}

async function readMode(db: Firestore): Promise<ModeView> {
  const snapshot = await db.doc(MODE_DOCUMENT_PATH).get();
  const mode = snapshot.get('mode');
  const collections = snapshot.get('collections');
  return {
    mode: typeof mode === 'string' ? mode : 'normal',
    collections: Array.isArray(collections) ? collections.filter((name): name is string => typeof name === 'string') : [],
  };
}

async function readSummary(options: HealthRouteOptions): Promise<MigrationSummary> {
  const [state, health] = await Promise.all([readMigrationState(options.db, options.paths), options.health.latest()]);
  return {
    inMigration: state.inProgress.length > 0,
    activeRuns: state.inProgress.length,
    healthStatus: health?.status ?? 'unknown',
    healthCheckedAt: health?.checkedAt.toISOString() ?? null,
  };
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
