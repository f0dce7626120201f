import { z } from 'zod';

/**
 * The `migrateBatch` task: batch `seq` of `partition` in the partition's `epoch`. Its task id is
 * `taskId(runId, partition, seq, epoch)` (transports/task-id.ts). A delivery whose epoch is older
 * than the partition's is stale (the partition was resumed since) and does nothing.
 */
export const batchTaskSchema = z.strictObject({
  migrationId: z.string().min(1),
  runId: z.string().regex(/^[A-Za-z0-9_-]+$/),
  partition: z.string().regex(/^[A-Za-z0-9_-]+$/),
  seq: z.number().int().min(0),
  epoch: z.number().int().min(0),
});

export type BatchTask = z.infer<typeof batchTaskSchema>;

/**
 * Parses a delivered payload; null (with the problems in `problems`) when it is malformed. A
 * malformed task is dropped, not failed: a retry would deliver the same bytes again.
 */
export function parseTaskPayload<T>(schema: z.ZodType<T>, payload: unknown): { task: T; problems: null } | { task: null; problems: string } {
  const parsed = schema.safeParse(payload);
  if (parsed.success) return { task: parsed.data, problems: null };
  return { task: null, problems: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(payload)'}: ${issue.message}`).join('; ') };
}
