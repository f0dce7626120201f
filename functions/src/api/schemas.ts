import { z } from 'zod';
import type { MigrationRegistry } from '../definitions/registry';
import { invalidRequest } from './errors';

const reason = z.string().trim().min(1, { error: 'reason must not be empty' }).max(1000);
const user = z.string().trim().min(1, { error: 'user must not be empty' }).max(200);

/** `POST /api/migration/runs`. Unknown keys are refused: a typo such as `exceute` must not start a dry run silently. */
export function startRunBody(registry: MigrationRegistry) {
  return z.strictObject({
    migrationId: z
      .string()
      .min(1)
      .refine((id) => registry.has(id), {
        error: (issue) =>
          `unknown migration ${JSON.stringify(issue.input)}; deployed migrations: ${registry.all().map((m) => m.id).join(', ') || 'none'}`,
      }),
    /** false (the default): a dry run, which writes nothing to the app's collections. */
    execute: z.boolean().default(false),
    reason: reason.optional(),
    /** Who answers for the run; the verified token's email (or uid) when absent. */
    user: user.optional(),
    /** 'auto': when a health alert emergency-stops the run, `onMigrationAlert` rolls it back too. */
    rollbackPolicy: z.enum(['manual', 'auto']).default('manual'),
  });
}

/** `POST /api/migration/runs/:id/pause|resume|abort`: a stop or a resume always says why. */
export const runActionBody = z.strictObject({
  reason,
  user: user.optional(),
});

/**
 * `POST /api/migration/runs/:id/resume`: `acceptDefinitionChange` lets the resume run the deployed
 * definition although its checksum differs from the run's (the fix of a failing transform), as the
 * CLI's `--accept-definition-change`; both checksums are recorded.
 */
export const resumeRunBody = runActionBody.extend({
  acceptDefinitionChange: z.boolean().optional(),
});

/**
 * `POST /api/migration/runs/:id/rollback`: without `confirm: true` it answers the assessment and
 * writes nothing; with it (and a reason) it starts the rollback. `scope: 'migration'` rolls back
 * every executed run of the run's migration instead of this run only.
 */
export const rollbackBody = z
  .strictObject({
    confirm: z.boolean().default(false),
    reason: reason.optional(),
    user: user.optional(),
    /** Restore conflicting documents too (their migrated fields changed after the migration). */
    force: z.boolean().default(false),
    strategy: z.enum(['restore', 'revert']).optional(),
    scope: z.enum(['run', 'migration']).default('run'),
  })
  .refine((body) => !body.confirm || body.reason !== undefined, {
    error: 'reason is required with confirm: true (it is recorded in the rollback run and the audit trail)',
    path: ['reason'],
  });

export function parseBody<S extends z.ZodType>(schema: S, body: unknown): z.output<S> {
  // No body (or not JSON) reaches here as undefined: report it as the empty object it stands for.
  const result = schema.safeParse(body ?? {});
  if (!result.success) throw invalidRequest('the request body', result.error.issues);
  return result.data;
}

/** Run ids are `[A-Za-z0-9_-]` (see `newRunId`); anything else cannot name a run. */
export const RUN_ID = /^[A-Za-z0-9_-]{1,128}$/;
