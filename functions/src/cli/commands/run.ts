import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { ConfigError } from '../../config';
import { leaseSettings, newLeaseHolder } from '../../control/lease';
import { ControlPaths } from '../../control/paths';
import { countFailureRecords } from '../../control/progress';
import { planMigration } from '../../engine/planner';
import { resumeRun, startRun, type RunOutcome, type RunSession } from '../../engine/runner';
import { handleShutdownSignals, resumeCommand, signalExitCode } from '../../engine/shutdown';
import { WireClient } from '../../engine/wire/client';
import {
  CliError,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  loadCliRegistry,
  loadContextConfig,
  migrationById,
  openFirestore,
  resolveCaller,
  withFirestore,
  type GlobalOptions,
} from '../context';
import { createLogger, type Logger } from '../log';
import { formatCount, formatDuration, printJson, printLines } from '../output';
import { ProgressDisplay, type ProgressMode } from '../progress';
import { renderPlanReport } from './plan';

interface RunFlags {
  execute?: boolean;
  resume?: string;
  reason?: string;
}

/** The global flags a resume needs to find the same project and migration definitions. */
function resumeArgs(globals: GlobalOptions): string[] {
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

export function register(program: Command): void {
  program
    .command('run <migration>')
    .description(
      'Run a migration. Without --execute: the dry run (the plan; nothing is written). With --execute: migrate the ' +
        'target documents in checkpointed batches; SIGINT/SIGTERM pauses the run, --resume continues it.',
    )
    .option('--execute', 'write: migrate the documents (without it, nothing is written)')
    .option('--resume <runId>', 'continue a paused, failed or crashed run (with --execute); a crashed run once its lease has expired')
    .option('--reason <text>', 'why the run is made (recorded in the run document and the audit trail)')
    .addHelpText(
      'after',
      '\nOutput: a progress bar on a terminal; with --json one JSON object per second on stdout ({"type":"progress"}) ' +
        'and a final {"type":"summary"}; otherwise structured JSON log lines (Cloud Logging severities).\n' +
        'Exit codes: 0 completed or paused on request, 1 failed (or refused: lease held, definition changed), 2 usage or configuration error.',
    )
    .action(async (migrationId: string, flags: RunFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (flags.resume && !flags.execute) {
        throw new CliError('--resume continues writing documents: add --execute (without it, run is the dry run).', EXIT_USAGE);
      }
      const config = loadContextConfig();
      const migration = migrationById(await loadCliRegistry(globals.migrations), migrationId);
      if (!flags.execute) {
        const plan = await withFirestore(globals, ({ db }) => planMigration(db, migration, config));
        if (globals.json) printJson(plan);
        else printLines([...renderPlanReport(plan), '', `Nothing was written. To migrate: firemigrate run ${migration.id} --execute`]);
        return;
      }
      let lease;
      try {
        lease = leaseSettings();
      } catch (error) {
        if (error instanceof ConfigError) throw new CliError(`Invalid configuration:\n${error.message}`, EXIT_USAGE);
        throw error;
      }
      const connection = openFirestore(globals);
      const wire = WireClient.forFirestore(connection.db);
      try {
        const identity = await resolveCaller(globals.user, connection);
        const caller = { user: identity.user ?? osUser(), identity: identity.identity, reason: flags.reason?.trim() || null };
        const mode: ProgressMode = globals.json ? 'json' : process.stderr.isTTY ? 'bar' : 'log';
        let display: ProgressDisplay | undefined;
        const logger = createLogger(
          mode === 'bar'
            ? { format: 'text', write: (line) => (display ? display.write(line) : process.stderr.write(line)) }
            : // --json keeps stdout for the progress records; log collectors read stdout.
              { format: 'json', write: (line) => (mode === 'json' ? process.stderr : process.stdout).write(line), base: { migrationId } },
        );
        let session: RunSession | undefined;
        let stopSignal: NodeJS.Signals | undefined;
        const removeSignalHandlers = handleShutdownSignals({
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
                  ? `Run ${runId} stays "running" until its lease expires (${lease.ttlMs} ms); then resume it with:\n  ${resumeCommand(migration.id, runId, resumeArgs(globals))}\n`
                  : '\n'),
            );
            process.exit(signalExitCode(signal));
          },
        });
        try {
          const ctx = {
            db: connection.db,
            wire,
            migration,
            config,
            paths: new ControlPaths(config.migration.controlCollection),
            lease,
            holder: newLeaseHolder(),
            log: logger,
          };
          session = flags.resume ? await resumeRun(ctx, flags.resume, caller) : await startRun(ctx, caller);
          if (stopSignal) session.stop(`received ${stopSignal}`);
          const started = { type: 'started', runId: session.runId, migrationId: migration.id, resumed: session.resumed, partitions: session.partitions, total: session.progress().total };
          if (mode === 'json') process.stdout.write(`${JSON.stringify(started)}\n`);
          display = new ProgressDisplay(mode, { runId: session.runId, migrationId: migration.id }, logger);
          display.start(session);
          const outcome = await session.outcome;
          display.stop(session.progress());
          display = undefined;
          const failureRecords = outcome.totals ? await countFailureRecords(connection.db, ctx.paths, migration.id, outcome.runId) : null;
          report(mode, logger, outcome, session, failureRecords, resumeCommand(migration.id, outcome.runId, resumeArgs(globals)));
          process.exitCode = outcome.status === 'completed' || outcome.status === 'paused' ? EXIT_OK : EXIT_FAILURE;
        } finally {
          removeSignalHandlers();
        }
      } finally {
        await wire.close();
        await connection.close();
      }
    });
}

function report(mode: ProgressMode, logger: Logger, outcome: RunOutcome, session: RunSession, failureRecords: number | null, resume: string): void {
  const { elapsedMs, sessionProcessed } = session.progress();
  const totals = outcome.totals;
  const resumable = outcome.status === 'paused' || outcome.status === 'failed';
  const summary = {
    type: 'summary',
    runId: outcome.runId,
    migrationId: outcome.migrationId,
    status: outcome.status,
    migrated: totals?.migrated ?? null,
    skipped: totals?.skipped ?? null,
    alreadyMigrated: totals?.alreadyMigrated ?? null,
    failed: totals?.failed ?? null,
    batches: totals?.batches ?? null,
    failureRecords,
    elapsedMs,
    sessionProcessed,
    error: outcome.error?.message ?? null,
    resumeCommand: resumable ? resume : null,
  };
  if (mode === 'json') process.stdout.write(`${JSON.stringify(summary)}\n`);
  const counts = totals
    ? `migrated ${formatCount(totals.migrated)}, already at target ${formatCount(totals.alreadyMigrated)}, skipped ${formatCount(totals.skipped)}, ` +
      `failed ${formatCount(totals.failed)} (failure records: ${formatCount(failureRecords ?? 0)}) in ${formatCount(totals.batches)} batches`
    : 'totals unknown';
  const rate = elapsedMs > 0 ? formatCount(Math.round((sessionProcessed * 1000) / elapsedMs)) : '0';
  const headline =
    `Run ${outcome.runId} ${outcome.status}${outcome.error ? `: ${outcome.error.message}` : ''} — ${counts}; ` +
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
