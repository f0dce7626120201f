/**
 * The `rollbackBatch` queue's payloads and task ids, and the context its handler, the rollback
 * dispatch and the rollback entry points share.
 */
import { z } from 'zod';
import type { RollbackContext } from '../rollback/types';
import { taskId } from '../transports/task-id';
import type { TaskQueue } from '../transports/task-queue';
import type { PipelineContext } from './context';

const ID = /^[A-Za-z0-9_-]+$/;

/**
 * `batch`: batch `seq` of source run `sourceRunId` in the rollback run, after backup
 * `afterBackupId` (null: from the start). `epoch` is the rollback run's `resumes` when the chain
 * was dispatched: a delivery from an older epoch is stale. `holder` is the lease holder the
 * dispatch took the migration with (rollback-dispatch.ts): every task of the run renews and
 * finally releases it.
 */
const batchTaskSchema = z.strictObject({
  kind: z.literal('batch'),
  migrationId: z.string().min(1),
  rollbackRunId: z.string().regex(ID),
  sourceRunId: z.string().regex(ID),
  seq: z.number().int().min(0),
  afterBackupId: z.string().regex(ID).nullable(),
  epoch: z.number().int().min(0),
  holder: z.string().min(1).max(200),
});

/**
 * `start`: the auto-rollback of run `sourceRunId`, which `onMigrationAlert` emergency-stopped
 * (its policy is `auto`). The stopped run's lease lives on until it lapses (its holder is gone),
 * so the task retries (Cloud Tasks backoff) while the migration is still held; `epoch` is the
 * stopped run's `resumes`.
 */
const startTaskSchema = z.strictObject({
  kind: z.literal('start'),
  migrationId: z.string().min(1),
  sourceRunId: z.string().regex(ID),
  epoch: z.number().int().min(0),
  reason: z.string().min(1).max(2000),
});

export const rollbackTaskSchema = z.discriminatedUnion('kind', [batchTaskSchema, startTaskSchema]);

export type RollbackTask = z.infer<typeof rollbackTaskSchema>;
export type RollbackBatchTask = z.infer<typeof batchTaskSchema>;
export type RollbackStartTask = z.infer<typeof startTaskSchema>;

/** What the rollback task handler, its dispatch and the rollback entry points work with. */
export interface RollbackPipelineContext extends Pick<PipelineContext, 'db' | 'wire' | 'config' | 'paths' | 'registry' | 'lease' | 'log'> {
  /** The `rollbackBatch` queue (QUEUES.rollbackBatch). */
  rollbackQueue: TaskQueue<RollbackTask>;
}

/**
 * Task ids: a batch's is a hash of (rollback run, source run, seq, epoch) — the same hashing as
 * `migrateBatch` ids, with the source run in the partition's place; an auto-rollback start's is
 * a hash of (stopped run, 'auto-rollback', 0, its epoch): one start per stop.
 */
export function rollbackTaskId(task: RollbackTask): string {
  if (task.kind === 'start') return taskId(task.sourceRunId, 'auto-rollback', 0, task.epoch);
  return taskId(task.rollbackRunId, task.sourceRunId, task.seq, task.epoch);
}

export function rollbackContextOf(ctx: RollbackPipelineContext, holder: string): RollbackContext {
  return { db: ctx.db, wire: ctx.wire, config: ctx.config, paths: ctx.paths, registry: ctx.registry, lease: ctx.lease, holder, log: ctx.log };
}
