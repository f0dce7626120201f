import { z } from 'zod';

/**
 * The `planRun` task. `resume` 0: plan the run (partitions from key ranges, then one
 * `migrateBatch` task per partition) and move it from 'planning' to 'running'. `resume` n > 0:
 * the run was resumed for the n-th time (its `resumes` counter); compute each unfinished
 * partition's resume point, bump its epoch and dispatch it again. A handler finding the run's
 * `resumes` different from `resume`, or the run no longer in the status the task expects, drops
 * the task: it is stale (deliveries are at least once).
 */
export const planRunTaskSchema = z.strictObject({
  migrationId: z.string().min(1),
  runId: z.string().regex(/^[A-Za-z0-9_-]+$/),
  resume: z.number().int().min(0),
});

export type PlanRunTask = z.infer<typeof planRunTaskSchema>;
