/**
 * The `migrateBatch` task handler: batches of one partition, then the partition's next batch as a
 * new task (DESIGN.md "The pipeline"). A task keeps migrating its partition's next batches while
 * its time budget (a share of the function's timeout) and the instance's memory allow and the
 * run is still running, then hands over to a task for the next seq; every batch is its own
 * commit with its own marker. Correctness lives in Firestore, never in the queue: the batch
 * core's commit creates the batch marker with create(), so however often a task is delivered its
 * effect lands once, and a delivery that finds its first marker already there (a duplicate, or a
 * retry after a crash between commit and enqueue) commits nothing and only enqueues the task of
 * the partition's first uncommitted seq — which the queue may already hold ('already-exists' is
 * success).
 *
 * Reading: the task streams its partition's keys from its starting point (after the previous
 * batch's last key, or the partition's cursor) with backpressure, and the batch core reads each
 * batch's documents fresh. Keys a full commit deferred lie right after its marker's `lastKey`:
 * they go first into the next batch, or the next task starts with them.
 *
 * After each commit the run's circuit breaker is read (task-breaker.ts); a trip stops the run.
 */
import { FieldPath, Timestamp, type Query } from '@google-cloud/firestore';
import { LeaseLostError } from '../control/lease';
import { markerId, type PartitionDocument } from '../control/partitions';
import type { RunDocument } from '../control/runs';
import type { Migration } from '../definitions/types';
import { migrateBatch } from '../engine/batch-core';
import { documentsPerCommit } from '../engine/batch-size';
import { streamKeys } from '../engine/key-reader';
import { memoryThresholdMb, rssMb } from '../engine/memory';
import { targetQuery } from '../engine/planner';
import { taskId } from '../transports/task-id';
import { batchTaskSchema, parseTaskPayload, type BatchTask } from './batch-payload';
import { PipelineStores, pipelineHolder, type PipelineContext } from './context';
import { finalizeRunIfDone } from './finalize';
import { emergencyStop, readTaskBreaker } from './task-breaker';

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
  /** The task's first batch was committed before: nothing committed, the first uncommitted seq enqueued. */
  | 'duplicate'
  /** Batches committed; the partition's next seq is enqueued (or the run stopped meanwhile: nothing more dispatched). */
  | 'committed'
  /** The circuit breaker tripped after a commit of this task: the run is emergency-stopped. */
  | 'emergency-stopped'
  /** The partition has no keys left: it is exhausted (and the run finalised if it was the last). */
  | 'exhausted';

/** How long one task keeps taking its partition's next batches. */
export interface TaskBudget {
  /** Milliseconds from the task's start after which it takes no further batch (0: one batch per task). */
  timeMs: number;
  /** The clock (default Date.now). */
  now?: () => number;
}

export async function handleBatchTask(ctx: PipelineContext, payload: unknown, budget: TaskBudget): Promise<BatchTaskOutcome> {
  const now = budget.now ?? Date.now;
  const started = now();
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
  const claimant = taskName(task);

  const [runSnapshot, partitionSnapshot] = await Promise.all([
    stores.runs.ref(migration.id, task.runId).get(),
    stores.partitions.ref(migration.id, task.runId, task.partition).get(),
  ]);
  let run = runSnapshot.data() as RunDocument | undefined;
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
    // Unlike a duplicate, no successor is enqueued: the resume that bumped the epoch enqueued the new epoch's chain, and an old-epoch successor would only start a dead one.
    return 'stale';
  }
  if (!(await renewLeaseIfDue(ctx, stores, run))) return 'lease-lost';
  if (partition.status === 'exhausted') {
    await finalizeRunIfDone(ctx, migration, task.runId, claimant);
    return 'stale';
  }

  const batches = ctx.db.collection(ctx.paths.batches(migration.id, task.runId));
  if ((await batches.doc(markerId(task.partition, task.seq)).get()).exists) {
    const next = await firstUncommittedSeq(stores, migration, task);
    await enqueueAt(ctx, task, next);
    ctx.log.info(`migrateBatch: batch ${task.partition}-${task.seq} was committed before; seq ${next} enqueued`, fields);
    return 'duplicate';
  }

  const perBatch = documentsPerCommit(ctx.config.migration);
  const memoryLimitMb = memoryThresholdMb(ctx.config);
  const keys = new PartitionKeys(ctx, migration, partition, await startCursor(ctx, task, partition));
  let seq = task.seq;
  let pending: string[] = [];
  let streamEnded = false;
  try {
    for (;;) {
      if (!streamEnded && pending.length < perBatch) {
        const more = await keys.take(perBatch - pending.length);
        pending = [...pending, ...more.keys];
        streamEnded = more.ended;
      }
      if (pending.length === 0) return exhaust(ctx, stores, migration, { ...task, seq }, claimant);
      const result = await migrateBatch({ db: ctx.db, wire: ctx.wire, migration, config: ctx.config, paths: ctx.paths, runId: task.runId }, {
        partition: task.partition,
        seq,
        keys: pending,
      });
      ctx.log.info(`migrateBatch: batch ${task.partition}-${seq} ${result.status}`, {
        ...fields,
        seq,
        migrated: result.migrated,
        skipped: result.skipped,
        alreadyMigrated: result.alreadyMigrated,
        failed: result.failed,
        deferred: result.deferredKeys.length,
        latencyMs: result.latencyMs,
      });
      pending = result.deferredKeys;
      if (result.status === 'duplicate') {
        // Another delivery committed this seq meanwhile. Past this task's first batch, that is a
        // live task of the partition (a retry of it heals its crash): it carries on alone. At the
        // first batch, this may be the only delivery left of its task: the partition's first
        // uncommitted seq is enqueued, as for a duplicate found before reading.
        if (seq > task.seq) return 'committed';
        await enqueueAt(ctx, task, await firstUncommittedSeq(stores, migration, task));
        return 'duplicate';
      }
      const trip = await readTaskBreaker(ctx, run);
      if (trip) {
        await emergencyStop(ctx, stores, run, trip);
        return 'emergency-stopped';
      }
      if (streamEnded && pending.length === 0) return exhaust(ctx, stores, migration, { ...task, seq }, claimant);
      seq++;
      if (now() - started >= budget.timeMs || rssMb() >= memoryLimitMb) break;
      run = (await stores.runs.ref(migration.id, task.runId).get()).data() as RunDocument;
      // Paused, stopped or aborted meanwhile: nothing more is dispatched (a resume re-dispatches).
      if (run.status !== 'running') return 'committed';
      if (!(await renewLeaseIfDue(ctx, stores, run))) return 'lease-lost';
    }
  } finally {
    await keys.close();
  }
  await enqueueAt(ctx, task, seq);
  ctx.log.info(`migrateBatch: ${task.partition} batches ${task.seq}–${seq - 1} done in this task; seq ${seq} enqueued`, { ...fields, batches: seq - task.seq });
  return 'committed';
}

/**
 * The partition's keys from the task's starting point. The first batch reads one page (limit:
 * a batch), so a task that takes one batch costs one page (O(page) in production); only a task
 * that goes on streams the rest of its range from there, with backpressure — page queries cost
 * O(collection size) on the emulator (DESIGN.md), so paging batch after batch would be quadratic.
 */
class PartitionKeys {
  private stream: AsyncGenerator<string, void, undefined> | null = null;
  private lastKey: string | null;
  private pageRead = false;

  constructor(
    private readonly ctx: PipelineContext,
    private readonly migration: Migration,
    private readonly partition: PartitionDocument,
    cursor: string | null,
  ) {
    this.lastKey = cursor;
  }

  /** Up to `count` further keys; `ended` when the range has none left after them. */
  async take(count: number): Promise<{ keys: string[]; ended: boolean }> {
    const { ctx, migration, partition } = this;
    const query = partitionKeyQuery(ctx, migration, partition, this.lastKey);
    if (!this.pageRead) {
      this.pageRead = true;
      const keys = (await query.limit(count).get()).docs.map((doc) => doc.ref.path);
      this.lastKey = keys.at(-1) ?? this.lastKey;
      return { keys, ended: keys.length < count };
    }
    this.stream ??= streamKeys(ctx.db, ctx.wire, query, { maxRetries: ctx.config.migration.maxRetries, retryDelayMs: ctx.config.migration.retryDelayMs });
    const keys: string[] = [];
    while (keys.length < count) {
      const next = await this.stream.next();
      if (next.done) return { keys, ended: true };
      keys.push(next.value);
    }
    this.lastKey = keys.at(-1) ?? this.lastKey;
    return { keys, ended: false };
  }

  /** Leaving the stream cancels its RunQuery. */
  async close(): Promise<void> {
    await this.stream?.return(undefined);
  }
}

/** The keys of the partition's range after `cursor` (or from its start), in key order. */
function partitionKeyQuery(ctx: PipelineContext, migration: Migration, partition: PartitionDocument, cursor: string | null): Query {
  let query = targetQuery(ctx.db, migration.target).select().orderBy(FieldPath.documentId());
  if (cursor) query = query.startAfter(ctx.db.doc(cursor));
  else if (partition.startAt) query = query.startAt(ctx.db.doc(partition.startAt));
  if (partition.endBefore) query = query.endBefore(ctx.db.doc(partition.endBefore));
  return query;
}

/** The task id of a batch task (also the finalisation claimant when it finalises the run). */
function taskName(task: BatchTask): string {
  return taskId(task.runId, task.partition, task.seq, task.epoch);
}

/**
 * Where the task's first batch starts reading: after the previous batch's last key — for the
 * first seq of the epoch, after the partition's cursor (or from its start).
 */
async function startCursor(ctx: PipelineContext, task: BatchTask, partition: PartitionDocument): Promise<string | null> {
  if (task.seq === partition.resumeFromSeq) return partition.cursor;
  const previous = await ctx.db.collection(ctx.paths.batches(task.migrationId, task.runId)).doc(markerId(task.partition, task.seq - 1)).get();
  // Seq n is enqueued only after seq n−1 committed; a missing marker is an inconsistency worth a retry.
  if (!previous.exists) throw new Error(`batch ${task.partition}-${task.seq} of run ${task.runId}: the marker of seq ${task.seq - 1} does not exist`);
  return previous.get('lastKey') as string;
}

/** The first seq from the task's on whose marker does not exist: where the partition continues. */
async function firstUncommittedSeq(stores: PipelineStores, migration: Migration, task: BatchTask): Promise<number> {
  let next = task.seq;
  for await (const marker of stores.partitions.markersFrom(migration.id, task.runId, task.partition, task.seq)) {
    if (marker.seq === next) next++;
  }
  return next;
}

async function enqueueAt(ctx: PipelineContext, task: BatchTask, seq: number): Promise<void> {
  const next: BatchTask = { ...task, seq };
  await ctx.batchQueue.enqueue({ name: taskName(next), payload: next });
}

/** Marks the partition exhausted (only in the epoch this task belongs to), then finalises the run if it was the last. */
async function exhaust(ctx: PipelineContext, stores: PipelineStores, migration: Migration, task: BatchTask, claimant: string): Promise<BatchTaskOutcome> {
  const ref = stores.partitions.ref(migration.id, task.runId, task.partition);
  const marked = await ctx.db.runTransaction(async (tx) => {
    const current = (await tx.get(ref)).data() as PartitionDocument | undefined;
    if (!current || current.epoch !== task.epoch) return false;
    if (current.status !== 'exhausted') tx.update(ref, { status: 'exhausted', nextSeq: Math.max(current.nextSeq, task.seq + 1), updatedAt: Timestamp.now() });
    return true;
  });
  if (!marked) return 'stale';
  ctx.log.info(`migrateBatch: partition ${task.partition} exhausted at seq ${task.seq}`, { runId: task.runId, partition: task.partition, seq: task.seq });
  const finalized = await finalizeRunIfDone(ctx, migration, task.runId, claimant);
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
