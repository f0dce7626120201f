/**
 * The local rollback runner. It holds the migration's lease for the whole rollback and undoes the
 * source runs newest first — one source run's batches all settle before the next (older) run's
 * start, so a document both changed ends at the older image. Within a source run up to
 * MIGRATION_CONCURRENT_BATCHES batches are in flight (their backups name distinct documents).
 * Each batch's marker, committed with its restores, is the checkpoint: a resume continues after
 * the unbroken run of markers (sourceRunCheckpoint) with the batch size the run started with.
 *
 * Stops: `stop()` (a signal, the operator), ROLLBACK_TIMEOUT (the overall deadline: paused,
 * resumable, reason recorded), the circuit breaker on ROLLBACK_EMERGENCY_THRESHOLD
 * (emergency_stopped), a lost lease, and — checked every ROLLBACK_SAFETY_INTERVAL — another
 * process pausing or aborting the rollback run, or the migration's lease moving to another run.
 */
import { FieldPath, Timestamp } from '@google-cloud/firestore';
import { LeaseKeeper, LeaseStore } from '../control/lease';
import { RegistryStore } from '../control/registry-store';
import { RunStore, type RunStatus } from '../control/runs';
import { CircuitBreaker } from '../engine/breaker';
import { streamKeys } from '../engine/key-reader';
import { restoreBackupBatch } from './batch';
import { finishRollbackRun, prepareRollbackRun, reclaimRollbackRun, sourceRunCheckpoint, sumRollbackMarkers, type PreparedRollback } from './rollback-run';
import { revertSourceDocuments } from './revert';
import { countBackups } from './source-runs';
import type { RollbackCaller, RollbackContext, RollbackOutcome, RollbackProgress, RollbackRequest, RollbackSession, RollbackTotals } from './types';

export interface RollbackRunOptions {
  /** Validate every restored document, not ROLLBACK_VALIDATION_SAMPLE of them (tests). */
  sampleAll?: boolean;
  /** Called after each committed batch (tests use it to stop mid-way). */
  onBatch?: (session: RollbackSession, totals: RollbackTotals) => void;
}

/** Starts a rollback of a migration (or of one of its runs). The confirmation gate is the caller's. */
export async function startRollback(ctx: RollbackContext, request: RollbackRequest, options: RollbackRunOptions = {}): Promise<RollbackSession> {
  const prepared = await prepareRollbackRun(ctx, request);
  return Runner.begin(ctx, prepared, options);
}

/** Resumes a paused, stopped or failed rollback run (or one whose holder died). */
export async function resumeRollback(ctx: RollbackContext, rollbackRunId: string, caller: RollbackCaller, options: RollbackRunOptions = {}): Promise<RollbackSession> {
  const run = await new RunStore(ctx.db, ctx.paths).find(rollbackRunId);
  const prepared = await reclaimRollbackRun(ctx, run.migrationId, rollbackRunId, caller);
  return Runner.begin(ctx, prepared, options);
}

const ZERO: RollbackTotals = { restored: 0, alreadyRestored: 0, conflicts: 0, forced: 0, missingDocuments: 0, missingBackups: 0, failed: 0, batches: 0 };

type ExternalStop = 'paused' | 'aborted' | 'emergency_stopped' | 'failed';
const EXTERNAL_STOPS: readonly RunStatus[] = ['paused', 'aborted', 'emergency_stopped', 'failed'];

class Runner implements RollbackSession {
  readonly runId: string;
  readonly migrationId: string;
  readonly strategy;
  outcome!: Promise<RollbackOutcome>;
  private totals: RollbackTotals = { ...ZERO };
  private total: number | null = null;
  private readonly startedAt = Date.now();
  private readonly deadline: number;
  private currentRunId: string | null = null;
  private stopReason: string | null = null;
  private timedOut = false;
  private lostLease: Error | null = null;
  private external: { status: ExternalStop; reason: string | null } | null = null;
  private emergency: string | null = null;
  private failure: Error | null = null;
  private nextSafetyCheck: number;
  private checkingSafety: Promise<void> | null = null;
  private readonly breaker: CircuitBreaker;
  private readonly keeper: LeaseKeeper;

  private constructor(
    private readonly ctx: RollbackContext,
    private readonly prepared: PreparedRollback,
    private readonly options: RollbackRunOptions,
  ) {
    this.runId = prepared.runId;
    this.migrationId = prepared.migrationId;
    this.strategy = prepared.strategy;
    this.deadline = this.startedAt + ctx.config.rollback.timeoutMs;
    this.nextSafetyCheck = this.startedAt + ctx.config.rollback.safetyIntervalMs;
    this.breaker = CircuitBreaker.forRollback(ctx.config);
    const leases = new LeaseStore(ctx.db, ctx.paths, ctx.lease);
    this.keeper = new LeaseKeeper(leases, prepared.migrationId, prepared.runId, ctx.holder, prepared.leaseExpiresAt, (error) => {
      this.lostLease ??= error;
      ctx.log.error(error.message, { runId: this.runId });
    });
  }

  static async begin(ctx: RollbackContext, prepared: PreparedRollback, options: RollbackRunOptions): Promise<RollbackSession> {
    const runner = new Runner(ctx, prepared, options);
    runner.keeper.start();
    try {
      runner.totals = await sumRollbackMarkers(ctx, prepared.migrationId, prepared.runId);
      if (prepared.strategy === 'restore') {
        const counts = await Promise.all(prepared.sourceRuns.map((run) => countBackups(ctx.db, ctx.paths, prepared.migrationId, run.runId)));
        runner.total = counts.reduce((sum, count) => sum + count, 0);
      }
    } catch (error) {
      await runner.keeper.stop();
      await finishRollbackRun(ctx, prepared.migrationId, prepared.runId, { status: 'failed', reason: `failed while starting: ${(error as Error).message}`, caller: prepared.caller, error: error as Error });
      throw error;
    }
    runner.outcome = runner.execute();
    return runner;
  }

  progress(): RollbackProgress {
    const processed = this.processed();
    const seconds = (Date.now() - this.startedAt) / 1000;
    return { ...this.totals, total: this.total, processed, startedAt: this.startedAt, docsPerSecond: seconds > 0 ? processed / seconds : 0, currentRunId: this.currentRunId };
  }

  stop(reason: string): void {
    if (this.stopReason !== null) return;
    this.stopReason = reason;
    this.ctx.log.info(`stopping rollback ${this.runId} (${reason}): no new batches; waiting for the batches in flight`, { runId: this.runId, reason });
  }

  private processed(): number {
    const t = this.totals;
    return t.restored + t.alreadyRestored + t.conflicts + t.missingDocuments + t.missingBackups + t.failed;
  }

  private stopping(): boolean {
    if (!this.timedOut && Date.now() > this.deadline) {
      this.timedOut = true;
      this.stopReason ??= `ROLLBACK_TIMEOUT (${this.ctx.config.rollback.timeoutMs} ms) passed: stopped, resume to continue`;
    }
    return this.stopReason !== null || this.lostLease !== null || this.external !== null || this.emergency !== null || this.failure !== null;
  }

  /** Every ROLLBACK_SAFETY_INTERVAL: the run was not paused/aborted from outside, and the migration is still ours. */
  private safetyCheck(): Promise<void> {
    if (this.checkingSafety) return this.checkingSafety;
    if (Date.now() < this.nextSafetyCheck) return Promise.resolve();
    this.checkingSafety = this.checkSafety().finally(() => {
      this.checkingSafety = null;
      this.nextSafetyCheck = Date.now() + this.ctx.config.rollback.safetyIntervalMs;
    });
    return this.checkingSafety;
  }

  private async checkSafety(): Promise<void> {
    const [run, entry] = await Promise.all([
      new RunStore(this.ctx.db, this.ctx.paths).get(this.migrationId, this.runId),
      new RegistryStore(this.ctx.db, this.ctx.paths).get(this.migrationId),
    ]);
    if (EXTERNAL_STOPS.includes(run.status)) {
      this.external = { status: run.status as ExternalStop, reason: run.statusReason };
      this.ctx.log.warning(`rollback ${this.runId} was set "${run.status}" by another process: stopping`, { runId: this.runId });
    } else if (entry?.activeRunId !== this.runId) {
      this.lostLease ??= new Error(`the migration's active run is now ${entry?.activeRunId ?? 'none'}, not this rollback`);
    }
  }

  private record(batch: Omit<RollbackTotals, 'batches'>): void {
    const t = this.totals;
    for (const key of Object.keys(batch) as Array<keyof typeof batch>) t[key] += batch[key];
    t.batches++;
    const ok = batch.restored + batch.alreadyRestored + batch.conflicts + batch.missingDocuments;
    this.breaker.record(ok, batch.failed + batch.missingBackups);
    const trip = this.emergency === null ? this.breaker.tripped() : null;
    if (trip) {
      this.emergency = trip.reason;
      this.ctx.log.error(`rollback circuit breaker: ${trip.reason}: emergency stop`, { runId: this.runId });
    }
    this.options.onBatch?.(this, { ...t });
  }

  private async execute(): Promise<RollbackOutcome> {
    let finished = false;
    try {
      for (const source of this.prepared.sourceRuns) {
        if (this.stopping()) break;
        this.currentRunId = source.runId;
        if (this.strategy === 'restore') await this.restoreSourceRun(source.runId);
        else await this.revertSourceRun(source.runId);
      }
      finished = !this.stopping();
    } catch (error) {
      this.failure ??= error as Error;
      this.ctx.log.error(`rollback ${this.runId} failed: ${(error as Error).message}`, { runId: this.runId });
    }
    await this.keeper.stop();
    return this.finish(finished && !this.failure, this.failure);
  }

  private async restoreSourceRun(sourceRunId: string): Promise<void> {
    const { ctx, prepared } = this;
    const checkpoint = await sourceRunCheckpoint(ctx, prepared.migrationId, prepared.runId, sourceRunId);
    let seq = checkpoint.nextSeq;
    let cursor = checkpoint.afterBackupId;
    let query = ctx.db.collection(ctx.paths.backups(prepared.migrationId, sourceRunId)).select().orderBy(FieldPath.documentId());
    if (cursor !== null) query = query.startAfter(cursor);
    const limit = Math.max(1, ctx.config.migration.concurrentBatches);
    const inFlight = new Set<Promise<void>>();
    const dispatch = async (ids: string[]) => {
      const input = { rollbackRunId: prepared.runId, migrationId: prepared.migrationId, sourceRunId, seq: seq++, afterBackupId: cursor, force: prepared.force };
      cursor = ids[ids.length - 1];
      const batch = this.runBatch(input, ids);
      inFlight.add(batch);
      void batch.finally(() => inFlight.delete(batch));
      if (inFlight.size >= limit) await Promise.race(inFlight);
    };
    try {
      let ids: string[] = [];
      // Streaming the backup keys (not a page query per batch): page queries cost O(collection) on the emulator.
      for await (const path of streamKeys(ctx.db, ctx.wire, query, { maxRetries: ctx.config.rollback.maxRetries, retryDelayMs: ctx.config.migration.retryDelayMs })) {
        if (this.stopping()) return;
        ids.push(path.slice(path.lastIndexOf('/') + 1));
        if (ids.length === prepared.batchSize) {
          await dispatch(ids);
          ids = [];
        }
      }
      if (ids.length > 0 && !this.stopping()) await dispatch(ids);
    } finally {
      await Promise.all(inFlight);
    }
  }

  /** One batch; a failure stops the session (the batches in flight settle, the run stays resumable). */
  private async runBatch(input: Parameters<typeof restoreBackupBatch>[1], ids: string[]): Promise<void> {
    try {
      await this.safetyCheck();
      const result = await restoreBackupBatch(this.ctx, input, ids);
      if (result.status === 'duplicate' && result.lastBackupId !== ids[ids.length - 1]) {
        throw new Error(`batch ${input.sourceRunId}-${input.seq} was committed before over other backups (up to ${result.lastBackupId}, not ${ids[ids.length - 1]}): the batch size changed since`);
      }
      this.record(result.totals);
    } catch (error) {
      this.failure ??= error as Error;
      this.ctx.log.error(`rollback ${this.runId}: batch ${input.sourceRunId}-${input.seq} failed: ${(error as Error).message}`, { runId: this.runId });
    }
  }

  private async revertSourceRun(sourceRunId: string): Promise<void> {
    // Revert works on the target's documents, not per run: the first source run's pass covers all.
    if (sourceRunId !== this.prepared.sourceRuns[0].runId) return;
    await revertSourceDocuments(this.ctx, this.prepared, {
      stopping: () => this.stopping(),
      beforeBatch: () => this.safetyCheck(),
      record: (counts) => this.record(counts),
    });
  }

  private async finish(completed: boolean, failure: Error | null): Promise<RollbackOutcome> {
    const { ctx, prepared } = this;
    const base = { runId: this.runId, migrationId: this.migrationId, strategy: this.strategy, validation: null };
    if (this.lostLease) return { ...base, status: 'lease-lost', statusReason: this.lostLease.message, totals: null, error: this.lostLease };
    try {
      if (this.external) {
        // The process that set the status recorded its reason and audit event; give the lease back.
        const totals = await sumRollbackMarkers(ctx, prepared.migrationId, prepared.runId);
        await ctx.db.doc(ctx.paths.run(prepared.migrationId, prepared.runId)).update({ 'rollback.rollbackTotals': totals, updatedAt: Timestamp.now() });
        await new LeaseStore(ctx.db, ctx.paths, ctx.lease).release(prepared.migrationId, prepared.runId, ctx.holder);
        return { ...base, status: this.external.status, statusReason: this.external.reason, totals, error: failure };
      }
      if (failure) return await finishRollbackRun(ctx, prepared.migrationId, prepared.runId, { status: 'failed', reason: failure.message, caller: prepared.caller, error: failure });
      if (this.emergency) return await finishRollbackRun(ctx, prepared.migrationId, prepared.runId, { status: 'emergency_stopped', reason: this.emergency, caller: prepared.caller });
      if (!completed) return await finishRollbackRun(ctx, prepared.migrationId, prepared.runId, { status: 'paused', reason: this.stopReason ?? 'stopped', caller: prepared.caller });
      return await finishRollbackRun(ctx, prepared.migrationId, prepared.runId, { status: 'completed', reason: null, caller: prepared.caller, validation: { sampleAll: this.options.sampleAll } });
    } catch (error) {
      ctx.log.error(`could not record the end of rollback ${this.runId}: ${(error as Error).message}`, { runId: this.runId });
      return { ...base, status: 'failed', statusReason: (error as Error).message, totals: null, error: failure ?? (error as Error) };
    }
  }
}
