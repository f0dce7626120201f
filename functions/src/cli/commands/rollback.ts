/**
 * `firemigrate rollback <migration|runId>`: without --execute the assessment (documents to
 * restore, conflicts, impact, readiness, estimate; nothing is written). With --execute, behind
 * the gate of rollback-gate.ts, the rollback run in this process with a progress display, then
 * its outcome and validation. SIGINT/SIGTERM pause it (resumable: `--resume <rollbackRunId>`),
 * as for `run`. `--backup-id` is the backup-restoration strategy: an import of a managed export
 * (not exact; see rollback/backup/managed-backups.ts).
 */
import { Option, type Command } from 'commander';
import type { FiremigrateConfig } from '../../config';
import { leaseSettings, newLeaseHolder } from '../../control/lease';
import { ControlPaths } from '../../control/paths';
import type { RunDocument } from '../../control/runs';
import { withCleanupMigrations } from '../../cleanup/cleanup-migration';
import type { MigrationRegistry } from '../../definitions/registry';
import type { Migration } from '../../definitions/types';
import { handleShutdownSignals, signalExitCode } from '../../engine/shutdown';
import { WireClient } from '../../engine/wire/client';
import { assessRollback, resumeRollback, startRollback } from '../../rollback';
import { ManagedBackupError, type ImportPlan } from '../../rollback/backup/managed-backups';
import type { RollbackAssessment, RollbackContext, RollbackOutcome, RollbackSession, RollbackStrategy, RollbackValidation } from '../../rollback/types';
import {
  CliError,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  loadCliRegistry,
  loadContextConfig,
  migrationById,
  resolveCaller,
  withFirestore,
  type FirestoreConnection,
  type GlobalOptions,
} from '../context';
import type { RunLog } from '../../engine/runner';
import { createLogger, type Logger } from '../log';
import { formatCount, formatDuration, printJson, printLines, renderTable } from '../output';
import { rollbackRefusals } from '../rollback-gate';
import { RollbackProgressDisplay } from '../rollback-progress';
import { findRun } from '../run-lookup';
import { managedBackups, withBackupAdmin } from './backup';
import { progressModeFor, resumeArgs } from './run';

interface RollbackFlags {
  execute?: boolean;
  reason?: string;
  force?: boolean;
  strategy?: RollbackStrategy;
  backupId?: string;
  acceptInexact?: boolean;
  resume?: string;
}

/** What a `<migration|runId>` argument names: a whole migration, or one of its migrate runs. */
export interface RollbackTarget {
  migration: Migration;
  runId?: string;
}

/**
 * A registered migration id names the migration (every run of it); anything else is looked up as
 * a run id, which must be an executed migrate run (a rollback run is continued with --resume).
 */
export async function resolveRollbackTarget(connection: FirestoreConnection, paths: ControlPaths, registry: MigrationRegistry, id: string): Promise<RollbackTarget> {
  if (registry.has(id)) return { migration: registry.get(id) };
  let run: RunDocument;
  try {
    run = await findRun(connection, paths, id);
  } catch (error) {
    if (!(error instanceof CliError)) throw error;
    throw new CliError(`"${id}" is neither a migration (known: ${registry.all().map((m) => m.id).join(', ')}) nor a run id: ${error.message}`, EXIT_USAGE);
  }
  if (run.kind === 'rollback') {
    throw new CliError(`Run ${id} is itself a rollback run; to continue it: firemigrate rollback --resume ${id} --execute --reason <text> --user <name>`, EXIT_USAGE);
  }
  return { migration: migrationById(registry, run.migrationId), runId: run.runId };
}

/** The rollback engine's context for a CLI process (also the demo's). */
export function rollbackContext(connection: FirestoreConnection, wire: WireClient, config: FiremigrateConfig, registry: MigrationRegistry, log: RunLog): RollbackContext {
  return {
    db: connection.db,
    wire,
    config,
    paths: new ControlPaths(config.migration.controlCollection),
    registry,
    lease: leaseSettings(config),
    holder: newLeaseHolder(),
    log,
  };
}

/** `firemigrate rollback --resume <id> --execute …`, with the global flags it needs last. */
export function rollbackResumeCommand(rollbackRunId: string, extraArgs: readonly string[]): string {
  return ['firemigrate', 'rollback', '--resume', rollbackRunId, '--execute', '--reason', '<text>', '--user', '<name>', ...extraArgs].join(' ');
}

export function renderAssessment(assessment: RollbackAssessment): string[] {
  const scope = assessment.scope.runId ? `run ${assessment.scope.runId}` : 'every executed run';
  const { documents } = assessment;
  const lines = [
    `Rollback assessment of "${assessment.migrationId}" (${scope})`,
    `Strategy: ${assessment.strategy.chosen}${assessment.strategy.overridden ? ' (requested)' : ''} — ${assessment.strategy.reason}`,
    '',
  ];
  if (assessment.runs.length > 0) {
    lines.push('Runs, in the order they are rolled back (newest first):');
    lines.push(...renderTable(['run', 'status', 'before-images'], assessment.runs.map((run) => [run.runId, run.status, formatCount(run.backups)])), '');
  }
  lines.push(
    'Documents:',
    ...renderTable(
      ['total', 'to restore', 'already restored', 'conflicts', 'missing documents', 'missing before-images'],
      [[documents.total, documents.toRestore, documents.alreadyRestored, documents.conflicts, documents.missingDocuments, documents.missingBackups].map(formatCount)],
    ),
    '',
  );
  if (assessment.conflicts.length > 0) {
    lines.push(`Conflicts (migrated fields changed since the migration; left alone unless --force):`);
    lines.push(...assessment.conflicts.map((conflict) => `  ${conflict.path} (run ${conflict.runId}): ${conflict.reason}`));
    if (assessment.conflictsNotListed > 0) lines.push(`  … and ${formatCount(assessment.conflictsNotListed)} more`);
    lines.push('');
  }
  if (assessment.impact.length > 0) {
    lines.push('User impact:');
    lines.push(
      ...assessment.impact.map(
        (impact) => `  ${impact.name}: ${impact.count === null ? `unknown (${impact.error ?? 'not counted'})` : formatCount(impact.count)}${impact.description ? ` — ${impact.description}` : ''}`,
      ),
      '',
    );
  }
  lines.push('Readiness:', ...assessment.readiness.map((check) => `  [${check.ok ? 'ok' : 'FAIL'}] ${check.check}: ${check.detail}`), '');
  lines.push(`Estimated duration: ${assessment.estimatedDurationMs === null ? 'unknown (no measured batch latencies)' : formatDuration(assessment.estimatedDurationMs / 1000)}`);
  lines.push(`Ready: ${assessment.ready ? 'yes' : 'NO (see the failed checks above)'}`);
  return lines;
}

export function renderImportPlan(plan: ImportPlan, recorded: boolean): string[] {
  return [
    `Backup restoration from backup ${plan.backupId}${recorded ? '' : ' (NOT recorded in the control collection)'}:`,
    `  import ${plan.collectionIds.join(', ')} into ${plan.database.projectId}/${plan.database.databaseId} from ${plan.inputUriPrefix ?? '(unknown: no record)'}`,
    `  NOT EXACT: ${plan.inexact}.`,
  ];
}

function renderValidation(validation: RollbackValidation): string[] {
  const lines = [
    `Validation ${validation.ok ? 'passed' : 'FAILED'}: ${formatCount(validation.equal)}/${formatCount(validation.sampled)} sampled documents equal their before-images; ` +
      `${formatCount(validation.fromSchema.passed)}/${formatCount(validation.fromSchema.checked)} parse with the source schema.`,
  ];
  for (const path of validation.mismatches) lines.push(`  differs from its before-image: ${path}`);
  for (const failure of validation.fromSchema.failures) lines.push(`  fails the source schema: ${failure.path} (${failure.issues})`);
  for (const probe of validation.probes) lines.push(`  probe ${probe.name}: ${probe.ok ? 'ok' : 'FAILED'} in ${probe.latencyMs} ms — ${probe.detail}`);
  return lines;
}

function rollbackLogger(mode: ReturnType<typeof progressModeFor>, display: () => RollbackProgressDisplay | undefined): Logger {
  if (mode === 'bar' || mode === 'line') {
    return createLogger({ format: 'text', write: (line) => (display() ? display()!.write(line) : process.stderr.write(line)) });
  }
  return createLogger({ format: 'json', write: (line) => (mode === 'json' ? process.stderr : process.stdout).write(line) });
}

function summaryOf(outcome: RollbackOutcome, resume: string | null) {
  return {
    type: 'summary' as const,
    runId: outcome.runId,
    migrationId: outcome.migrationId,
    strategy: outcome.strategy,
    status: outcome.status,
    statusReason: outcome.statusReason,
    totals: outcome.totals,
    validation: outcome.validation,
    error: outcome.error?.message ?? null,
    resumeCommand: resume,
  };
}

/** The rollback run in this process: progress display, signal handling, summary. Returns the exit code. */
async function executeRollback(
  ctx: RollbackContext,
  logger: Logger,
  begin: () => Promise<RollbackSession>,
  globals: GlobalOptions,
  mode: ReturnType<typeof progressModeFor>,
  shown: { display?: RollbackProgressDisplay },
): Promise<number> {
  let session: RollbackSession | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  const extra = resumeArgs(globals);
  const removeSignalHandlers = handleShutdownSignals({
    onStop(signal) {
      stopSignal = signal;
      logger.warning(`${signal} received: pausing the rollback after the batch in flight (send it again to exit at once)`);
      session?.stop(`received ${signal}`);
    },
    onForce(signal) {
      const runId = session?.runId;
      process.stderr.write(
        `${signal} received again: exiting now. ` +
          (runId ? `Rollback run ${runId} stays "running" until its lease expires (${ctx.lease.ttlMs} ms); then resume it with:\n  ${rollbackResumeCommand(runId, extra)}\n` : '\n'),
      );
      process.exit(signalExitCode(signal));
    },
  });
  try {
    session = await begin();
    if (stopSignal) session.stop(`received ${stopSignal}`);
    if (mode === 'json') process.stdout.write(`${JSON.stringify({ type: 'started', runId: session.runId, migrationId: session.migrationId, strategy: session.strategy })}\n`);
    else process.stderr.write(`Rollback run ${session.runId} of "${session.migrationId}" (${session.strategy}) started.\n`);
    shown.display = new RollbackProgressDisplay(mode, { runId: session.runId, migrationId: session.migrationId }, logger);
    shown.display.start(session);
    const outcome = await session.outcome;
    shown.display.stop(session);
    shown.display = undefined;
    const resumable = outcome.status === 'paused' || outcome.status === 'failed' || outcome.status === 'emergency_stopped' || outcome.status === 'lease-lost';
    const resume = resumable ? rollbackResumeCommand(outcome.runId, extra) : null;
    const summary = summaryOf(outcome, resume);
    if (mode === 'json') process.stdout.write(`${JSON.stringify(summary)}\n`);
    const totals = outcome.totals;
    const counts = totals
      ? `restored ${formatCount(totals.restored)}, already restored ${formatCount(totals.alreadyRestored)}, conflicts ${formatCount(totals.conflicts)} ` +
        `(forced ${formatCount(totals.forced)}), missing documents ${formatCount(totals.missingDocuments)}, missing before-images ${formatCount(totals.missingBackups)}, ` +
        `failed ${formatCount(totals.failed)} in ${formatCount(totals.batches)} batches`
      : 'totals unknown';
    const headline = `Rollback run ${outcome.runId} ${outcome.status}${outcome.statusReason ? `: ${outcome.statusReason}` : ''} — ${counts}.`;
    const lines = [headline, ...(outcome.validation ? renderValidation(outcome.validation) : []), ...(outcome.error ? [`error: ${outcome.error.message}`] : [])];
    if (resume) lines.push(`Resume with:\n  ${resume}`);
    if (mode === 'log') (outcome.status === 'completed' || outcome.status === 'paused' ? logger.info : logger.error)(headline, { ...summary, type: undefined });
    else process.stderr.write(`${lines.join('\n')}\n`);
    const ok = (outcome.status === 'completed' && (outcome.validation?.ok ?? true)) || (outcome.status === 'paused' && stopSignal !== undefined);
    return ok ? EXIT_OK : EXIT_FAILURE;
  } finally {
    removeSignalHandlers();
  }
}

export function register(program: Command): void {
  program
    .command('rollback [target]')
    .description(
      'Roll back a migration (every executed run of it, newest first) or one run: <target> is a migration id or a run id. ' +
        'Without --execute: the assessment (documents to restore, conflicts, user impact, readiness, estimated duration); nothing is written. ' +
        'With --execute: needs ROLLBACK_CONFIRMED=true (unless ROLLBACK_REQUIRE_CONFIRMATION=false on the emulator), --reason and --user; ' +
        'restores the before-images exactly (or reverts with down()), validates, marks the runs and the migration rolled back. ' +
        'SIGINT/SIGTERM pauses it; --resume continues it.',
    )
    .option('--execute', 'write: roll back (without it, the assessment only)')
    .option('--reason <text>', 'why (required with --execute; recorded in the rollback run and the audit trail)')
    .option('--force', 'restore conflicting documents too (their migrated fields changed after the migration wrote them)')
    .addOption(new Option('--strategy <strategy>', 'override the chosen strategy').choices(['restore', 'revert']))
    .option('--backup-id <id>', 'backup restoration: import this managed export (`firemigrate backup`) instead; NOT exact, needs --accept-inexact')
    .option('--accept-inexact', 'with --backup-id --execute: confirm that an import overwrites documents with their state at the export and keeps documents created since')
    .option('--resume <rollbackRunId>', 'continue a paused, failed or crashed rollback run (with --execute)')
    .addHelpText(
      'after',
      '\nOutput: the assessment as text (or one JSON document with --json); with --execute a progress bar on a terminal, with --json one ' +
        'JSON object per second ({"type":"progress"}) and a final {"type":"summary"}.\n' +
        'Exit codes: 0 assessed, completed (validation passed) or paused by a signal; 1 failed, stopped, validation failed, refused by the engine; ' +
        '2 usage error or a missing confirmation, reason or user (nothing written).',
    )
    .action(async (target: string | undefined, flags: RollbackFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (!target && !flags.resume) throw new CliError('Name what to roll back: a migration id or a run id (or --resume <rollbackRunId>).', EXIT_USAGE);
      if (target && flags.resume) throw new CliError('--resume continues a rollback run by its id: give either <target> or --resume, not both.', EXIT_USAGE);
      if (flags.resume && !flags.execute) throw new CliError('--resume continues writing documents: add --execute.', EXIT_USAGE);
      if (flags.backupId && (flags.strategy || flags.force || flags.resume)) {
        throw new CliError('--backup-id is its own strategy (an import): it takes no --strategy, --force or --resume.', EXIT_USAGE);
      }
      if (flags.acceptInexact && !flags.backupId) throw new CliError('--accept-inexact applies to --backup-id only.', EXIT_USAGE);
      const config = loadContextConfig();
      if (flags.execute) {
        const refusals = rollbackRefusals({ rollback: config.rollback, reason: flags.reason, user: globals.user, backupId: flags.backupId, acceptInexact: flags.acceptInexact });
        if (refusals.length > 0) throw new CliError(`Rollback refused; nothing was written:\n${refusals.map((refusal) => `  - ${refusal}`).join('\n')}`, EXIT_USAGE);
      }
      // Cleanup runs (`<id>-cleanup`) are rolled back like any migration.
      const registry = withCleanupMigrations(await loadCliRegistry(globals.migrations));
      const paths = new ControlPaths(config.migration.controlCollection);
      await withFirestore(globals, async (connection) => {
        const resolved = target ? await resolveRollbackTarget(connection, paths, registry, target) : null;
        if (flags.backupId) {
          await backupRestoration(connection, paths, config, resolved!, flags, globals);
          return;
        }
        const mode = progressModeFor(globals);
        const shown: { display?: RollbackProgressDisplay } = {};
        const log = flags.execute ? rollbackLogger(mode, () => shown.display) : createLogger({ format: 'text', write: (line) => process.stderr.write(line) });
        const wire = WireClient.forFirestore(connection.db);
        try {
          const ctx = rollbackContext(connection, wire, config, registry, log);
          if (!flags.execute) {
            const assessment = await assessRollback(ctx, { migrationId: resolved!.migration.id, runId: resolved!.runId, strategy: flags.strategy, force: flags.force });
            if (globals.json) printJson(assessment);
            else {
              const command = ['ROLLBACK_CONFIRMED=true firemigrate rollback', target!, '--execute --reason "<why>" --user <name>', ...(flags.force ? ['--force'] : []), ...(flags.strategy ? [`--strategy ${flags.strategy}`] : [])];
              printLines([...renderAssessment(assessment), '', `Nothing was written. To roll back: ${command.join(' ')}`]);
            }
            return;
          }
          const identity = await resolveCaller(globals.user, connection);
          const caller = { user: globals.user!.trim(), identity: identity.identity, reason: flags.reason!.trim() };
          const begin = flags.resume
            ? () => resumeRollback(ctx, flags.resume!, caller)
            : () => startRollback(ctx, { migrationId: resolved!.migration.id, runId: resolved!.runId, strategy: flags.strategy, force: flags.force ?? false, ...caller });
          process.exitCode = await executeRollback(ctx, log, begin, globals, mode, shown);
        } finally {
          await wire.close();
        }
      });
    });
}

/** `--backup-id`: the import plan (without --execute), or the import itself (gate already passed). */
async function backupRestoration(connection: FirestoreConnection, paths: ControlPaths, config: FiremigrateConfig, target: RollbackTarget, flags: RollbackFlags, globals: GlobalOptions): Promise<void> {
  if (target.runId) throw new CliError('--backup-id restores a whole collection from an export: name the migration, not a run.', EXIT_USAGE);
  const backupId = flags.backupId!;
  if (!flags.execute) {
    const { plan, record } = await managedBackups(connection, paths, null).planRestore(backupId, target.migration);
    if (globals.json) printJson({ executed: false, recorded: record !== undefined, ...plan });
    else printLines([...renderImportPlan(plan, record !== undefined), '', `Nothing was written. To import: ROLLBACK_CONFIRMED=true firemigrate rollback ${target.migration.id} --backup-id ${backupId} --accept-inexact --execute --reason "<why>" --user <name>`]);
    return;
  }
  const identity = await resolveCaller(globals.user, connection);
  const actor = { user: globals.user!.trim(), identity: identity.identity };
  let started;
  try {
    started = await withBackupAdmin(config, (admin) => managedBackups(connection, paths, admin).restore({ backupId, migration: target.migration, actor, reason: flags.reason!.trim() }));
  } catch (error) {
    if (error instanceof ManagedBackupError) throw new CliError(`Backup restoration refused: ${error.message}`, EXIT_FAILURE);
    throw error;
  }
  if (globals.json) {
    printJson(started.executed ? { executed: true, ...started.plan, operationName: started.import.operationName } : { executed: false, ...started.plan, why: started.why });
    return;
  }
  if (!started.executed) {
    printLines([...renderImportPlan(started.plan, started.plan.inputUriPrefix !== null), `Nothing done: ${started.why}.`]);
    return;
  }
  printLines([
    ...renderImportPlan(started.plan, true),
    `Import started: operation ${started.import.operationName} (it runs on in Google Cloud; gcloud firestore operations describe <operation> shows its state).`,
    'Recorded in the backup record and the audit trail. The runs and the migration are NOT marked rolled back: an import cannot be verified against before-images.',
  ]);
}
