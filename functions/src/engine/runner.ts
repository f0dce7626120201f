/**
 * The local runner (gh-ost's "migrator"): takes the migration's lease, plans the partitions,
 * works through them with bounded concurrency and ends the run — completed, paused (a stop
 * request: signal, operator) or failed. The batch core does each batch's reads and its atomic
 * commit; the batch markers that commit creates are the checkpoint, so this loop keeps nothing
 * that a crash could lose.
 *
 * Concurrency: up to MIGRATION_CONCURRENT_BATCHES partitions in flight; each streams its keys
 * (keys only, with backpressure, through key-reader.ts) and pipelines its batches, at most `perPartitionInFlight` at a
 * time, and all batches share MIGRATION_CONNECTION_POOL_SIZE permits. A batch does its reads and
 * its commit one after the other, so the permits bound the batch RPCs in flight; each partition's
 * key stream holds one more connection, paused by backpressure while its batches wait.
 */
import { FieldPath, Timestamp, type Firestore, type Query } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import type { Migration } from '../definitions/types';
import { AuditLog, type RunAuditAction } from '../control/audit';
import { LeaseKeeper, LeaseLostError, LeaseStore, type LeaseSettings } from '../control/lease';
import type { ControlPaths } from '../control/paths';
import { PartitionStore, newPartitionDocument, type PartitionDocument } from '../control/partitions';
import { ProgressTracker, ZERO_TOTALS, processedOf, sumMarkers, type MarkerTotals, type ProgressSnapshot } from '../control/progress';
import { RegistryStore } from '../control/registry-store';
import {
  RESUMABLE_STATUSES,
  RunStore,
  assertTransition,
  newRunDocument,
  newRunId,
  type RunDocument,
  type RunStatus,
  type RunTotals,
} from '../control/runs';
import { migrateBatch, type BatchResult } from './batch-core';
import { documentsPerCommit } from './batch-size';
import { streamKeys } from './key-reader';
import { planPartitions } from './partitioner';
import { targetQuery } from './planner';
import type { WireClient } from './wire/client';

/** Where the runner reports; the CLI's structured logger fits it. */
export interface RunLog {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warning(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface RunnerContext {
  db: Firestore;
  wire: WireClient;
  migration: Migration;
  config: FiremigrateConfig;
  paths: ControlPaths;
  lease: LeaseSettings;
  /** Names this process in the lease (see `newLeaseHolder`). */
  holder: string;
  log: RunLog;
  /**
   * Called once every partition is exhausted, before the run is marked completed: the place of
   * the final sweep (a full scan proving no document is left in the old shape, DESIGN.md G3),
   * which is not built yet — without it the run completes when its partitions are exhausted.
   */
  finalSweep?: (run: { runId: string; db: Firestore; migration: Migration }) => Promise<void>;
  /** Restart each key stream after this long (default: DEFAULT_RESTART_EVERY_MS of key-stream.ts). */
  restartEveryMs?: number;
}

export interface Caller {
  user: string;
  identity: string;
  reason: string | null;
}

export type RunOutcomeStatus = 'completed' | 'paused' | 'failed' | 'lease-lost';

export interface RunOutcome {
  runId: string;
  migrationId: string;
  status: RunOutcomeStatus;
  /** Exact totals summed over the batch markers; null when they could not be read (or the lease was lost first). */
  totals: MarkerTotals | null;
  error: Error | null;
}

/** A run in progress: its live progress, a way to ask it to stop, and its outcome. */
export interface RunSession {
  runId: string;
  migrationId: string;
  resumed: boolean;
  partitions: number;
  progress(): ProgressSnapshot;
  /** Stop taking new batches, let the ones in flight settle, then pause the run. */
  stop(reason: string): void;
  outcome: Promise<RunOutcome>;
}

/** Seqs reserved per write of the partition document (see `PartitionDocument.nextSeq`). */
export const SEQ_RESERVATION_BLOCK = 64;

export class ResumeRefusedError extends Error {
  override readonly name = 'ResumeRefusedError';
}

/** Counting semaphore: `acquire` waits for a free permit, in arrival order. */
export class Semaphore {
  private available: number;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!(Number.isInteger(size) && size >= 1)) throw new RangeError(`semaphore size must be an integer ≥ 1, got ${size}`);
    this.available = size;
  }

  get inUse(): number {
    return this.size - this.available;
  }

  async acquire(): Promise<void> {
    if (this.available > 0) {
      this.available--;
      return;
    }
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.available++;
  }
}

/**
 * Partitions in flight share the pool evenly: ⌈pool / partitions⌉ batches each, at least one, so
 * one partition cannot take every permit and starve the others.
 */
export function perPartitionInFlight(poolSize: number, partitionsInFlight: number): number {
  return Math.max(1, Math.ceil(poolSize / Math.max(1, partitionsInFlight)));
}

/** The keys of one partition, in key order, from its cursor (or start) to its end. */
export function partitionKeyQuery(db: Firestore, migration: Migration, partition: Pick<PartitionDocument, 'startAt' | 'endBefore' | 'cursor'>): Query {
  let query = targetQuery(db, migration.target).select().orderBy(FieldPath.documentId());
  if (partition.cursor) query = query.startAfter(db.doc(partition.cursor));
  else if (partition.startAt) query = query.startAt(db.doc(partition.startAt));
  if (partition.endBefore) query = query.endBefore(db.doc(partition.endBefore));
  return query;
}

class Stores {
  readonly runs: RunStore;
  readonly partitions: PartitionStore;
  readonly registry: RegistryStore;
  readonly leases: LeaseStore;
  readonly audit: AuditLog;

  constructor(ctx: RunnerContext) {
    this.runs = new RunStore(ctx.db, ctx.paths);
    this.partitions = new PartitionStore(ctx.db, ctx.paths);
    this.registry = new RegistryStore(ctx.db, ctx.paths);
    this.leases = new LeaseStore(ctx.db, ctx.paths, ctx.lease);
    this.audit = new AuditLog(ctx.db, ctx.paths);
  }
}

async function countTarget(ctx: RunnerContext): Promise<number> {
  const snapshot = await targetQuery(ctx.db, ctx.migration.target).count().get();
  return snapshot.data().count;
}

/** Starts a new run of `ctx.migration`: lease, run document, partition plan, then the loop. */
export async function startRun(ctx: RunnerContext, caller: Caller): Promise<RunSession> {
  const stores = new Stores(ctx);
  const { migration } = ctx;
  const runId = newRunId();
  const claim = await ctx.db.runTransaction(async (tx) => {
    const found = await stores.leases.claimIn(tx, migration.id, runId, ctx.holder);
    stores.registry.assertRunnable(found.entry, migration);
    stores.runs.createIn(
      tx,
      newRunDocument({
        runId,
        migrationId: migration.id,
        kind: 'migrate',
        mode: 'execute',
        user: caller.user,
        identity: caller.identity,
        reason: caller.reason,
        checksum: migration.checksum,
        config: ctx.config,
        lease: found.lease,
      }),
    );
    stores.leases.write(tx, found, migration);
    return found;
  });
  const keeper = new LeaseKeeper(stores.leases, migration.id, runId, ctx.holder, claim.lease.expiresAt, (error) => session.leaseLost(error));
  keeper.start();
  const session = new Session(ctx, stores, keeper, runId, false, caller);
  try {
    await stores.audit.append(auditEvent('run.started', migration.id, runId, caller, {
      holder: ctx.holder,
      takenOverFrom: claim.takenOverFrom ? { ...claim.takenOverFrom, expiredAt: claim.takenOverFrom.expiredAt.toDate().toISOString() } : null,
    }));
    const total = await countTarget(ctx);
    const plan = await planPartitions(ctx.db, ctx.wire, migration.target, {
      total,
      workers: ctx.config.migration.concurrentBatches,
      restartEveryMs: ctx.restartEveryMs,
      maxRetries: ctx.config.migration.maxRetries,
      retryDelayMs: ctx.config.migration.retryDelayMs,
    });
    const partitions = plan.ranges.map((range, index) => newPartitionDocument(index, range));
    await stores.partitions.createAll(migration.id, runId, partitions);
    const now = Timestamp.now();
    await stores.runs.transition(migration.id, runId, 'running', {
      partitionCount: partitions.length,
      partitionMethod: plan.method,
      startedAt: now,
      totals: runTotals(ZERO_TOTALS, total, now),
    });
    ctx.log.info(`run ${runId} started: ${partitions.length} partitions (${plan.method}), ${total} documents in the target`, {
      runId, migrationId: migration.id, partitions: partitions.length, partitionMethod: plan.method, total,
    });
    session.begin(partitions, ZERO_TOTALS, total);
  } catch (error) {
    await session.failEarly(error as Error, 'planning');
    throw error;
  }
  return session;
}

/**
 * Resumes a paused, failed or emergency-stopped run — or a `running` one whose holder died (its
 * lease expired). Each unfinished partition continues after the last key of its highest
 * contiguous committed batch, with new seqs above every seq that may exist.
 */
export async function resumeRun(ctx: RunnerContext, runId: string, caller: Caller): Promise<RunSession> {
  const stores = new Stores(ctx);
  const { migration } = ctx;
  const { claim, previous } = await ctx.db.runTransaction(async (tx) => {
    const found = await stores.leases.claimIn(tx, migration.id, runId, ctx.holder);
    const snapshot = await tx.get(stores.runs.ref(migration.id, runId));
    if (!snapshot.exists) throw new ResumeRefusedError(`Run ${runId} of migration "${migration.id}" does not exist (no document at ${ctx.paths.run(migration.id, runId)}).`);
    const run = snapshot.data() as RunDocument;
    assertResumable(run, migration);
    stores.registry.assertRunnable(found.entry, migration);
    if (run.status !== 'running') assertTransition(runId, run.status, 'running');
    stores.leases.write(tx, found, migration);
    tx.update(stores.runs.ref(migration.id, runId), {
      status: 'running',
      lease: found.lease,
      resumes: run.resumes + 1,
      statusReason: null,
      finishedAt: null,
      updatedAt: Timestamp.now(),
    });
    return { claim: found, previous: run };
  });
  const keeper = new LeaseKeeper(stores.leases, migration.id, runId, ctx.holder, claim.lease.expiresAt, (error) => session.leaseLost(error));
  keeper.start();
  const session = new Session(ctx, stores, keeper, runId, true, caller);
  try {
    await stores.audit.append(auditEvent('run.resumed', migration.id, runId, caller, {
      holder: ctx.holder,
      previousStatus: previous.status,
      previousStatusReason: previous.statusReason,
      takenOverFrom: claim.takenOverFrom ? { ...claim.takenOverFrom, expiredAt: claim.takenOverFrom.expiredAt.toDate().toISOString() } : null,
    }));
    const partitions = await stores.partitions.list(migration.id, runId);
    if (partitions.length === 0 || partitions.length !== previous.partitionCount) {
      throw new ResumeRefusedError(
        `Run ${runId} has ${partitions.length} partition documents but planned ${previous.partitionCount}: it stopped while planning. ` +
          `Start a new run instead (firemigrate run ${migration.id} --execute).`,
      );
    }
    const resumed: PartitionDocument[] = [];
    for (const partition of partitions) {
      if (partition.status === 'exhausted') {
        resumed.push(partition);
        continue;
      }
      const point = await stores.partitions.resumePoint(migration.id, runId, partition);
      const next: PartitionDocument = {
        ...partition,
        cursor: point.cursor,
        resumeFromSeq: point.resumeFromSeq,
        nextSeq: point.resumeFromSeq,
        epoch: partition.epoch + 1,
        status: 'pending',
      };
      await stores.partitions.update(migration.id, runId, partition.partition, {
        cursor: next.cursor, resumeFromSeq: next.resumeFromSeq, nextSeq: next.nextSeq, epoch: next.epoch, status: next.status,
      });
      if (point.outOfOrder > 0) {
        ctx.log.info(`partition ${partition.partition}: ${point.outOfOrder} batches had committed after a gap; their documents are read again and found migrated`, {
          runId, partition: partition.partition, contiguousThrough: point.contiguousThrough, outOfOrder: point.outOfOrder,
        });
      }
      resumed.push(next);
    }
    const base = await sumMarkers(ctx.db, ctx.paths, migration.id, runId);
    const total = await countTarget(ctx);
    ctx.log.info(`run ${runId} resumed (was ${previous.status}): ${resumed.filter((p) => p.status !== 'exhausted').length} of ${resumed.length} partitions to finish`, {
      runId, migrationId: migration.id, previousStatus: previous.status, epoch: resumed[0]?.epoch, processedBefore: processedOf(base),
    });
    session.begin(resumed, base, total);
  } catch (error) {
    await session.failEarly(error as Error, 'resuming');
    throw error;
  }
  return session;
}

function assertResumable(run: RunDocument, migration: Migration): void {
  if (run.kind !== 'migrate' || run.mode !== 'execute') {
    throw new ResumeRefusedError(`Run ${run.runId} is a ${run.kind} ${run.mode} run; only executed migrate runs can be resumed here.`);
  }
  if (!RESUMABLE_STATUSES.includes(run.status)) {
    throw new ResumeRefusedError(
      `Run ${run.runId} is "${run.status}"; only ${RESUMABLE_STATUSES.map((s) => `"${s}"`).join(', ')} runs can be resumed` +
        (run.status === 'completed' ? ' (it is finished).' : '.'),
    );
  }
  if (run.checksum !== migration.checksum) {
    throw new ResumeRefusedError(
      `Run ${run.runId} was started with definition checksum ${run.checksum}, but "${migration.id}" now has checksum ${migration.checksum}: ` +
        'a run must finish with the definition it started with. Restore that definition, or start a new run.',
    );
  }
}

function auditEvent(action: RunAuditAction, migrationId: string, runId: string, caller: Caller, details: Record<string, unknown>) {
  return { action, migrationId, runId, user: caller.user, identity: caller.identity, reason: caller.reason, details };
}

function runTotals(totals: MarkerTotals | ProgressSnapshot, targetDocuments: number | null, now: Timestamp = Timestamp.now()): RunTotals {
  return {
    migrated: totals.migrated,
    skipped: totals.skipped,
    alreadyMigrated: totals.alreadyMigrated,
    failed: totals.failed,
    batches: totals.batches,
    targetDocuments,
    updatedAt: now,
  };
}

type PartitionEnd = 'exhausted' | 'stopped';

class Session implements RunSession {
  readonly migrationId: string;
  partitions = 0;
  outcome: Promise<RunOutcome>;
  private resolveOutcome!: (outcome: RunOutcome) => void;
  private tracker = new ProgressTracker(ZERO_TOTALS, null);
  private total: number | null = null;
  private stopReason: string | null = null;
  private failure: Error | null = null;
  private lostLease: Error | null = null;
  private readonly pool: Semaphore;
  private checkpointedAt = 0;
  private checkpointing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: RunnerContext,
    private readonly stores: Stores,
    private readonly keeper: LeaseKeeper,
    readonly runId: string,
    readonly resumed: boolean,
    private readonly caller: Caller,
  ) {
    this.migrationId = ctx.migration.id;
    this.pool = new Semaphore(ctx.config.migration.connectionPoolSize);
    this.outcome = new Promise((resolve) => (this.resolveOutcome = resolve));
  }

  progress(): ProgressSnapshot {
    return this.tracker.snapshot();
  }

  private get stopping(): boolean {
    return this.stopReason !== null || this.failure !== null || this.lostLease !== null;
  }

  stop(reason: string): void {
    if (this.stopReason !== null) return;
    this.stopReason = reason;
    this.ctx.log.info(`stopping run ${this.runId} (${reason}): no new batches; waiting for the batches in flight`, { runId: this.runId, reason });
  }

  leaseLost(error: Error): void {
    this.lostLease ??= error;
    this.ctx.log.error(error.message, { runId: this.runId });
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.ctx.log.error(`run ${this.runId} failed: ${error.message}`, { runId: this.runId, error: error.name });
  }

  begin(partitions: PartitionDocument[], base: MarkerTotals, total: number): void {
    this.partitions = partitions.length;
    this.total = total;
    this.tracker = new ProgressTracker(base, total);
    this.checkpointedAt = this.tracker.snapshot().processed;
    this.execute(partitions).then(this.resolveOutcome, (error: Error) =>
      this.resolveOutcome({ runId: this.runId, migrationId: this.migrationId, status: 'failed', totals: null, error }),
    );
  }

  /** A start or resume that failed before its loop began: the run fails and gives the lease back. */
  async failEarly(error: Error, during: string): Promise<void> {
    await this.keeper.stop();
    try {
      const released = await this.stores.leases.release(this.migrationId, this.runId, this.ctx.holder, {
        entry: this.stores.registry.failedChanges(),
        runStatus: 'failed',
        runChanges: { statusReason: `failed while ${during}: ${error.message}`, finishedAt: Timestamp.now() },
      });
      if (released) await this.stores.audit.append(auditEvent('run.failed', this.migrationId, this.runId, this.caller, { during, error: error.message }));
    } catch (cleanup) {
      this.ctx.log.error(`could not record the failure of run ${this.runId}: ${(cleanup as Error).message}`, { runId: this.runId });
    }
  }

  private async execute(partitions: PartitionDocument[]): Promise<RunOutcome> {
    const { concurrentBatches } = this.ctx.config.migration;
    const queue = partitions.filter((partition) => partition.status !== 'exhausted');
    const workers = Math.min(concurrentBatches, Math.max(1, queue.length));
    const perPartition = perPartitionInFlight(this.pool.size, workers);
    let unfinished = queue.length;
    const worker = async () => {
      for (let partition = queue.shift(); partition && !this.stopping; partition = queue.shift()) {
        try {
          if ((await this.runPartition(partition, perPartition)) === 'exhausted') unfinished--;
        } catch (error) {
          this.fail(error as Error);
        }
      }
    };
    await Promise.all(Array.from({ length: workers }, worker));
    await this.checkpointing;
    return this.finish(unfinished === 0);
  }

  /**
   * Streams the partition's keys and pipelines its batches. Keys a commit deferred (it was full)
   * go into the next batch dispatched. On a stop, keys read but not dispatched are dropped: the
   * resume reads them again from the markers' checkpoint.
   */
  private async runPartition(partition: PartitionDocument, perPartition: number): Promise<PartitionEnd> {
    const { db, migration, config, paths } = this.ctx;
    const id = partition.partition;
    const perBatch = documentsPerCommit({ batchSize: config.migration.batchSize, rollbackEnabled: config.migration.rollbackEnabled });
    let seq = partition.resumeFromSeq;
    let reservedUntil = partition.nextSeq;
    const inFlight = new Set<Promise<void>>();
    const deferred: string[][] = [];
    let batchFailed = false;
    await this.stores.partitions.update(migration.id, this.runId, id, { status: 'running' });

    /** Sends one batch once a slot of the partition and a pool permit are free; false when the run stops meanwhile. */
    const dispatch = async (keys: string[]): Promise<boolean> => {
      while (inFlight.size >= perPartition) await Promise.race(inFlight);
      if (this.stopping) return false;
      if (seq >= reservedUntil) {
        reservedUntil = seq + SEQ_RESERVATION_BLOCK;
        await this.stores.partitions.update(migration.id, this.runId, id, { nextSeq: reservedUntil });
      }
      await this.pool.acquire();
      if (this.stopping) {
        this.pool.release();
        return false;
      }
      const batchSeq = seq++;
      this.tracker.batchStarted();
      const task: Promise<void> = migrateBatch({ db, wire: this.ctx.wire, migration, config, paths, runId: this.runId }, { partition: id, seq: batchSeq, keys })
        .then(
          (result) => {
            if (result.deferredKeys.length > 0) deferred.push(result.deferredKeys);
            this.batchDone(id, batchSeq, result);
          },
          (error: Error) => {
            batchFailed = true;
            this.tracker.batchEnded(null);
            this.fail(new Error(`batch ${id}-${batchSeq} failed: ${error.message}`, { cause: error }));
          },
        )
        .finally(() => {
          this.pool.release();
          inFlight.delete(task);
        });
      inFlight.add(task);
      return true;
    };
    const dispatchDeferred = async () => {
      while (deferred.length > 0 && (await dispatch(deferred[0]))) deferred.shift();
    };

    let keys: string[] = [];
    let streamEnded = false;
    try {
      const stream = streamKeys(db, this.ctx.wire, partitionKeyQuery(db, migration, partition), {
        restartEveryMs: this.ctx.restartEveryMs,
        maxRetries: config.migration.maxRetries,
        retryDelayMs: config.migration.retryDelayMs,
      });
      let stoppedEarly = false;
      for await (const key of stream) {
        if (this.stopping) {
          stoppedEarly = true;
          break;
        }
        keys.push(key);
        if (keys.length === perBatch) {
          await dispatchDeferred();
          if (await dispatch(keys)) keys = [];
        }
      }
      streamEnded = !stoppedEarly;
      if (keys.length > 0 && (await dispatch(keys))) keys = [];
      // Settle: batches in flight may still defer keys.
      while (!this.stopping && (inFlight.size > 0 || deferred.length > 0)) {
        if (deferred.length > 0) await dispatchDeferred();
        else await Promise.race(inFlight);
      }
    } finally {
      await Promise.all(inFlight);
    }
    const exhausted = streamEnded && keys.length === 0 && deferred.length === 0 && !batchFailed;
    await this.stores.partitions.update(migration.id, this.runId, id, { status: exhausted ? 'exhausted' : 'pending', nextSeq: reservedUntil });
    this.ctx.log.debug(`partition ${id} ${exhausted ? 'exhausted' : 'stopped'}`, { runId: this.runId, partition: id, nextSeq: seq });
    return exhausted ? 'exhausted' : 'stopped';
  }

  private batchDone(partition: string, seq: number, result: BatchResult): void {
    const committed = result.status === 'committed';
    this.tracker.batchEnded(committed ? result : null);
    this.ctx.log.debug(`batch ${partition}-${seq} ${result.status}`, {
      runId: this.runId,
      partition,
      seq,
      migrated: result.migrated,
      skipped: result.skipped,
      alreadyMigrated: result.alreadyMigrated,
      failed: result.failed,
      latencyMs: result.latencyMs,
      preconditionRetries: result.preconditionRetries,
      transientRetries: result.transientRetries,
    });
    const snapshot = this.tracker.snapshot();
    if (snapshot.processed - this.checkpointedAt >= this.ctx.config.migration.checkpointInterval) {
      this.checkpointedAt = snapshot.processed;
      // Serialised, so an older summary never lands after a newer one.
      this.checkpointing = this.checkpointing.then(() =>
        this.stores.runs.update(this.migrationId, this.runId, { totals: runTotals(snapshot, this.total) }).catch((error: Error) => {
          this.ctx.log.warning(`could not write the run summary: ${error.message}`, { runId: this.runId });
        }),
      );
    }
  }

  private async finish(allExhausted: boolean): Promise<RunOutcome> {
    const { migration } = this.ctx;
    const outcome = (status: RunOutcomeStatus, totals: MarkerTotals | null, error: Error | null): RunOutcome => ({
      runId: this.runId,
      migrationId: migration.id,
      status,
      totals,
      error,
    });
    try {
      if (!this.stopping && allExhausted && this.ctx.finalSweep) {
        await this.ctx.finalSweep({ runId: this.runId, db: this.ctx.db, migration });
      }
    } catch (error) {
      this.fail(error as Error);
    }
    // The lease is renewed through the sweep; the release below ends it with the run's status.
    await this.keeper.stop();
    if (this.lostLease) return outcome('lease-lost', null, this.lostLease);
    try {
      const totals = await sumMarkers(this.ctx.db, this.ctx.paths, migration.id, this.runId);
      const now = Timestamp.now();
      const summary = runTotals(totals, this.total, now);
      let status: RunStatus & RunOutcomeStatus;
      let action: RunAuditAction;
      let reason: string | null;
      if (this.failure) [status, action, reason] = ['failed', 'run.failed', this.failure.message];
      else if (this.stopReason || !allExhausted) [status, action, reason] = ['paused', 'run.paused', this.stopReason ?? 'stopped before every partition was exhausted'];
      else [status, action, reason] = ['completed', 'run.completed', null];
      const entry =
        status === 'completed' ? this.stores.registry.appliedChanges(migration.checksum, this.caller.user) : status === 'failed' ? this.stores.registry.failedChanges() : {};
      const released = await this.stores.leases.release(migration.id, this.runId, this.ctx.holder, {
        entry,
        runStatus: status,
        runChanges: { totals: summary, statusReason: reason, ...(status === 'paused' ? {} : { finishedAt: now }) },
      });
      if (!released) {
        return outcome('lease-lost', totals, new LeaseLostError(migration.id, this.runId, 'another process holds it now; this process records nothing'));
      }
      await this.stores.audit.append(auditEvent(action, migration.id, this.runId, this.caller, {
        statusReason: reason,
        migrated: totals.migrated,
        skipped: totals.skipped,
        alreadyMigrated: totals.alreadyMigrated,
        failed: totals.failed,
        batches: totals.batches,
      }));
      return outcome(status, totals, this.failure);
    } catch (error) {
      this.ctx.log.error(`could not record the end of run ${this.runId}: ${(error as Error).message}`, { runId: this.runId });
      return outcome('failed', null, this.failure ?? (error as Error));
    }
  }
}
