/**
 * `onMigrationAlert`: Pub/Sub carries no publisher identity, so the message only names a stored
 * health snapshot; the handler re-reads it and stops (emergency_stopped, state preserved, reason
 * recorded) each run the SNAPSHOT marks critical and that is still running in the session the
 * snapshot saw. Delivery is at least once: the event id is recorded in the same transaction as the
 * stops, so a redelivery changes nothing.
 */
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import type { Logger } from '../cli/log';
import { AuditLog } from '../control/audit';
import type { ControlPaths } from '../control/paths';
import type { RunDocument } from '../control/runs';
import type { StoredHealthSnapshot } from '../monitor/health-run';
import type { TaskQueue } from '../transports/task-queue';
import { PIPELINE_IDENTITY } from './context';
import { rollbackTaskId, type RollbackTask } from './rollback-payload';

export type AlertOutcome = 'malformed' | 'duplicate' | 'no-snapshot' | 'not-critical' | 'stopped' | 'stale' | 'nothing-running';

const alertMessage = z.object({ snapshotId: z.string().regex(/^[A-Za-z0-9_-]+$/) });

/** Where handled alert events are recorded (de-duplication by event id). */
export function alertEventsPath(paths: ControlPaths): string {
  return `${paths.root}/_control/alert-events`;
}

/**
 * `rollbackQueue`: where a stopped run whose `rollbackPolicy` is 'auto' gets its rollback started
 * (pipeline/rollback-task.ts, a `start` task); without it no run is rolled back automatically.
 */
export async function handleMigrationAlert(
  deps: { db: Firestore; paths: ControlPaths; log: Logger; rollbackQueue?: TaskQueue<RollbackTask> },
  eventId: string,
  json: unknown,
): Promise<AlertOutcome> {
  const { db, paths, log } = deps;
  const parsed = alertMessage.safeParse(json);
  if (!parsed.success || !/^[A-Za-z0-9_-]+$/.test(eventId)) {
    log.error(`onMigrationAlert: ignoring event ${eventId}: the message does not name a health snapshot`, { eventId });
    return 'malformed';
  }
  const snapshotId = parsed.data.snapshotId;
  const snapshot = (await db.collection(paths.healthSnapshots()).doc(snapshotId).get()).data() as StoredHealthSnapshot | undefined;
  const eventRef = db.collection(alertEventsPath(paths)).doc(eventId);
  const audit = new AuditLog(db, paths);
  let autoRollback: RunDocument[] = [];
  const outcome = await db.runTransaction(async (tx): Promise<AlertOutcome> => {
    autoRollback = [];
    if ((await tx.get(eventRef)).exists) return 'duplicate';
    const critical = snapshot?.status === 'CRITICAL' ? snapshot.runs.filter((run) => run.critical) : [];
    const refs = critical.map((run) => db.doc(paths.run(run.migrationId, run.runId)));
    const current = refs.length > 0 ? await tx.getAll(...refs) : [];
    const stopped: string[] = [];
    const stale: string[] = [];
    current.forEach((runSnapshot, index) => {
      const run = runSnapshot.data() as RunDocument | undefined;
      if (run?.status !== 'running') return;
      // An old snapshot re-sent (or redelivered late) after an operator resumed the run says nothing
      // about the new session: it must neither stop it nor roll it back. Snapshots stored before
      // `resumes` was recorded count as the first session.
      if ((critical[index].resumes ?? 0) !== run.resumes) {
        stale.push(run.runId);
        return;
      }
      const issues = critical[index].checks.filter((check) => check.status === 'critical').map((check) => check.message);
      const reason = `emergency stop: health snapshot ${snapshotId} is CRITICAL (${issues.join('; ')})`;
      tx.update(runSnapshot.ref, { status: 'emergency_stopped', statusReason: reason, updatedAt: Timestamp.now() });
      audit.appendIn(tx, {
        action: 'run.stopped',
        migrationId: run.migrationId,
        runId: run.runId,
        user: 'healthCheck',
        identity: PIPELINE_IDENTITY,
        reason,
        details: { snapshotId, eventId, via: 'pubsub' },
      });
      stopped.push(run.runId);
      if (run.rollbackPolicy === 'auto') autoRollback.push({ ...run, statusReason: reason });
    });
    tx.create(eventRef, { eventId, snapshotId, stoppedRuns: stopped, staleRuns: stale, handledAt: Timestamp.now() });
    if (!snapshot) return 'no-snapshot';
    if (snapshot.status !== 'CRITICAL') return 'not-critical';
    if (stopped.length > 0) log.error(`onMigrationAlert: stopped ${stopped.join(', ')} on health snapshot ${snapshotId}`, { eventId, snapshotId });
    if (stale.length > 0) log.warning(`onMigrationAlert: ignored health snapshot ${snapshotId} for ${stale.join(', ')}: taken before the run was resumed`, { eventId, snapshotId, staleRuns: stale });
    return stopped.length > 0 ? 'stopped' : stale.length > 0 ? 'stale' : 'nothing-running';
  });
  if (outcome === 'stopped' && deps.rollbackQueue) {
    for (const run of autoRollback) {
      const task: RollbackTask = { kind: 'start', migrationId: run.migrationId, sourceRunId: run.runId, epoch: run.resumes, reason: `auto-rollback (rollbackPolicy auto) after ${run.statusReason}` };
      await deps.rollbackQueue.enqueue({ name: rollbackTaskId(task), payload: task });
      log.error(`onMigrationAlert: run ${run.runId} has rollbackPolicy auto: its rollback was requested`, { eventId, runId: run.runId });
    }
  }
  return outcome;
}
