import { userInfo } from 'node:os';
import type { Command } from 'commander';
import type { FiremigrateConfig } from '../../config';
import { leaseSettings, newLeaseHolder } from '../../control/lease';
import { ControlPaths } from '../../control/paths';
import { countFailureRecords } from '../../control/progress';
import { describeModeOutcome, modeForMigrateRun } from '../../compat/mode-policy';
import { RegistryStore } from '../../control/registry-store';
import { RunNotFoundError, RunStore, type RunDocument } from '../../control/runs';
import type { MigrationRegistry } from '../../definitions/registry';
import type { Migration } from '../../definitions/types';
import { planMigration } from '../../engine/planner';
import { resumeRun, startRun, type Caller, type RunOutcome, type RunSession } from '../../engine/runner';
import { handleShutdownSignals, resumeCommand, signalExitCode } from '../../engine/shutdown';
import { storeReport, validateRun, type ValidationReport } from '../../engine/validation';
import { WireClient } from '../../engine/wire/client';
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
import { createLogger, type Logger } from '../log';
import { formatCount, formatDuration, printJson, printLines } from '../output';
import { ProgressDisplay, type ProgressMode } from '../progress';
import { findRun } from '../run-lookup';
import { renderPlanReport } from './plan';
import { renderValidationReport } from './report';

interface RunFlags {
  execute?: boolean;
  resume?: string;
  reason?: string;
  acceptDefinitionChange?: boolean;
  /** `--no-report` sets it false. */
  report: boolean;
}

/** The global flags a resume needs to find the same project and migration definitions. */
export function resumeArgs(globals: GlobalOptions): string[] {
  const args: string[] = [];
  if (globals.project) args.push('--project', globals.project);
  if (globals.env) args.push('--env', globals.env);
  if (globals.migrations?.length) args.push('--migrations', ...globals.migrations);
  return args;
}

function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/** Who runs: `--user` (else the OS user) beside the Google identity, and why. */
export async function cliCaller(globals: GlobalOptions, connection: FirestoreConnection, reason: string | undefined): Promise<Caller> {
  const identity = await resolveCaller(globals.user, connection);
  return { user: identity.user ?? osUser(), identity: identity.identity, reason: reason?.trim() || null };
}

/** `bar` on a terminal, `json` with --json, else structured log lines. */
export function progressModeFor(globals: GlobalOptions): ProgressMode {
  return globals.json ? 'json' : process.stderr.isTTY ? 'bar' : 'log';
}

export interface ExecuteOptions {
  migration: Migration;
  config: FiremigrateConfig;
  caller: Caller;
  /** Resume this run instead of starting one. */
  resume?: string;
  acceptDefinitionChange?: boolean;
  mode: ProgressMode;
  /** Validate the target after a completed run (a full scan), print and store the report. */
  report: boolean;
  /** SIGINT/SIGTERM pause the run (off where the caller owns the signals, like the demo). */
  handleSignals: boolean;
  /** Global flags repeated in the printed resume command. */
  resumeArgs: readonly string[];
  /** The mode change once the run has started (compat/mode-policy.ts); default: a migrate run's (dual-read). */
  modePolicy?: typeof modeForMigrateRun;
}

export interface ExecuteResult {
  outcome: RunOutcome;
  report: ValidationReport | null;
  exitCode: number;
}

/** The logger of a run: text lines above the bar, JSON lines for collectors (stderr under --json). */
function runLogger(mode: ProgressMode, migrationId: string, display: () => ProgressDisplay | undefined): Logger {
  if (mode === 'bar' || mode === 'line') {
    return createLogger({ format: 'text', write: (line) => (display() ? display()!.write(line) : process.stderr.write(line)) });
  }
  // --json keeps stdout for the progress records; log collectors read stdout.
  return createLogger({ format: 'json', write: (line) => (mode === 'json' ? process.stderr : process.stdout).write(line), base: { migrationId } });
}

/**
 * `run <migration> --execute [--resume <runId>]` on an open connection: the run with its progress
 * display, the summary, and — once completed — the validation report. Exit code: 0 completed (and
 * the report passed) or paused on request; 1 otherwise.
 */
export async function executeRun(connection: FirestoreConnection, options: ExecuteOptions): Promise<ExecuteResult> {
  const { migration, config, mode } = options;
  const wire = WireClient.forFirestore(connection.db);
  const lease = leaseSettings(config);
  const paths = new ControlPaths(config.migration.controlCollection);
  let display: ProgressDisplay | undefined;
  const logger = runLogger(mode, migration.id, () => display);
  let session: RunSession | undefined;
  let stopSignal: NodeJS.Signals | undefined;
  const removeSignalHandlers = options.handleSignals
    ? handleShutdownSignals({
        onStop(signal) {
          stopSignal = signal;
          logger.warning(`${signal} received: pausing after the batches in flight (send it again to exit at once)`);
          session?.stop(`received ${signal}`);
        },
        onForce(signal) {
          const runId = session?.runId;
          process.stderr.write(
            `${signal} received again: exiting now. ` +
              (runId
                ? `Run ${runId} stays "running" until its lease expires (${lease.ttlMs} ms); then resume it with:\n  ${resumeCommand(migration.id, runId, options.resumeArgs)}\n`
                : '\n'),
          );
          process.exit(signalExitCode(signal));
        },
      })
    : () => undefined;
  try {
    const ctx = { db: connection.db, wire, migration, config, paths, lease, holder: newLeaseHolder(), log: logger };
    session = options.resume
      ? await resumeRun(ctx, options.resume, options.caller, { acceptDefinitionChange: options.acceptDefinitionChange })
      : await startRun(ctx, options.caller);
    if (stopSignal) session.stop(`received ${stopSignal}`);
    try {
      const policy = options.modePolicy ?? modeForMigrateRun;
      logger.info(describeModeOutcome(await policy(connection.db, paths, { migration, runId: session.runId, user: options.caller.user, identity: options.caller.identity })));
    } catch (error) {
      // The run goes on: the mode is the operator's to set (`firemigrate mode`) when this fails.
      logger.error(`could not set the migration mode for run ${session.runId}: ${(error as Error).message}`);
    }
    const started = { type: 'started', runId: session.runId, migrationId: migration.id, resumed: session.resumed, partitions: session.partitions, total: session.progress().total };
    if (mode === 'json') process.stdout.write(`${JSON.stringify(started)}\n`);
    display = new ProgressDisplay(mode, { runId: session.runId, migrationId: migration.id }, logger);
    display.start(session);
    const outcome = await session.outcome;
    display.stop(session);
    display = undefined;
    const failureRecords = outcome.totals ? await countFailureRecords(connection.db, paths, migration.id, outcome.runId) : null;
    summarise(mode, logger, outcome, session, failureRecords, resumeCommand(migration.id, outcome.runId, options.resumeArgs));
    let report: ValidationReport | null = null;
    if (outcome.status === 'completed' && options.report) {
      report = await validateAndStore(connection, paths, migration, config, outcome.runId, mode, logger);
    }
    const ok = (outcome.status === 'completed' && (report?.ok ?? true)) || outcome.status === 'paused';
    return { outcome, report, exitCode: ok ? EXIT_OK : EXIT_FAILURE };
  } finally {
    removeSignalHandlers();
    await wire.close();
  }
}

/** The post-migration validation: scans the target, stores the report in the run document, prints it. */
async function validateAndStore(
  connection: FirestoreConnection,
  paths: ControlPaths,
  migration: Migration,
  config: FiremigrateConfig,
  runId: string,
  mode: ProgressMode,
  logger: Logger,
): Promise<ValidationReport> {
  const run = await new RunStore(connection.db, paths).get(migration.id, runId);
  logger.info(`validating run ${runId}: every document of the target is read (documents at "${migration.marker.to}" parse with the target schema)`);
  const report = await validateRun(
    { db: connection.db, migration, config, paths, run },
    { onProgress: (scanned) => logger.info(`validating: ${formatCount(scanned)} documents read`) },
  );
  await storeReport(connection.db, paths, report);
  if (mode === 'json') process.stdout.write(`${JSON.stringify({ type: 'report', ...report })}\n`);
  else if (mode === 'log') (report.ok ? logger.info : logger.error)(`validation ${report.ok ? 'passed' : 'FAILED'}`, { report });
  else process.stderr.write(`${renderValidationReport(report).join('\n')}\n`);
  return report;
}

function summarise(mode: ProgressMode, logger: Logger, outcome: RunOutcome, session: RunSession, failureRecords: number | null, resume: string): void {
  const { elapsedMs, sessionProcessed } = session.progress();
  const totals = outcome.totals;
  const sweep = outcome.sweep;
  const resumable = outcome.status === 'paused' || outcome.status === 'failed' || outcome.status === 'emergency_stopped';
  const migrated = totals ? totals.migrated + (sweep?.migrated ?? 0) : null;
  const summary = {
    type: 'summary',
    runId: outcome.runId,
    migrationId: outcome.migrationId,
    status: outcome.status,
    statusReason: outcome.statusReason,
    migrated,
    skipped: totals?.skipped ?? null,
    alreadyMigrated: totals?.alreadyMigrated ?? null,
    failed: totals?.failed ?? null,
    batches: totals?.batches ?? null,
    failureRecords,
    sweep,
    elapsedMs,
    sessionProcessed,
    error: outcome.error?.message ?? null,
    resumeCommand: resumable ? resume : null,
  };
  if (mode === 'json') process.stdout.write(`${JSON.stringify(summary)}\n`);
  const counts = totals
    ? `migrated ${formatCount(migrated!)}, already at target ${formatCount(totals.alreadyMigrated)}, skipped ${formatCount(totals.skipped)}, ` +
      `failed ${formatCount(totals.failed)} (failure records: ${formatCount(failureRecords ?? 0)}) in ${formatCount(totals.batches)} batches`
    : 'totals unknown';
  const swept = sweep
    ? `; final sweep: ${sweep.passes} ${sweep.passes === 1 ? 'pass' : 'passes'}, ${formatCount(sweep.examined)} documents in the old shape examined, ${formatCount(sweep.migrated)} migrated`
    : '';
  const rate = elapsedMs > 0 ? formatCount(Math.round((sessionProcessed * 1000) / elapsedMs)) : '0';
  const why = outcome.statusReason ? `: ${outcome.statusReason}` : '';
  const headline =
    `Run ${outcome.runId} ${outcome.status}${why} — ${counts}${swept}; ` +
    `this session: ${formatCount(sessionProcessed)} documents in ${formatDuration(elapsedMs / 1000)} (${rate} docs/s).`;
  if (mode === 'log') {
    const fields = { ...summary, type: undefined };
    if (outcome.status === 'completed' || outcome.status === 'paused') logger.info(headline, fields);
    else logger.error(headline, fields);
    if (resumable) logger.info(`resume with: ${resume}`, { runId: outcome.runId, resumeCommand: resume });
    return;
  }
  // Terminal and --json: the human lines go to stderr (stdout holds the JSON records with --json).
  process.stderr.write(`${headline}\n`);
  if (resumable) process.stderr.write(`Resume with:\n  ${resume}\n`);
}

/**
 * Migrations `run` without a name works through, in registry order: those never applied (no
 * entry, pending, failed, rolled back) — and one whose last run was aborted. A migration whose
 * last run is still in progress (running, paused, emergency-stopped) must be resumed or aborted
 * first: starting another run beside it would leave that one unfinished.
 */
async function pendingMigrations(db: FirestoreConnection['db'], registry: MigrationRegistry, paths: ControlPaths): Promise<Migration[]> {
  const entries = new RegistryStore(db, paths);
  const runs = new RunStore(db, paths);
  const pending: Migration[] = [];
  for (const migration of registry.all()) {
    const entry = await entries.get(migration.id);
    if (entry?.status === 'applied') continue;
    if (entry?.status !== 'running') {
      pending.push(migration);
      continue;
    }
    let last: RunDocument | null = null;
    if (entry.lastRunId) {
      try {
        last = await runs.get(migration.id, entry.lastRunId);
      } catch (error) {
        if (!(error instanceof RunNotFoundError)) throw error;
      }
    }
    if (last && (last.status === 'aborted' || last.status === 'failed')) {
      pending.push(migration);
      continue;
    }
    throw new CliError(
      `Migration "${migration.id}" has run ${entry.lastRunId} in progress (${last?.status ?? 'unknown'}): finish it first — ` +
        `firemigrate resume ${entry.lastRunId} — or abort it (firemigrate abort ${entry.lastRunId}); migrations after it wait.`,
      EXIT_FAILURE,
    );
  }
  return pending;
}

export function register(program: Command): void {
  program
    .command('run [migration]')
    .description(
      'Run a migration. Without --execute: the dry run (the plan; nothing is written). With --execute: migrate the target ' +
        'documents in checkpointed batches, sweep the target for documents left in the old shape, then validate every document ' +
        '(the report). Without a migration name: every pending migration in registry order, stopping at the first that does ' +
        'not complete. SIGINT/SIGTERM pauses the run; --resume (or `firemigrate resume <runId>`) continues it.',
    )
    .option('--execute', 'write: migrate the documents (without it, nothing is written)')
    .option('--resume <runId>', 'continue a paused, failed, emergency-stopped or crashed run (with --execute); a crashed run once its lease has expired')
    .option('--reason <text>', 'why the run is made (recorded in the run document and the audit trail)')
    .option('--accept-definition-change', 'with --resume: continue although the definition changed since the run started (a fixed transform); recorded')
    .option('--no-report', 'skip the validation scan after a completed run')
    .addHelpText(
      'after',
      '\nOutput: a progress bar on a terminal; with --json one JSON object per second on stdout ({"type":"progress"}), ' +
        'a final {"type":"summary"} and {"type":"report"}; otherwise structured JSON log lines (Cloud Logging severities).\n' +
        'Exit codes: 0 completed (report passed) or paused on request, 1 failed, emergency-stopped, aborted, report failed ' +
        '(or refused: lease held, definition changed), 2 usage or configuration error.',
    )
    .action(async (migrationId: string | undefined, flags: RunFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (flags.resume && !flags.execute) {
        throw new CliError('--resume continues writing documents: add --execute (without it, run is the dry run).', EXIT_USAGE);
      }
      if (flags.acceptDefinitionChange && !flags.resume) throw new CliError('--accept-definition-change applies to --resume only.', EXIT_USAGE);
      const config = loadContextConfig();
      const registry = await loadCliRegistry(globals.migrations);
      const paths = new ControlPaths(config.migration.controlCollection);
      if (!flags.execute) {
        await withFirestore(globals, async ({ db }) => {
          const migrations = migrationId ? [migrationById(registry, migrationId)] : await pendingMigrations(db, registry, paths);
          const plans = [];
          for (const migration of migrations) plans.push(await planMigration(db, migration, config));
          if (globals.json) printJson(migrationId ? plans[0] : { plans });
          else if (plans.length === 0) printLines(['No pending migrations.']);
          else printLines([...plans.flatMap((plan) => [...renderPlanReport(plan), '']), `Nothing was written. To migrate: firemigrate run ${migrationId ? `${migrationId} ` : ''}--execute`]);
        });
        return;
      }
      await withFirestore(globals, async (connection) => {
        const caller = await cliCaller(globals, connection, flags.reason);
        const common = {
          config,
          caller,
          acceptDefinitionChange: flags.acceptDefinitionChange,
          mode: progressModeFor(globals),
          report: flags.report,
          handleSignals: true,
          resumeArgs: resumeArgs(globals),
        };
        if (flags.resume || migrationId) {
          const id = migrationId ?? (await findRun(connection, paths, flags.resume!)).migrationId;
          process.exitCode = (await executeRun(connection, { ...common, migration: migrationById(registry, id), resume: flags.resume })).exitCode;
          return;
        }
        const pending = await pendingMigrations(connection.db, registry, paths);
        if (pending.length === 0) process.stderr.write('No pending migrations.\n');
        for (const migration of pending) {
          process.stderr.write(`== ${migration.id} (${migration.version}) ==\n`);
          const result = await executeRun(connection, { ...common, migration });
          process.exitCode = result.exitCode;
          if (result.outcome.status !== 'completed' || result.exitCode !== EXIT_OK) {
            const rest = pending.slice(pending.indexOf(migration) + 1).map((next) => next.id);
            if (rest.length > 0) process.stderr.write(`Stopped: ${migration.id} did not complete; not started: ${rest.join(', ')}.\n`);
            return;
          }
        }
      });
    });
}
