/**
 * The deployed Cloud Functions: wiring only. Heavy modules load lazily (pipeline/services.ts) on
 * the first invocation; this file loads firebase-functions and the emulator guard only.
 *
 * Settings Cloud Functions fixes at deploy time come from firebase-functions params (set them in
 * `.env.<project>` at the repository root, the codebase's source, or answer the deploy prompt).
 * MIGRATION_*, MONITOR_*, ROLLBACK_* are read by loadConfig once per instance. A deployed function
 * has only the environment its deploy gave it, so changing any of them means redeploying.
 */
import { defineInt } from 'firebase-functions/params';
import { onDocumentWritten } from 'firebase-functions/v2/firestore';
import { onRequest } from 'firebase-functions/v2/https';
import { onMessagePublished } from 'firebase-functions/v2/pubsub';
import { onSchedule } from 'firebase-functions/v2/scheduler';
import { onTaskDispatched } from 'firebase-functions/v2/tasks';
import { assertNoEmulatorOutsideEmulator } from './api/emulator-guard';
import { HEALTH_SCHEDULE } from './monitor/schedule';
import { syncFunctionSpecs } from './compat/sync-collections';
import { projectMigrations } from './migrations';
import { TOPICS } from './transports/names';

assertNoEmulatorOutsideEmulator();

/** Deliveries of a failing task, the first included (Cloud Tasks retryConfig.maxAttempts). Redeploy to change. */
const TASK_MAX_ATTEMPTS = defineInt('FIREMIGRATE_TASK_MAX_ATTEMPTS', { default: 10, description: 'Cloud Tasks deliveries of a failing task, the first included (change means redeploy)' });
const TASK_MIN_BACKOFF_SECONDS = defineInt('FIREMIGRATE_TASK_MIN_BACKOFF_SECONDS', { default: 10, description: 'Cloud Tasks wait before the first retry of a failed task, doubling up to the max (change means redeploy)' });
const TASK_MAX_BACKOFF_SECONDS = defineInt('FIREMIGRATE_TASK_MAX_BACKOFF_SECONDS', { default: 300, description: 'Cloud Tasks longest wait between retries of a failed task (change means redeploy)' });
/** The same name as the runtime variable (DESIGN.md: partitions in flight = maxConcurrentDispatches). */
const CONCURRENT_BATCHES = defineInt('MIGRATION_CONCURRENT_BATCHES', { default: 3, description: 'migrateBatch tasks in flight at once: the queue maxConcurrentDispatches (change means redeploy)' });
const TASK_DISPATCHES_PER_SECOND = defineInt('FIREMIGRATE_TASK_DISPATCHES_PER_SECOND', { default: 20, description: 'migrateBatch tasks started per second at most (change means redeploy)' });
/** Read when a migrateBatch task starts (its value still comes from the deploy). The rest of the timeout is left for the run's final sweep. */
const TASK_TIME_BUDGET_PERCENT = defineInt('FIREMIGRATE_TASK_TIME_BUDGET_PERCENT', {
  default: 33,
  description: "share (%) of migrateBatch's timeout a task spends taking its partition's next batches before handing over to a new task (0: one batch per task)",
});
/** migrateBatch's timeout: the time budget is a share of it. */
const MIGRATE_BATCH_TIMEOUT_SECONDS = 1800;
/** Read when the health check runs; like every param, its value comes from the deploy. */
const HEALTH_STALL_MINUTES = defineInt('FIREMIGRATE_HEALTH_STALL_MINUTES', { default: 5, description: 'a running partition with no committed batch for this many minutes is reported stalled' });

const taskRetries = { maxAttempts: TASK_MAX_ATTEMPTS, minBackoffSeconds: TASK_MIN_BACKOFF_SECONDS, maxBackoffSeconds: TASK_MAX_BACKOFF_SECONDS };

const lazy = () => import('./pipeline/services').then((module) => module.services());

/** The HTTP API (functions/src/api/app.ts): `/api/migration/...`. */
export const api = onRequest({ memory: '512MiB' }, async (request, response) => {
  (await lazy()).app(request, response);
});

/**
 * Batches of one partition per task, within a time budget. Concurrency 1: one instance's memory
 * is one batch's, so the memory thresholds (fractions of the instance's memory) mean what they
 * say. The last batch of a run also runs its final sweep, hence the long timeout.
 */
export const migrateBatch = onTaskDispatched(
  {
    concurrency: 1,
    memory: '1GiB',
    timeoutSeconds: MIGRATE_BATCH_TIMEOUT_SECONDS,
    retryConfig: taskRetries,
    rateLimits: { maxConcurrentDispatches: CONCURRENT_BATCHES, maxDispatchesPerSecond: TASK_DISPATCHES_PER_SECOND },
  },
  async (request) => {
    const { handleBatchTask } = await import('./pipeline/batch-task');
    const timeMs = (MIGRATE_BATCH_TIMEOUT_SECONDS * 1000 * TASK_TIME_BUDGET_PERCENT.value()) / 100;
    await handleBatchTask((await lazy()).pipeline, request.data, { timeMs });
  },
);

/** Plans a run (or re-dispatches a resumed one): the queue name is QUEUES.planRun. */
export const planRun = onTaskDispatched(
  { concurrency: 1, memory: '1GiB', timeoutSeconds: 1800, retryConfig: taskRetries, rateLimits: { maxConcurrentDispatches: 5 } },
  async (request) => {
    const { handlePlanTask } = await import('./pipeline/plan-task');
    await handlePlanTask((await lazy()).pipeline, request.data);
  },
);

/** Cloud Scheduler runs at most once a minute; MONITOR_HEALTH_INTERVAL below that applies to the local runner only. */
let healthOutlets: Promise<import('./monitor/outlets').HealthOutlets> | undefined;
export const healthCheck = onSchedule({ schedule: HEALTH_SCHEDULE, memory: '512MiB' }, async () => {
  const { runHealthCheck } = await import('./monitor/health-run');
  const { pipeline, alerts } = await lazy();
  // Built once per instance: the Admin API and Cloud Monitoring clients keep their connections.
  healthOutlets ??= import('./monitor/outlets')
    .then(({ healthOutlets: outlets }) =>
      outlets({ db: pipeline.db, projectId: process.env.GCLOUD_PROJECT || process.env.GOOGLE_CLOUD_PROJECT || '', emulator: pipeline.config.emulator.anyEmulator }),
    )
    .catch((error: unknown) => {
      healthOutlets = undefined;
      throw error;
    });
  await runHealthCheck({ db: pipeline.db, paths: pipeline.paths, config: pipeline.config, registry: pipeline.registry, alerts, stallAfterMs: HEALTH_STALL_MINUTES.value() * 60_000, log: pipeline.log, ...(await healthOutlets) });
});

/** Stops the runs a stored CRITICAL health snapshot names (the message is never trusted). */
export const onMigrationAlert = onMessagePublished({ topic: TOPICS.alerts, memory: '256MiB' }, async (event) => {
  const { handleMigrationAlert } = await import('./pipeline/alert-stop');
  const { pipeline, rollback } = await lazy();
  let json: unknown;
  try {
    json = event.data.message.json;
  } catch {
    json = null;
  }
  await handleMigrationAlert({ ...pipeline, rollbackQueue: rollback.rollbackQueue }, event.id, json);
});

/**
 * One batch of a rollback run per task (pipeline/rollback-task.ts); each enqueues the next, the
 * last one finishes the rollback (validation included, hence the long timeout). Concurrency 1 and
 * one dispatch at a time: a rollback is one chain of batches, newest source run first.
 */
export const rollbackBatch = onTaskDispatched(
  { concurrency: 1, memory: '1GiB', timeoutSeconds: 1800, retryConfig: taskRetries, rateLimits: { maxConcurrentDispatches: 1 } },
  async (request) => {
    const { handleRollbackTask } = await import('./pipeline/rollback-task');
    await handleRollbackTask((await lazy()).rollback, request.data);
  },
);

/** Rollback requests from operators (Cloud console): acted on only with an admin ID token and `confirm: true`. */
export const onRollbackRequest = onMessagePublished({ topic: TOPICS.rollback, memory: '512MiB' }, async (event) => {
  const { handleRollbackRequest } = await import('./pipeline/rollback-request');
  const { rollback, verifier } = await lazy();
  let json: unknown;
  try {
    json = event.data.message.json;
  } catch {
    json = null;
  }
  await handleRollbackRequest({ ...rollback, verifier }, event.id, json);
});

/**
 * The dual-read sync trigger (compat/sync-trigger.ts), one function per collection the migrations
 * target, deployed as `sync-<collection>`: writes nothing unless the mode is dual-read for it.
 * The collection list is read from the migrations at load time, hence their import above.
 */
export const sync = Object.fromEntries(
  syncFunctionSpecs(projectMigrations).map(({ name, document }) => [
    name,
    onDocumentWritten({ document, memory: '512MiB' }, async (event) => {
      const { handleSyncWrite } = await import('./compat/sync-trigger');
      const { pipeline } = await lazy();
      await handleSyncWrite(pipeline, { id: event.id, document: event.document, before: event.data?.before, after: event.data?.after });
    }),
  ]),
);
