import { InvalidArgumentError, type Command } from 'commander';
import { describeModeOutcome, modeAfterCleanup, modeForCleanupRun, targetCollectionId } from '../../compat/mode-policy';
import { CleanupError, cleanupMigrationFor } from '../../cleanup/cleanup-migration';
import { DEFAULT_RETENTION_DAYS, purgeBeforeImages, reviewRetention, type PurgeResult, type RetentionReview } from '../../cleanup/retention';
import { ControlPaths } from '../../control/paths';
import { RegistryStore } from '../../control/registry-store';
import { planMigration } from '../../engine/planner';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, loadCliRegistry, loadContextConfig, migrationById, withFirestore, type GlobalOptions } from '../context';
import { printJson, printLines } from '../output';
import { renderPlanReport } from './plan';
import { cliCaller, executeRun, progressModeFor, resumeArgs } from './run';

interface CleanupFlags {
  execute?: boolean;
  force?: boolean;
  retentionDays: number;
  resume?: string;
  reason?: string;
}

export function parseRetentionDays(text: string): number {
  const days = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text.trim()) || !Number.isFinite(days)) throw new InvalidArgumentError(`expected a number of days of 0 or more, got "${text}"`);
  return days;
}

function renderReview(review: RetentionReview): string[] {
  const lines = [`Before-images of ${review.migrationId} (retention ${review.retentionDays} days; registry status ${review.registryStatus ?? 'never run'}):`];
  if (review.runs.length === 0) lines.push('  no executed runs');
  for (const run of review.runs) {
    const state = run.beforeImages === 0 ? 'none stored' : run.expired ? 'past retention: deleted by cleanup --execute' : `kept until ${run.expiresAt.toDate().toISOString()}`;
    lines.push(`  run ${run.runId} (${run.status}): ${run.beforeImages} before-images, last write ${run.lastWriteAt.toDate().toISOString()} — ${state}`);
  }
  return lines;
}

function reviewJson(review: RetentionReview) {
  const run = (r: RetentionReview['runs'][number]) => ({ ...r, lastWriteAt: r.lastWriteAt.toDate().toISOString(), expiresAt: r.expiresAt.toDate().toISOString() });
  return { ...review, runs: review.runs.map(run), rollbackPossibleFrom: review.rollbackPossibleFrom.map(run), purgeable: review.purgeable.map(run) };
}

/** Why a rollback of the migration is still possible, or null. */
function rollbackStillPossible(review: RetentionReview): string | null {
  if (review.rollbackPossibleFrom.length === 0) return null;
  const until = Math.max(...review.rollbackPossibleFrom.map((run) => run.expiresAt.toMillis()));
  return (
    `migration "${review.migrationId}" can still be rolled back: ${review.rollbackPossibleFrom.map((run) => `run ${run.runId} (${run.beforeImages} before-images)`).join(', ')} ` +
    `within the retention period of ${review.retentionDays} days (until ${new Date(until).toISOString()}). Cleanup removes the legacy fields old clients read; ` +
    'pass --force to clean up anyway (the cleanup has its own before-images and can be rolled back itself)'
  );
}

export function register(program: Command): void {
  program
    .command('cleanup <migration>')
    .description(
      'The contract step: remove the migration\'s legacyFields from its migrated documents as a run of its own (with before-images: ' +
        'it can be rolled back), end dual-read for the collection, and delete before-images older than the retention period. ' +
        'Refused while the migration can still be rolled back, unless --force. Without --execute: the dry run (nothing is written).',
    )
    .option('--execute', 'write: run the cleanup and delete the expired before-images (without it, nothing is written)')
    .option('--force', 'clean up although a rollback of the migration is still possible')
    .option('--retention-days <n>', 'days before-images are kept after their run last wrote', parseRetentionDays, DEFAULT_RETENTION_DAYS)
    .option('--resume <runId>', 'continue a paused or failed cleanup run (with --execute)')
    .option('--reason <text>', 'why (recorded in the run document and the audit trail)')
    .addHelpText('after', '\nExit codes: 0 done (or the dry run), 1 refused or the cleanup run did not complete, 2 usage or configuration error.')
    .action(async (migrationId: string, flags: CleanupFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (flags.resume && !flags.execute) throw new CliError('--resume continues writing documents: add --execute.', EXIT_USAGE);
      const config = loadContextConfig();
      const registry = await loadCliRegistry(globals.migrations);
      const migration = migrationById(registry, migrationId);
      let cleanup;
      try {
        cleanup = cleanupMigrationFor(migration);
      } catch (error) {
        if (error instanceof CleanupError) throw new CliError(error.message, EXIT_USAGE);
        throw error;
      }
      const paths = new ControlPaths(config.migration.controlCollection);
      await withFirestore(globals, async (connection) => {
        const { db } = connection;
        const entries = new RegistryStore(db, paths);
        const [entry, cleanupEntry] = await Promise.all([entries.get(migration.id), entries.get(cleanup.id)]);
        const [review, cleanupReview] = await Promise.all([
          reviewRetention(db, paths, migration.id, flags.retentionDays),
          reviewRetention(db, paths, cleanup.id, flags.retentionDays),
        ]);
        const refusal =
          entry?.status !== 'applied'
            ? `migration "${migration.id}" is ${entry?.status ?? 'not run yet'}: cleanup contracts an applied migration (run it to completion first)`
            : flags.force
              ? null
              : rollbackStillPossible(review);
        const alreadyCleaned = cleanupEntry?.status === 'applied';

        if (!flags.execute) {
          const plan = alreadyCleaned ? null : await planMigration(db, cleanup, config);
          if (globals.json) {
            printJson({ migrationId: migration.id, cleanupMigrationId: cleanup.id, legacyFields: migration.legacyFields, refusal, alreadyCleaned, plan, beforeImages: [reviewJson(review), reviewJson(cleanupReview)] });
          } else {
            printLines([
              `Cleanup of ${migration.id}: removes ${migration.legacyFields!.join(', ')} as run(s) of "${cleanup.id}".`,
              ...(refusal ? [`Would be REFUSED: ${refusal}.`] : []),
              ...(alreadyCleaned ? ['Already cleaned up (the cleanup migration is applied).'] : renderPlanReport(plan!)),
              '',
              ...renderReview(review),
              ...renderReview(cleanupReview),
              '',
              `Nothing was written. To clean up: firemigrate cleanup ${migration.id} --execute${refusal && entry?.status === 'applied' ? ' --force' : ''}`,
            ]);
          }
          return;
        }
        if (refusal) throw new CliError(`Refused: ${refusal}.`, EXIT_FAILURE);

        const caller = await cliCaller(globals, connection, flags.reason);
        let runStatus: string = 'already-cleaned';
        let exitCode = EXIT_OK;
        if (!alreadyCleaned || flags.resume) {
          const result = await executeRun(connection, {
            migration: cleanup,
            config,
            caller,
            resume: flags.resume,
            mode: progressModeFor(globals),
            report: true,
            handleSignals: true,
            resumeArgs: resumeArgs(globals),
            modePolicy: modeForCleanupRun,
          });
          runStatus = result.outcome.status;
          exitCode = result.exitCode;
          if (result.outcome.status === 'completed') {
            const collection = targetCollectionId(migration.target);
            const ofCollection = registry.all().filter((candidate) => targetCollectionId(candidate.target) === collection).map((candidate) => candidate.id);
            const mode = await modeAfterCleanup(db, paths, { migration: cleanup, runId: result.outcome.runId, user: caller.user, identity: caller.identity }, ofCollection);
            process.stderr.write(`${describeModeOutcome(mode)}\n`);
          }
        }
        const purged: PurgeResult[] = [];
        if (runStatus === 'completed' || runStatus === 'already-cleaned') {
          // Reviewed again: the cleanup run just written has before-images of its own (kept).
          for (const id of [migration.id, cleanup.id]) purged.push(...(await purgeBeforeImages(db, paths, await reviewRetention(db, paths, id, flags.retentionDays), caller)));
        }
        const summary = { type: 'cleanup', migrationId: migration.id, cleanupMigrationId: cleanup.id, runStatus, purged };
        if (globals.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
        else {
          process.stderr.write(
            `Cleanup of ${migration.id}: ${runStatus}; before-images deleted after ${flags.retentionDays} days: ` +
              `${purged.length ? purged.map((run) => `${run.beforeImages} of ${run.migrationId}/${run.runId}`).join(', ') : 'none'}.\n`,
          );
        }
        process.exitCode = exitCode;
      });
    });
}
