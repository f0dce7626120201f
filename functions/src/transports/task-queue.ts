/**
 * The task-queue port (umzug-style: one method). Delivery is at least once: a task can run
 * twice, concurrently with itself, or after a later task — handlers get their safety from
 * Firestore (batch markers created with `create()`, run status), never from the queue.
 */
export interface Task<P> {
  /** The task id (see task-id.ts): a second enqueue of one name is refused as 'already-exists'. */
  name: string;
  /** JSON data: it crosses the wire as JSON, so class instances arrive as plain objects. */
  payload: P;
}

export interface EnqueueOptions {
  /** Earliest dispatch, in seconds from now (the Cloud Tasks emulator ignores it). */
  delaySeconds?: number;
}

export type EnqueueOutcome = 'enqueued' | 'already-exists';

export interface TaskQueue<P> {
  /** 'already-exists' is success: that task was enqueued before (see DESIGN.md, pipeline). */
  enqueue(task: Task<P>, options?: EnqueueOptions): Promise<EnqueueOutcome>;
}

/** What a delivery tells its handler (Cloud Tasks: the task name and X-CloudTasks-TaskRetryCount). */
export interface TaskDelivery {
  id: string;
  /** Failed attempts before this one. */
  retryCount: number;
}

/** The Cloud Tasks SDK's rule for task ids, applied by every adapter so tests meet it too. */
export const TASK_ID_PATTERN = /^[A-Za-z0-9_-]{1,500}$/;
