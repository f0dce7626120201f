/**
 * The `migrateBatch` task handler: one batch of one partition per task, then the partition's
 * next batch as a new task (DESIGN.md "The pipeline"). Correctness lives in Firestore, never in
 * the queue: the batch core's commit creates the batch marker with create(), so however often a
 * task is delivered its effect lands once, and a delivery that finds its marker already there
 * (a duplicate, or a retry after a crash between commit and enqueue) commits nothing and only
 * enqueues the successor — whose task id the queue may already hold ('already-exists' is success).
 *
 * Reading: a single task reads just its own page of keys (keyset paging after the previous
 * batch's last key) and the batch core reads the documents fresh. Keys a full commit deferred lie
 * right after its marker's `lastKey`, so the next page starts with them.
 */
import { Timestamp } from '@google-cloud/firestore';
import { LeaseLostError } from '../control/lease';
import { markerId, type PartitionDocument } from '../control/partitions';
import type { RunDocument } from '../control/runs';
import type { Migration } from '../definitions/types';
import { migrateBatch } from '../engine/batch-core';
import { documentsPerCommit } from '../engine/batch-size';
import { partitionKeyQuery } from '../engine/runner';
import { taskId } from '../transports/task-id';
import { batchTaskSchema, parseTaskPayload, type BatchTask } from './batch-payload';
import { PipelineStores, pipelineHolder, type PipelineContext } from './context';
import { finalizeRunIfDone } from './finalize';

export type BatchTaskOutcome =
  /** Dropped: the payload, the migration or the run is not what a task of this run names. */
  | 'malformed'
  | 'unknown-migration'
  | 'run-not-found'
  | 'definition-changed'
  /** The run is paused, stopped, aborted, completed…: nothing more is dispatched. */
  | 'run-not-running'
  /** The partition was resumed since this task was enqueued (a newer epoch), or already exhausted. */
  | 'stale'
  | 'lease-lost'
  /** The batch was committed before: only the successor was enqueued. */
  | 'duplicate'
  | 'committed'
  /** The partition has no keys left: it is exhausted (and the run finalised if it was the last). */
  | 'exhausted';

export async function handleBatchTask(ctx: PipelineContext, payload: unknown): Promise<BatchTaskOutcome> {
  const parsed = parseTaskPayload(batchTaskSchema, payload);
  if (!parsed.task) {
    ctx.log.error(`migrateBatch: dropping a malformed task: ${parsed.problems}`, { payload });
    return 'malformed';
  }
  const task = parsed.task;
  const fields = { runId: task.runId, migrationId: task.migrationId, partition: task.partition, seq: task.seq, epoch: task.epoch };
  if (!ctx.registry.has(task.migrationId)) {
    ctx.log.error(`migrateBatch: migration "${task.migrationId}" is not deployed with these functions; task dropped`, fields);
    return 'unknown-migration';
  }
  const migration = ctx.registry.get(task.migrationId);
  const stores = new PipelineStores(ctx);

  const [runSnapshot, partitionSnapshot] = await Promise.all([
    stores.runs.ref(migration.id, task.runId).get(),
    stores.partitions.ref(migration.id, task.runId, task.partition).get(),
  ]);
  const run = runSnapshot.data() as RunDocument | undefined;
  if (!run) {
    ctx.log.error(`migrateBatch: run ${task.runId} does not exist; task dropped`, fields);
    return 'run-not-found';
  }
  if (run.status !== 'running') {
    ctx.log.info(`migrateBatch: run ${task.runId} is ${run.status}; nothing dispatched`, fields);
    return 'run-not-running';
  }
  if (run.checksum !== migration.checksum) {
    ctx.log.error(
      `migrateBatch: run ${task.runId} executes definition ${run.checksum}, but the deployed "${migration.id}" has ${migration.checksum}; ` +
        'task dropped (a run finishes with the definition it started with: deploy that one, or abort the run)',
      fields,
    );
    return 'definition-changed';
  }
  const partition = partitionSnapshot.data() as PartitionDocument | undefined;
  if (!partition) throw new Error(`run ${task.runId} has no partition ${task.partition} (no document at ${partitionSnapshot.ref.path})`);
  if (partition.epoch !== task.epoch || task.seq < partition.resumeFromSeq) {
    ctx.log.info(`migrateBatch: stale task (partition epoch ${partition.epoch}, first seq ${partition.resumeFromSeq}); nothing dispatched`, fields);
    return 'stale';
  }
  if (!(await renewLeaseIfDue(ctx, stores, run))) return 'lease-lost';
  if (partition.status === 'exhausted') {
    await finalizeRunIfDone(ctx, migration, task.runId);
    return 'stale';
  }

  const batches = ctx.db.collection(ctx.paths.batches(migration.id, task.runId));
  if ((await batches.doc(markerId(task.partition, task.seq)).get()).exists) {
    await enqueueSuccessor(ctx, task);
    ctx.log.info(`migrateBatch: batch ${task.partition}-${task.seq} was committed before; successor enqueued`, fields);
    return 'duplicate';
  }

  const perBatch = documentsPerCommit(ctx.config.migration);
  const keys = await pageKeys(ctx, migration, partition, task, perBatch);
  if (keys.length === 0) return exhaust(ctx, stores, migration, task);
  const result = await migrateBatch({ db: ctx.db, wire: ctx.wire, migration, config: ctx.config, paths: ctx.paths, runId: task.runId }, {
    partition: task.partition,
    seq: task.seq,
    keys,
  });
  ctx.log.info(`migrateBatch: batch ${task.partition}-${task.seq} ${result.status}`, {
    ...fields,
    migrated: result.migrated,
    skipped: result.skipped,
    alreadyMigrated: result.alreadyMigrated,
    failed: result.failed,
    deferred: result.deferredKeys.length,
    latencyMs: result.latencyMs,
  });
  // A short page ends the range; keys a full commit deferred still need the next batch.
  if (keys.length < perBatch && result.deferredKeys.length === 0) return exhaust(ctx, stores, migration, task);
  await enqueueSuccessor(ctx, task);
  return result.status === 'committed' ? 'committed' : 'duplicate';
}

/**
 * The keys of this batch: the partition's next page after the previous batch's last key — for
 * the first seq of the epoch, after the partition's cursor (or from its start).
 */
async function pageKeys(ctx: PipelineContext, migration: Migration, partition: PartitionDocument, task: BatchTask, limit: number): Promise<string[]> {
  let cursor = partition.cursor;
  if (task.seq > partition.resumeFromSeq) {
    const previous = await ctx.db.collection(ctx.paths.batches(migration.id, task.runId)).doc(markerId(task.partition, task.seq - 1)).get();
    // Seq n is enqueued only after seq n−1 committed; a missing marker is an inconsistency worth a retry.
    if (!previous.exists) throw new Error(`batch ${task.partition}-${task.seq} of run ${task.runId}: the marker of seq ${task.seq - 1} does not exist`);
    cursor = previous.get('lastKey') as string;
  }
  const snapshot = await partitionKeyQuery(ctx.db, migration, { startAt: partition.startAt, endBefore: partition.endBefore, cursor }).limit(limit).get();
  return snapshot.docs.map((doc) => doc.ref.path);
}

export async function enqueueSuccessor(ctx: PipelineContext, task: BatchTask): Promise<void> {
  const next: BatchTask = { ...task, seq: task.seq + 1 };
  await ctx.batchQueue.enqueue({ name: taskId(next.runId, next.partition, next.seq, next.epoch), payload: next });
}

/** Marks the partition exhausted (only in the epoch this task belongs to), then finalises the run if it was the last. */
async function exhaust(ctx: PipelineContext, stores: PipelineStores, migration: Migration, task: BatchTask): Promise<BatchTaskOutcome> {
  const ref = stores.partitions.ref(migration.id, task.runId, task.partition);
  const marked = await ctx.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as PartitionDocument | undefined;
    if (!current || current.epoch !== task.epoch) return false;
    if (current.status !== 'exhausted') tx.update(ref, { status: 'exhausted', nextSeq: Math.max(current.nextSeq, task.seq + 1), updatedAt: Timestamp.now() });
    return true;
  });
  if (!marked) return 'stale';
  ctx.log.info(`migrateBatch: partition ${task.partition} exhausted at seq ${task.seq}`, { runId: task.runId, partition: task.partition, seq: task.seq });
  const finalized = await finalizeRunIfDone(ctx, migration, task.runId);
  if (finalized !== 'not-ready' && finalized !== 'claimed-elsewhere') ctx.log.info(`run ${task.runId} finalised: ${finalized}`, { runId: task.runId, outcome: finalized });
  return 'exhausted';
}

/**
 * Renews the run's lease when a third of its TTL has passed since the last renewal: the tasks
 * are the run's only sign of life. False when another holder has the migration now.
 */
async function renewLeaseIfDue(ctx: PipelineContext, stores: PipelineStores, run: RunDocument): Promise<boolean> {
  const holder = pipelineHolder(run.runId);
  const remaining = run.lease ? run.lease.expiresAt.toMillis() - Date.now() : 0;
  if (run.lease?.holder === holder && remaining > ctx.lease.ttlMs - ctx.lease.renewEveryMs) return true;
  try {
    await stores.leases.renew(run.migrationId, run.runId, holder);
    return true;
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    ctx.log.error(`migrateBatch: ${error.message}`, { runId: run.runId });
    return false;
  }
}
