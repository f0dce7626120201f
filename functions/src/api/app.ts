import type { Firestore } from '@google-cloud/firestore';
import express, { type Express } from 'express';
import { createLogger, type Logger } from '../cli/log';
import type { FiremigrateConfig } from '../config';
import { ControlPaths } from '../control/paths';
import type { MigrationRegistry } from '../definitions/registry';
import type { RollbackPipelineContext } from '../pipeline/rollback-payload';
import type { PlanRunTask } from '../transports/task-payloads';
import type { TaskQueue } from '../transports/task-queue';
import type { IdTokenVerifier } from './auth';
import { dashboardPage } from './dashboard-page';
import { dashboardRoutes } from './dashboard-routes';
import { ApiError, errorHandler } from './errors';
import { healthRoute } from './health-route';
import { FirestoreHealthSnapshots, type HealthSnapshotReader } from './health-snapshots';
import { modeRoutes } from './mode-routes';
import { readRoutes } from './read-routes';
import { rollbackRoutes } from './rollback-routes';
import { RunRequests } from './run-requests';
import { runRoutes } from './run-routes';

export interface ApiDeps {
  db: Firestore;
  config: FiremigrateConfig;
  registry: MigrationRegistry;
  verifier: IdTokenVerifier;
  /** The `planRun` queue (QUEUES.planRun). */
  planQueue: TaskQueue<PlanRunTask>;
  /** The rollback engine and the `rollbackBatch` queue: `POST /runs/:id/rollback` exists only with it. */
  rollback?: RollbackPipelineContext;
  /** Default: the snapshots the health check stores in the control collection. */
  health?: HealthSnapshotReader;
  /** Default: JSON lines on stdout (Cloud Logging's structured format). */
  log?: Logger;
  /** How long the health route waits for a Firestore read before answering 503 (default 4000 ms). */
  healthTimeoutMs?: number;
  /** How long the health route reuses the migration summary it read (default 10000 ms). */
  healthStateTtlMs?: number;
  /** The built dashboard page (default: functions/lib/dashboard). */
  dashboardDir?: string;
}

/** Where the routes live. The function is named `api`, so behind a Hosting rewrite it sees the
 * full path and when called on its own URL (`…/api/migration/...`) only `/migration/...`. */
export const API_BASE_PATH = '/api/migration';
const FUNCTION_RELATIVE_BASE_PATH = '/migration';
/** The operator dashboard (api/dashboard-page.ts), beside the routes it reads: `…/api/dashboard/`. */
export const DASHBOARD_BASE_PATH = '/api/dashboard';
const FUNCTION_RELATIVE_DASHBOARD_PATH = '/dashboard';

/**
 * The HTTP API as an express app: `onRequest(app)` serves it, tests run it with supertest. See
 * the README's API reference for every route's request and response.
 */
export function createApiApp(deps: ApiDeps): Express {
  const log = deps.log ?? createLogger({ format: 'json', write: (line) => process.stdout.write(line), base: { component: 'api' } });
  const paths = new ControlPaths(deps.config.migration.controlCollection);
  const health = deps.health ?? new FirestoreHealthSnapshots(deps.db, paths);
  const requests = new RunRequests({ db: deps.db, paths, registry: deps.registry, config: deps.config, planQueue: deps.planQueue });

  const router = express.Router();
  router.get('/health', healthRoute({ db: deps.db, paths, health, log, timeoutMs: deps.healthTimeoutMs ?? 4000, stateTtlMs: deps.healthStateTtlMs ?? 10_000 }));
  router.use((_request, response, next) => {
    // Run state changes by the second: no proxy or browser may serve it from a cache.
    response.set('Cache-Control', 'no-store');
    next();
  });
  router.use(readRoutes({ db: deps.db, paths, registry: deps.registry, verifier: deps.verifier, health }));
  router.use(dashboardRoutes({ db: deps.db, paths, verifier: deps.verifier }));
  router.use(runRoutes({ registry: deps.registry, verifier: deps.verifier, requests, basePath: API_BASE_PATH }));
  router.use(modeRoutes({ db: deps.db, paths, registry: deps.registry, verifier: deps.verifier }));
  if (deps.rollback) router.use(rollbackRoutes({ verifier: deps.verifier, rollback: deps.rollback, basePath: API_BASE_PATH }));

  const app = express();
  app.disable('x-powered-by');
  app.use([API_BASE_PATH, FUNCTION_RELATIVE_BASE_PATH], router);
  app.use([DASHBOARD_BASE_PATH, FUNCTION_RELATIVE_DASHBOARD_PATH], dashboardPage({ dir: deps.dashboardDir }));
  app.use((request) => {
    throw new ApiError(404, 'not-found', `no route for ${request.method} ${request.path}`);
  });
  app.use(errorHandler(log));
  return app;
}
