import { randomBytes } from 'node:crypto';
import { Timestamp, type Firestore, type Transaction } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import type { ValidationReport } from '../engine/validation';
import type { PartitionMethod } from './partitions';
import type { ControlPaths } from './paths';

export type RunKind = 'migrate' | 'rollback';
/** What `onMigrationAlert` does after an emergency stop: nothing more (manual), or start a rollback (auto). */
export type RollbackPolicy = 'manual' | 'auto';
export type RunMode = 'dry-run' | 'execute';
export type RunStatus =
  | 'planning'
  | 'running'
  | 'paused'
  | 'emergency_stopped'
  | 'completed'
  | 'failed'
  | 'aborted'
  | 'rolled_back';

/** Counters of a run: sums over its batch markers (exact), or the runner's live counters (checkpointed). */
export interface RunTotals {
  migrated: number;
  skipped: number;
  alreadyMigrated: number;
  failed: number;
  batches: number;
  /** Documents of the target when the run (or its latest resume) started: the denominator of progress. */
  targetDocuments: number | null;
  updatedAt: Timestamp;
}

export interface RunLease {
  holder: string;
  expiresAt: Timestamp;
}

/** The throttle and circuit breaker as the runner saw them at its latest checkpoint (for `status`). */
export interface RunThrottleSummary {
  throttled: boolean;
  /** What held batches back (ramp, memory, a full pool), null when nothing did. */
  reason: string | null;
  poolInUse: number;
  poolSize: number;
  rssMb: number;
  thresholdMb: number;
  rampEnabled: boolean;
  ramp: Array<{ collection: string; opsPerSecond: number; minute: number }>;
  /** Failure rate over the breaker's window (MIGRATION_EMERGENCY_WINDOW documents). */
  breaker: { rate: number; failed: number; sample: number; threshold: number };
  at: Timestamp;
}

/** The final sweep of the latest session (engine/final-sweep.ts). */
export interface RunSweepSummary {
  /** Full scans of the target made. */
  passes: number;
  /** Documents found in the old shape and sent through the batch core again. */
  examined: number;
  migrated: number;
  skipped: number;
  failed: number;
  /** Null while the sweep has not reached a pass that migrated nothing. */
  completedAt: Timestamp | null;
}

/** A resume that accepted a changed definition (`--accept-definition-change`). */
export interface RunDefinitionChange {
  from: string;
  to: string;
  user: string;
  identity: string;
  reason: string | null;
  at: Timestamp;
}

/** `.../runs/{runId}`. */
export interface RunDocument {
  runId: string;
  migrationId: string;
  kind: RunKind;
  mode: RunMode;
  status: RunStatus;
  /** Who asked for the run (`--user`, or the OS user). */
  user: string;
  /** The caller's Google identity (account email, or a description of the credentials), beside `user`. */
  identity: string;
  reason: string | null;
  /** Checksum of the definition the run executes; a resume with another definition is refused. */
  checksum: string;
  config: FiremigrateConfig;
  lease: RunLease | null;
  /** Partitions planned for this run (null until planned). */
  partitionCount: number | null;
  partitionMethod: PartitionMethod | null;
  createdAt: Timestamp;
  startedAt: Timestamp | null;
  finishedAt: Timestamp | null;
  updatedAt: Timestamp;
  /** Why the run is in its status, for the non-obvious ones (paused by a signal, failed with an error). */
  statusReason: string | null;
  /** How many times the run was resumed (each resume bumps the partitions' epoch). */
  resumes: number;
  totals: RunTotals | null;
  /** The target when the run started: its documents, and those already at the target version (null: the count needs an index). */
  before?: { total: number; atTarget: number | null } | null;
  throttle?: RunThrottleSummary | null;
  sweep?: RunSweepSummary | null;
  definitionChanges?: RunDefinitionChange[];
  /** The post-migration validation (engine/validation.ts). */
  report?: ValidationReport | null;
  /** Set at run start (API `rollbackPolicy`); absent means manual. */
  rollbackPolicy?: RollbackPolicy;
}

/**
 * The run lifecycle. `running → running` is not a transition: a resumed run that crashed while
 * running keeps its status and only its lease changes hands. A failed or emergency-stopped run can
 * be resumed once its cause is fixed; completed, aborted and rolled-back runs are final (a
 * completed run can still be rolled back).
 */
const ALLOWED_TRANSITIONS: Readonly<Record<RunStatus, readonly RunStatus[]>> = {
  // A dry run completes straight from planning: its planning task is all of its work.
  planning: ['running', 'completed', 'failed', 'aborted'],
  running: ['paused', 'emergency_stopped', 'completed', 'failed', 'aborted'],
  paused: ['running', 'aborted', 'rolled_back'],
  emergency_stopped: ['running', 'aborted', 'rolled_back'],
  failed: ['running', 'aborted', 'rolled_back'],
  completed: ['rolled_back'],
  aborted: [],
  rolled_back: [],
};

/** Statuses a run can be resumed from (`running` only when its holder's lease has expired). */
export const RESUMABLE_STATUSES: readonly RunStatus[] = ['running', 'paused', 'emergency_stopped', 'failed'];

export class RunTransitionError extends Error {
  override readonly name = 'RunTransitionError';
  constructor(
    readonly runId: string,
    readonly from: RunStatus,
    readonly to: RunStatus,
  ) {
    const allowed = ALLOWED_TRANSITIONS[from];
    super(
      `Run ${runId} cannot go from "${from}" to "${to}" ` +
        `(from "${from}" it can go to ${allowed.length > 0 ? allowed.map((s) => `"${s}"`).join(', ') : 'nothing: it is final'}).`,
    );
  }
}

export class RunNotFoundError extends Error {
  override readonly name = 'RunNotFoundError';
  constructor(
    readonly runId: string,
    readonly where: string,
  ) {
    super(`Run ${runId} was not found (${where}).`);
  }
}

/** The facts every view of a run starts with (the API's run view and summaries, `firemigrate status`). */
export function runFacts(run: RunDocument) {
  return {
    runId: run.runId,
    migrationId: run.migrationId,
    kind: run.kind,
    mode: run.mode,
    status: run.status,
    statusReason: run.statusReason,
    user: run.user,
    identity: run.identity,
    reason: run.reason,
  };
}

export function canTransition(from: RunStatus, to: RunStatus): boolean {
  return ALLOWED_TRANSITIONS[from].includes(to);
}

export function assertTransition(runId: string, from: RunStatus, to: RunStatus): void {
  if (!canTransition(from, to)) throw new RunTransitionError(runId, from, to);
}

/** `20261129-142501-3fa9c2`: sorts by creation time, unique thanks to the random suffix. */
export function newRunId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `${stamp}-${randomBytes(3).toString('hex')}`;
}

export interface NewRun {
  runId: string;
  migrationId: string;
  kind: RunKind;
  mode: RunMode;
  user: string;
  identity: string;
  reason: string | null;
  checksum: string;
  config: FiremigrateConfig;
  lease: RunLease | null;
  rollbackPolicy?: RollbackPolicy;
}

export function newRunDocument(run: NewRun, now: Timestamp = Timestamp.now()): RunDocument {
  return {
    ...run,
    status: 'planning',
    partitionCount: null,
    partitionMethod: null,
    createdAt: now,
    startedAt: null,
    finishedAt: null,
    updatedAt: now,
    statusReason: null,
    resumes: 0,
    totals: null,
  };
}

export class RunStore {
  constructor(
    private readonly db: Firestore,
    private readonly paths: ControlPaths,
  ) {}

  ref(migrationId: string, runId: string) {
    return this.db.doc(this.paths.run(migrationId, runId));
  }

  /** Creates the run document inside `tx` (fails the transaction if the id exists). */
  createIn(tx: Transaction, run: RunDocument): void {
    tx.create(this.ref(run.migrationId, run.runId), run);
  }

  async get(migrationId: string, runId: string): Promise<RunDocument> {
    const snapshot = await this.ref(migrationId, runId).get();
    if (!snapshot.exists) throw new RunNotFoundError(runId, `no document at ${this.paths.run(migrationId, runId)}`);
    return snapshot.data() as RunDocument;
  }

  /**
   * Moves the run to `to` in a transaction that re-reads its status, so two processes cannot both
   * make a transition from the same state. `changes` are written with the status.
   */
  async transition(
    migrationId: string,
    runId: string,
    to: RunStatus,
    changes: Partial<Omit<RunDocument, 'status' | 'runId' | 'migrationId'>> = {},
  ): Promise<RunDocument> {
    return this.db.runTransaction(async (tx) => {
      const ref = this.ref(migrationId, runId);
      const snapshot = await tx.get(ref);
      if (!snapshot.exists) throw new RunNotFoundError(runId, `no document at ${ref.path}`);
      const current = snapshot.data() as RunDocument;
      assertTransition(runId, current.status, to);
      const now = Timestamp.now();
      const update = { ...changes, status: to, updatedAt: now };
      tx.update(ref, update);
      return { ...current, ...update };
    });
  }

  /** Fields that do not change the status (counters, partition plan). */
  async update(migrationId: string, runId: string, changes: Partial<Omit<RunDocument, 'status' | 'runId' | 'migrationId'>>): Promise<void> {
    await this.ref(migrationId, runId).update({ ...changes, updatedAt: Timestamp.now() });
  }

  /** The runs of one migration, newest first. */
  async list(migrationId: string, limit = 20): Promise<RunDocument[]> {
    const snapshot = await this.db.collection(this.paths.runs(migrationId)).orderBy('createdAt', 'desc').limit(limit).get();
    return snapshot.docs.map((doc) => doc.data() as RunDocument);
  }

  /**
   * Finds a run by id across migrations: the registry is small (one entry per migration), so this
   * reads the registry and looks under each entry.
   */
  async find(runId: string): Promise<RunDocument> {
    const registry = await this.db.collection(this.paths.root).select().get();
    const candidates = await Promise.all(registry.docs.map((entry) => this.ref(entry.id, runId).get()));
    const found = candidates.find((snapshot) => snapshot.exists);
    if (!found) throw new RunNotFoundError(runId, `under none of the ${registry.size} migrations in ${this.paths.root}`);
    return found.data() as RunDocument;
  }

  /** The newest runs of every migration in the registry, newest first. */
  async listAll(limitPerMigration = 5): Promise<RunDocument[]> {
    const registry = await this.db.collection(this.paths.root).select().get();
    const lists = await Promise.all(registry.docs.map((entry) => this.list(entry.id, limitPerMigration)));
    return lists.flat().sort((a, b) => b.createdAt.toMillis() - a.createdAt.toMillis());
  }
}
