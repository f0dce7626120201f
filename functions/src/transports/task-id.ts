import { createHash } from 'node:crypto';

/**
 * Cloud Tasks ids: the SDK refuses anything but `[A-Za-z0-9_-]` (at most 500 characters), and a
 * reused id is refused as `functions/task-already-exists` — for about an hour after the task ran
 * in production, for the whole session on the emulator. So ids are sha256 hex digests of the
 * task's identity: always valid, and equal exactly when the identity is.
 */
const ID_PART = /^[A-Za-z0-9_-]+$/;

function checkPart(name: string, value: string): void {
  if (!ID_PART.test(value)) throw new RangeError(`${name} must match [A-Za-z0-9_-]+ (it is a separator-free part of a task id), got ${JSON.stringify(value)}`);
}

function checkCounter(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${name} must be a non-negative integer, got ${value}`);
}

function digest(parts: readonly (string | number)[]): string {
  // No part contains '|' (checked above), so the joined text names one identity only.
  return createHash('sha256').update(parts.join('|')).digest('hex');
}

/**
 * The `migrateBatch` task of batch `seq` of `partition` in `run`, in the partition's `epoch`
 * (bumped on every resume, so a resumed partition's tasks never collide with ids the queue still
 * remembers from before).
 */
export function taskId(runId: string, partition: string, seq: number, epoch: number): string {
  checkPart('runId', runId);
  checkPart('partition', partition);
  checkCounter('seq', seq);
  checkCounter('epoch', epoch);
  return digest([runId, partition, seq, epoch]);
}

/** The `planRun` task of a run: `resume` 0 plans it, n re-dispatches it after its n-th resume. */
export function planTaskId(runId: string, resume: number): string {
  checkPart('runId', runId);
  checkCounter('resume', resume);
  return digest([runId, 'plan', resume]);
}
