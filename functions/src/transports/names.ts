/**
 * The names the deployed functions and their callers must agree on, in one place: a Pub/Sub
 * topic is created by the `onMessagePublished` function subscribed to it, and a task queue is
 * named after the `onTaskDispatched` function that consumes it, so a typo here would publish
 * into a topic nobody reads or enqueue onto a queue that does not exist.
 */
export const TOPICS = {
  /** Health alerts; `onMigrationAlert` re-checks the stored health snapshot and stops the run. */
  alerts: 'migration-alerts',
  /** Rollback requests (console, operators); `onRollbackRequest` acts only on authorised ones. */
  rollback: 'migration-rollback',
} as const;

export type TopicName = (typeof TOPICS)[keyof typeof TOPICS];

export const QUEUES = {
  /** One batch of one partition; each task enqueues its partition's next batch. */
  migrateBatch: 'migrateBatch',
  /**
   * Planning a run (partitions from key ranges) and re-dispatching a resumed run's partitions:
   * work too long for the HTTP request that asks for it.
   */
  planRun: 'planRun',
  /**
   * One batch of a rollback run (the before-images of one source run after a cursor); each task
   * enqueues the next, and the last one finishes the rollback.
   */
  rollbackBatch: 'rollbackBatch',
} as const;

export type QueueName = (typeof QUEUES)[keyof typeof QUEUES];
