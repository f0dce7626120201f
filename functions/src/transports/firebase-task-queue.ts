import type { TaskQueue as AdminTaskQueue } from 'firebase-admin/functions';
import type { EnqueueOptions, EnqueueOutcome, Task, TaskQueue } from './task-queue';

/** The code firebase-admin gives a task whose id the queue still remembers. */
const TASK_ALREADY_EXISTS = 'functions/task-already-exists';

/**
 * Cloud Tasks through firebase-admin: `getFunctions().taskQueue(QUEUES.x)` enqueues onto the
 * queue of the `onTaskDispatched` function of that name (the Cloud Tasks emulator when
 * CLOUD_TASKS_EMULATOR_HOST is set). The task name becomes the Cloud Tasks id, so a repeated
 * enqueue of one task is refused by the queue itself and reported as 'already-exists'.
 */
export class FirebaseTaskQueue<P extends object> implements TaskQueue<P> {
  constructor(private readonly queue: AdminTaskQueue<P>) {}

  async enqueue(task: Task<P>, options: EnqueueOptions = {}): Promise<EnqueueOutcome> {
    try {
      await this.queue.enqueue(task.payload, {
        id: task.name,
        ...(options.delaySeconds !== undefined ? { scheduleDelaySeconds: options.delaySeconds } : {}),
      });
      return 'enqueued';
    } catch (error) {
      if ((error as { code?: unknown }).code === TASK_ALREADY_EXISTS) return 'already-exists';
      throw error;
    }
  }
}
