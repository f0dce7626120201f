/**
 * What the mutating routes do to the control data. Each change is one Firestore transaction
 * that re-reads the run, checks the run lifecycle (control/runs.ts) and writes the new status
 * together with its audit event, so two concurrent requests cannot both act on one state and no
 * change lands without its event. Work that takes longer than a request — planning a run,
 * re-dispatching a resumed one — goes to the `planRun` task queue.
 */
import { Timestamp, type Firestore, type Transaction } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import { AuditLog, type RunAuditAction } from '../control/audit';
import type { ControlPaths } from '../control/paths';
import { RegistryStore, type RegistryEntry } from '../control/registry-store';
import { RunStore, assertTransition, newRunDocument, newRunId, type RollbackPolicy, type RunDocument, type RunStatus } from '../control/runs';
import { ChecksumMismatchError } from '../definitions/errors';
import type { MigrationRegistry } from '../definitions/registry';
import type { Migration } from '../definitions/types';
import { planTaskId } from '../transports/task-id';
import type { PlanRunTask } from '../transports/task-payloads';
import type { EnqueueOutcome, TaskQueue } from '../transports/task-queue';
import { identityOf, type VerifiedCaller } from './auth';
import { ApiError } from './errors';

/** Who acts, as run documents and audit events record it. */
export interface Actor {
  /** The `user` of the request body, else the token's email, else its uid. */
  user: string;
  identity: string;
  uid: string;
}

export function actorOf(caller: VerifiedCaller, user: string | undefined): Actor {
  return { user: user ?? caller.email ?? caller.uid, identity: identityOf(caller), uid: caller.uid };
}

/** A run after an action, and the status the action moved it from. */
export interface Transitioned {
  run: RunDocument;
  previousStatus: RunStatus;
}

export interface Dispatched {
  run: RunDocument;
  taskId: string;
  enqueue: EnqueueOutcome;
}

export interface RunRequestsDeps {
  db: Firestore;
  paths: ControlPaths;
  registry: MigrationRegistry;
  config: FiremigrateConfig;
  planQueue: TaskQueue<PlanRunTask>;
}

export class RunRequests {
  private readonly runs: RunStore;
  private readonly entries: RegistryStore;
  private readonly audit: AuditLog;

  constructor(private readonly deps: RunRequestsDeps) {
    this.runs = new RunStore(deps.db, deps.paths);
    this.entries = new RegistryStore(deps.db, deps.paths);
    this.audit = new AuditLog(deps.db, deps.paths);
  }

  /**
   * Creates a run in 'planning' and enqueues its planning task. An executed run is refused (409)
   * while another run holds the migration's live lease or another executed run is still being
   * planned — one active run per migration — and when the migration was applied with another
   * definition. Dry runs write nothing to the app's data and are never refused.
   */
  async start(request: { migrationId: string; execute: boolean; reason: string | null; actor: Actor; rollbackPolicy?: RollbackPolicy }): Promise<Dispatched> {
    const migration = this.deps.registry.get(request.migrationId);
    const mode = request.execute ? 'execute' : 'dry-run';
    const run = newRunDocument({
      runId: newRunId(),
      migrationId: migration.id,
      kind: 'migrate',
      mode,
      user: request.actor.user,
      identity: request.actor.identity,
      reason: request.reason,
      checksum: migration.checksum,
      config: this.deps.config,
      lease: null,
      ...(request.rollbackPolicy ? { rollbackPolicy: request.rollbackPolicy } : {}),
    });
    await this.deps.db.runTransaction(async (tx) => {
      const entry = await this.entries.getIn(tx, migration.id);
      if (request.execute) await this.assertMayStart(tx, entry, migration);
      // The registry entry is what run look-ups walk (RunStore.find): a migration's first run creates it.
      if (!entry) tx.create(this.entries.ref(migration.id), pendingEntry(migration));
      this.runs.createIn(tx, run);
      this.auditIn(tx, 'run.requested', run, request.actor, request.reason, { mode });
    });
    return this.dispatch(run, 0, request.actor, 'failed');
  }

  /**
   * Marks a running run paused. The workers (local runner, `migrateBatch` tasks) read the run's
   * status before each batch and stop taking new ones; commits in flight still land.
   */
  async pause(runId: string, reason: string, actor: Actor): Promise<Transitioned> {
    const { before, after } = await this.act(runId, 'paused', 'run.paused', reason, actor, () => ({ statusReason: `paused by ${actor.user}: ${reason}` }));
    return { run: after, previousStatus: before.status };
  }

  /** Ends a run for good (a final status): its workers stop as for a pause, and it cannot be resumed. */
  async abort(runId: string, reason: string, actor: Actor): Promise<Transitioned> {
    const { before, after } = await this.act(runId, 'aborted', 'run.aborted', reason, actor, () => ({
      statusReason: `aborted by ${actor.user}: ${reason}`,
      finishedAt: Timestamp.now(),
    }));
    return { run: after, previousStatus: before.status };
  }

  /**
   * Moves a paused, emergency-stopped or failed executed run back to 'running' (its `resumes`
   * counter bumped) and enqueues the task that re-dispatches its unfinished partitions.
   */
  async resume(runId: string, reason: string, actor: Actor, options: { acceptDefinitionChange?: boolean } = {}): Promise<Dispatched & Transitioned> {
    const { before, after } = await this.act(runId, 'running', 'run.resumed', reason, actor, (current, entry) => {
      const deployed = this.assertResumable(current, entry, options);
      const change =
        deployed.checksum === current.checksum
          ? {}
          : {
              checksum: deployed.checksum,
              definitionChanges: [
                ...(current.definitionChanges ?? []),
                { from: current.checksum, to: deployed.checksum, user: actor.user, identity: actor.identity, reason, at: Timestamp.now() },
              ],
            };
      return { resumes: current.resumes + 1, statusReason: null, finishedAt: null, ...change };
    });
    return { ...(await this.dispatch(after, after.resumes, actor, before.status)), previousStatus: before.status };
  }

  /**
   * The one transaction of a run action: re-read the run (and its registry entry), check the
   * transition and `prepare`'s own conditions, write the new status with the audit event.
   */
  private async act(
    runId: string,
    to: RunStatus,
    action: RunAuditAction,
    reason: string,
    actor: Actor,
    prepare: (current: RunDocument, entry: RegistryEntry | undefined) => Partial<RunDocument>,
  ): Promise<{ before: RunDocument; after: RunDocument }> {
    const found = await this.runs.find(runId);
    return this.deps.db.runTransaction(async (tx) => {
      const ref = this.runs.ref(found.migrationId, runId);
      const [snapshot, entry] = await Promise.all([tx.get(ref), this.entries.getIn(tx, found.migrationId)]);
      const current = snapshot.data() as RunDocument;
      assertTransition(runId, current.status, to);
      const changes = { ...prepare(current, entry), status: to, updatedAt: Timestamp.now() };
      tx.update(ref, changes);
      this.auditIn(tx, action, current, actor, reason, { previousStatus: current.status });
      return { before: current, after: { ...current, ...changes } };
    });
  }

  private async assertMayStart(tx: Transaction, entry: RegistryEntry | undefined, migration: Migration): Promise<void> {
    try {
      this.entries.assertRunnable(entry, migration);
    } catch (error) {
      if (error instanceof ChecksumMismatchError) throw new ApiError(409, 'conflict', error.message, { migrationId: migration.id });
      throw error;
    }
    if (entry?.activeRunId && entry.lease && entry.lease.expiresAt.toMillis() > Date.now()) {
      throw new ApiError(409, 'conflict', `migration "${migration.id}" is being run by run ${entry.activeRunId}; one run per migration may be active`, {
        migrationId: migration.id,
        activeRunId: entry.activeRunId,
      });
    }
    const planning = await tx.get(this.deps.db.collection(this.deps.paths.runs(migration.id)).where('status', '==', 'planning'));
    const other = planning.docs.map((doc) => doc.data() as RunDocument).find((candidate) => candidate.mode === 'execute');
    if (other) {
      throw new ApiError(409, 'conflict', `migration "${migration.id}" has run ${other.runId} being planned; one run per migration may be active`, {
        migrationId: migration.id,
        activeRunId: other.runId,
        currentStatus: other.status,
      });
    }
  }

  /** Refuses what cannot be resumed; returns the deployed definition the resume will run. */
  private assertResumable(run: RunDocument, entry: RegistryEntry | undefined, options: { acceptDefinitionChange?: boolean }): Migration {
    const refuse = (message: string, facts: Record<string, unknown> = {}) =>
      new ApiError(409, 'conflict', message, { runId: run.runId, currentStatus: run.status, ...facts });
    if (run.kind !== 'migrate' || run.mode !== 'execute') throw refuse(`run ${run.runId} is a ${run.kind} ${run.mode} run; only executed migrate runs can be resumed`);
    if (!this.deps.registry.has(run.migrationId)) throw refuse(`migration "${run.migrationId}" of run ${run.runId} is not deployed with these functions`);
    const deployed = this.deps.registry.get(run.migrationId);
    if (deployed.checksum !== run.checksum && !options.acceptDefinitionChange) {
      throw refuse(
        `run ${run.runId} was started with definition checksum ${run.checksum}, but the deployed "${run.migrationId}" has checksum ` +
          `${deployed.checksum}: resume with "acceptDefinitionChange": true to run the deployed definition (both checksums are recorded)`,
      );
    }
    if (entry?.activeRunId && entry.activeRunId !== run.runId && entry.lease && entry.lease.expiresAt.toMillis() > Date.now()) {
      throw refuse(`migration "${run.migrationId}" is being run by run ${entry.activeRunId}; one run per migration may be active`, {
        activeRunId: entry.activeRunId,
      });
    }
    return deployed;
  }

  /**
   * Enqueues the run's `planRun` task. When the queue refuses, the run goes back to `revertTo`
   * ('failed' for a new run, its status before a resume) — in a transaction that acts only if the
   * run is still as this request left it — and the request fails with 503: no client is told of
   * a run that nothing will work on. If the run had moved on, the task was delivered after all.
   */
  private async dispatch(run: RunDocument, resume: number, actor: Actor, revertTo: RunStatus): Promise<Dispatched> {
    const taskId = planTaskId(run.runId, resume);
    try {
      const enqueue = await this.deps.planQueue.enqueue({ name: taskId, payload: { migrationId: run.migrationId, runId: run.runId, resume } });
      return { run, taskId, enqueue };
    } catch (error) {
      const detail = `the ${resume === 0 ? 'planning' : 'resume'} task could not be enqueued: ${(error as Error).message}`;
      const ref = this.runs.ref(run.migrationId, run.runId);
      const current = await this.deps.db.runTransaction(async (tx) => {
        const stored = (await tx.get(ref)).data() as RunDocument;
        if (stored.status !== run.status || stored.resumes !== run.resumes) return stored;
        tx.update(ref, { status: revertTo, statusReason: detail, updatedAt: Timestamp.now(), ...(revertTo === 'failed' ? { finishedAt: Timestamp.now() } : {}) });
        this.auditIn(tx, REVERT_ACTIONS[revertTo] ?? 'run.failed', run, actor, detail, { taskId, revertedTo: revertTo });
        return null;
      });
      if (current) return { run: current, taskId, enqueue: 'enqueued' };
      throw new ApiError(503, 'unavailable', `run ${run.runId}: ${detail}; the run was put back to "${revertTo}", try again`, { runId: run.runId });
    }
  }

  private auditIn(tx: Transaction, action: RunAuditAction, run: RunDocument, actor: Actor, reason: string | null, details: Record<string, unknown>): void {
    this.audit.appendIn(tx, {
      action,
      migrationId: run.migrationId,
      runId: run.runId,
      user: actor.user,
      identity: actor.identity,
      reason,
      details: { ...details, via: 'api', uid: actor.uid },
    });
  }
}

/** The event recording where a run went back to when its task could not be enqueued. */
const REVERT_ACTIONS: Partial<Record<RunStatus, RunAuditAction>> = {
  failed: 'run.failed',
  paused: 'run.paused',
  emergency_stopped: 'run.stopped',
};

function pendingEntry(migration: Migration): RegistryEntry {
  return {
    id: migration.id,
    version: migration.version,
    checksum: migration.checksum,
    status: 'pending',
    lastRunId: null,
    appliedAt: null,
    appliedBy: null,
    updatedAt: Timestamp.now(),
    activeRunId: null,
    lease: null,
  };
}
