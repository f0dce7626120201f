/**
 * The deployed Cloud Functions: wiring only. Heavy modules load lazily (pipeline/services.ts) on
 * the first invocation; this file loads firebase-functions and the emulator guard only.
 *
 * Settings Cloud Functions fixes at deploy time come from firebase-functions params (set them in
 * `.env.<project>` or answer the deploy prompt): changing one means redeploying. Everything else
 * (MIGRATION_*, MONITOR_*, ROLLBACK_*) is read at run time by loadConfig.
 */
import { defineInt } from 'firebase-functions/params';
import { onRequest } from 'firebase-functions/v2/https';
import { onMessagePublished } from 'firebase-functions/v2/pubsub';
import { onSchedule } from 'firebase-functions/v2/scheduler';
import { onTaskDispatched } from 'firebase-functions/v2/tasks';
import { assertNoEmulatorOutsideEmulator } from './api/emulator-guard';
import { TOPICS } from './transports/names';

assertNoEmulatorOutsideEmulator();

/** Deliveries of a failing task, the first included (Cloud Tasks retryConfig.maxAttempts). Redeploy to change. */
const TASK_MAX_ATTEMPTS = defineInt('FIREMIGRATE_TASK_MAX_ATTEMPTS', { default: 10, description: 'Cloud Tasks deliveries of a failing task, the first included (change means redeploy)' });
const TASK_MIN_BACKOFF_SECONDS = defineInt('FIREMIGRATE_TASK_MIN_BACKOFF_SECONDS', { default: 10, description: 'Cloud Tasks wait before the first retry of a failed task, doubling up to the max (change means redeploy)' });
const TASK_MAX_BACKOFF_SECONDS = defineInt('FIREMIGRATE_TASK_MAX_BACKOFF_SECONDS', { default: 300, description: 'Cloud Tasks longest wait between retries of a failed task (change means redeploy)' });
/** The same name as the runtime variable (DESIGN.md: partitions in flight = maxConcurrentDispatches). */
const CONCURRENT_BATCHES = defineInt('MIGRATION_CONCURRENT_BATCHES', { default: 3, description: 'migrateBatch tasks in flight at once: the queue maxConcurrentDispatches (change means redeploy)' });
const TASK_DISPATCHES_PER_SECOND = defineInt('FIREMIGRATE_TASK_DISPATCHES_PER_SECOND', { default: 20, description: 'migrateBatch tasks started per second at most (change means redeploy)' });
/** Read when the health check runs (no redeploy needed: params are also environment variables at run time). */
const HEALTH_STALL_MINUTES = defineInt('FIREMIGRATE_HEALTH_STALL_MINUTES', { default: 5, description: 'a running partition with no committed batch for this many minutes is reported stalled' });

const taskRetries = { maxAttempts: TASK_MAX_ATTEMPTS, minBackoffSeconds: TASK_MIN_BACKOFF_SECONDS, maxBackoffSeconds: TASK_MAX_BACKOFF_SECONDS };

const lazy = () => import('./pipeline/services').then((module) => module.services());

/** The HTTP API (functions/src/api/app.ts): `/api/migration/...`. */
export const api = onRequest({ memory: '512MiB' }, async (request, response) => {
  (await lazy()).app(request, response);
});

/**
 * One batch of one partition per task. Concurrency 1: one instance's memory is one batch's, so
 * the memory thresholds (fractions of the instance's memory) mean what they say. The last batch
 * of a run also runs its final sweep, hence the long timeout.
 */
export const migrateBatch = onTaskDispatched(
  {
    concurrency: 1,
    memory: '1GiB',
    timeoutSeconds: 1800,
    retryConfig: taskRetries,
    rateLimits: { maxConcurrentDispatches: CONCURRENT_BATCHES, maxDispatchesPerSecond: TASK_DISPATCHES_PER_SECOND },
  },
  async (request) => {
    const { handleBatchTask } = await import('./pipeline/batch-task');
    await handleBatchTask((await lazy()).pipeline, request.data);
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
export const healthCheck = onSchedule({ schedule: 'every 1 minutes', memory: '512MiB' }, async () => {
  const { runHealthCheck } = await import('./monitor/health-run');
  const { pipeline, alerts } = await lazy();
  await runHealthCheck({ db: pipeline.db, paths: pipeline.paths, config: pipeline.config, alerts, stallAfterMs: HEALTH_STALL_MINUTES.value() * 60_000, log: pipeline.log });
});

/** Stops the runs a stored CRITICAL health snapshot names (the message is never trusted). */
export const onMigrationAlert = onMessagePublished({ topic: TOPICS.alerts, memory: '256MiB' }, async (event) => {
  const { handleMigrationAlert } = await import('./pipeline/alert-stop');
  const { pipeline } = await lazy();
  let json: unknown;
  try {
    json = event.data.message.json;
  } catch {
    json = null;
  }
  await handleMigrationAlert(pipeline, event.id, json);
});
