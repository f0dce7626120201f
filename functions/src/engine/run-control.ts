/**
 * Pausing and aborting a run from another process (`firemigrate pause|abort`). The request IS
 * the run's new status, written in one transaction with its audit event (the API's routes do
 * the same): whoever works on the run — the local runner of another process, the Cloud Tasks
 * batches — watches the run's status and takes no new batch once it is not `running`; its
 * commits in flight still land, then it records its figures and releases the lease, keeping the
 * status and reason written here.
 *
 * When no live process holds the run (its lease expired: the holder crashed), there is nobody to
 * hand the lease back, so the same transaction releases it — and an abort marks the migration's
 * registry entry failed, as the holder would have.
 */
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { AuditLog } from '../control/audit';
import type { ControlPaths } from '../control/paths';
import { RegistryStore, type RegistryEntry } from '../control/registry-store';
import { RunStore, assertTransition, type RunDocument, type RunStatus } from '../control/runs';

export type ControlAction = 'pause' | 'abort';

const TARGET: Record<ControlAction, RunStatus> = { pause: 'paused', abort: 'aborted' };

export interface ControlActor {
  user: string;
  identity: string;
  reason: string | null;
}

export interface ControlResult {
  run: RunDocument;
  previousStatus: RunStatus;
  /** The run already had the requested status: nothing was written. */
  unchanged: boolean;
  /** The process that held the run's live lease when the status was written; it stops within one batch and releases the lease. */
  holder: string | null;
}

/** Moves `runId` to paused or aborted (see the file comment); refuses what the run lifecycle forbids. */
export async function requestStop(db: Firestore, paths: ControlPaths, runId: string, action: ControlAction, actor: ControlActor): Promise<ControlResult> {
  const runs = new RunStore(db, paths);
  const registry = new RegistryStore(db, paths);
  const audit = new AuditLog(db, paths);
  const found = await runs.find(runId);
  const to = TARGET[action];
  return db.runTransaction(async (tx) => {
    const ref = runs.ref(found.migrationId, runId);
    const [snapshot, entry] = await Promise.all([tx.get(ref), registry.getIn(tx, found.migrationId)]);
    const current = snapshot.data() as RunDocument;
    if (current.status === to) return { run: current, previousStatus: current.status, unchanged: true, holder: null };
    assertTransition(runId, current.status, to);
    const now = Timestamp.now();
    const holds = entry?.activeRunId === runId && entry.lease !== null;
    const live = holds && entry!.lease!.expiresAt.toMillis() > now.toMillis() ? entry!.lease!.holder : null;
    const statusReason = `${action === 'pause' ? 'paused' : 'aborted'} by ${actor.user}${actor.reason ? `: ${actor.reason}` : ''}`;
    const changes: Partial<RunDocument> = { status: to, statusReason, updatedAt: now, ...(action === 'abort' ? { finishedAt: now } : {}) };
    if (!live) changes.lease = null;
    tx.update(ref, changes);
    const entryChanges: Partial<RegistryEntry> = {};
    if (!live && holds) Object.assign(entryChanges, { activeRunId: null, lease: null });
    if (!live && action === 'abort' && entry?.lastRunId === runId && entry.status === 'running') entryChanges.status = 'failed';
    if (Object.keys(entryChanges).length > 0) tx.update(registry.ref(found.migrationId), { ...entryChanges, updatedAt: now });
    audit.appendIn(tx, {
      action: action === 'pause' ? 'run.paused' : 'run.aborted',
      migrationId: found.migrationId,
      runId,
      user: actor.user,
      identity: actor.identity,
      reason: actor.reason,
      details: { previousStatus: current.status, holder: live, via: 'cli' },
    });
    return { run: { ...current, ...changes } as RunDocument, previousStatus: current.status, unchanged: false, holder: live };
  });
}

/**
 * Resolves once the holder of `runId` has released its lease (it has stopped: its batches in
 * flight settled and its figures are recorded), or with false after `timeoutMs`. Watches the run
 * document instead of polling it.
 */
export function waitForRelease(db: Firestore, paths: ControlPaths, run: Pick<RunDocument, 'migrationId' | 'runId'>, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (released: boolean | Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      unsubscribe();
      if (released instanceof Error) reject(released);
      else resolve(released);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    const unsubscribe = db.doc(paths.run(run.migrationId, run.runId)).onSnapshot(
      (snapshot) => {
        const current = snapshot.data() as RunDocument | undefined;
        if (!current?.lease || current.lease.expiresAt.toMillis() <= Date.now()) done(true);
      },
      (error) => done(error),
    );
  });
}
