/**
 * Starts a rollback run on Cloud Tasks: the rollback run is created (holding the migration's
 * lease, with its audit event) by the rollback engine's `prepareRollbackRun`, then the first
 * `rollbackBatch` task is enqueued; each task enqueues the next (rollback-task.ts). The entry
 * points — the API, `onRollbackRequest`, `onMigrationAlert`'s auto-rollback — have checked who
 * asks and the confirmation before calling this.
 */
import { randomBytes } from 'node:crypto';
import { finishRollbackRun, prepareRollbackRun, RollbackRefusedError } from '../rollback/rollback-run';
import { listSourceRuns } from '../rollback/source-runs';
import { chooseStrategy } from '../rollback/strategy';
import type { RollbackStrategy } from '../rollback/types';
import type { EnqueueOutcome } from '../transports/task-queue';
import { rollbackContextOf, rollbackTaskId, type RollbackBatchTask, type RollbackPipelineContext } from './rollback-payload';

export interface RollbackDispatchRequest {
  migrationId: string;
  /** Only this migrate run; default: every executed run of the migration. */
  runId?: string;
  strategy?: RollbackStrategy;
  force: boolean;
  reason: string;
  user: string;
  identity: string;
}

export interface DispatchedRollback {
  runId: string;
  migrationId: string;
  strategy: RollbackStrategy;
  /** The migrate runs undone, newest first. */
  sourceRuns: string[];
  taskId: string;
  enqueue: EnqueueOutcome;
}

/** The first task could not be enqueued: the rollback run was marked failed (and the lease released). */
export class RollbackDispatchError extends Error {
  override readonly name = 'RollbackDispatchError';
  constructor(
    readonly runId: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A lease holder of this dispatch's own: the run id is made inside `prepareRollbackRun`, so the
 * holder cannot be named after it; every task of the run carries it (RollbackTask.holder).
 */
function newTaskHolder(): string {
  return `cloud-tasks/rollback/${randomBytes(6).toString('hex')}`;
}

/**
 * Refused (RollbackRefusedError) when the rollback would be a revert: `down()` is applied by the
 * local runner (`firemigrate rollback --execute`), which the task chain does not drive.
 */
export async function dispatchRollback(ctx: RollbackPipelineContext, request: RollbackDispatchRequest): Promise<DispatchedRollback> {
  const migration = ctx.registry.get(request.migrationId);
  const choice = chooseStrategy(migration, await listSourceRuns(ctx.db, ctx.paths, migration.id, request.runId), request.strategy);
  if (choice.chosen === 'revert') {
    throw new RollbackRefusedError(
      `Rolling back "${migration.id}" needs the revert strategy (${choice.reason}), which runs in one process only: ` +
        `firemigrate rollback ${request.runId ?? migration.id} --execute --strategy revert --reason <text> --user <name>`,
    );
  }
  const holder = newTaskHolder();
  const rctx = rollbackContextOf(ctx, holder);
  const prepared = await prepareRollbackRun(rctx, request);
  const first: RollbackBatchTask = {
    kind: 'batch',
    migrationId: prepared.migrationId,
    rollbackRunId: prepared.runId,
    sourceRunId: prepared.sourceRuns[0].runId,
    seq: 0,
    afterBackupId: null,
    epoch: prepared.resumes,
    holder,
  };
  const taskId = rollbackTaskId(first);
  let enqueue: EnqueueOutcome;
  try {
    enqueue = await ctx.rollbackQueue.enqueue({ name: taskId, payload: first });
  } catch (error) {
    const reason = `the first rollbackBatch task could not be enqueued: ${(error as Error).message}`;
    await finishRollbackRun(rctx, prepared.migrationId, prepared.runId, { status: 'failed', reason, caller: prepared.caller, error: error as Error });
    throw new RollbackDispatchError(prepared.runId, `rollback run ${prepared.runId}: ${reason}; the run was marked failed, try again`);
  }
  ctx.log.info(`rollback run ${prepared.runId} of "${prepared.migrationId}" dispatched to Cloud Tasks`, { runId: prepared.runId, taskId, enqueue });
  return {
    runId: prepared.runId,
    migrationId: prepared.migrationId,
    strategy: prepared.strategy,
    sourceRuns: prepared.sourceRuns.map((run) => run.runId),
    taskId,
    enqueue,
  };
}
