/**
 * Runtime control of a run from any machine (gh-ost's "server" role): `pause`, `abort` and
 * `resume`. Pause and abort write the run's new status with their audit event in one
 * transaction (engine/run-control.ts); the process working on the run sees it within one batch,
 * lets its batches in flight settle and releases the lease — these commands wait for that (up to
 * `--wait` seconds) and say so. `resume` continues the run in THIS process, exactly like
 * `run <migration> --execute --resume <runId>`.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { ControlPaths } from '../../control/paths';
import { RunTransitionError } from '../../control/runs';
import { requestStop, waitForRelease, type ControlAction } from '../../engine/run-control';
import { CliError, EXIT_FAILURE, loadCliRegistry, loadContextConfig, migrationById, withFirestore, type GlobalOptions } from '../context';
import { formatDuration, printJson } from '../output';
import { findRun } from '../run-lookup';
import { cliCaller, executeRun, progressModeFor, resumeArgs } from './run';

export const DEFAULT_WAIT_SECONDS = 60;

interface StopFlags {
  reason?: string;
  wait: number;
}

interface ResumeFlags {
  reason?: string;
  acceptDefinitionChange?: boolean;
  report: boolean;
}

function seconds(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected a whole number of seconds (0: do not wait)');
  return Number(text);
}

async function stop(action: ControlAction, runId: string, flags: StopFlags, command: Command): Promise<void> {
  const globals = command.optsWithGlobals<GlobalOptions>();
  const config = loadContextConfig();
  const paths = new ControlPaths(config.migration.controlCollection);
  await withFirestore(globals, async (connection) => {
    const caller = await cliCaller(globals, connection, flags.reason);
    const run = await findRun(connection, paths, runId);
    let result;
    try {
      result = await requestStop(connection.db, paths, run.runId, action, caller);
    } catch (error) {
      if (error instanceof RunTransitionError) throw new CliError(`Cannot ${action} run ${runId}: ${error.message}`, EXIT_FAILURE);
      throw error;
    }
    const started = Date.now();
    const released = result.holder && flags.wait > 0 ? await waitForRelease(connection.db, paths, run, flags.wait * 1000) : null;
    const waitedMs = Date.now() - started;
    const verb = action === 'pause' ? 'paused' : 'aborted';
    if (globals.json) {
      printJson({ runId, migrationId: run.migrationId, status: result.run.status, previousStatus: result.previousStatus, statusReason: result.run.statusReason, unchanged: result.unchanged, holder: result.holder, released, waitedMs });
      return;
    }
    const lines = [
      result.unchanged
        ? `Run ${runId} (${run.migrationId}) is already ${verb}.`
        : `Run ${runId} (${run.migrationId}) ${verb} (was ${result.previousStatus}): ${result.run.statusReason}.`,
    ];
    if (result.holder && released) lines.push(`The process running it (${result.holder}) took no new batch, let its batches in flight settle and released the lease (${formatDuration(waitedMs / 1000)}).`);
    else if (result.holder && released === false) lines.push(`The process running it (${result.holder}) has not released the lease within ${flags.wait} s; it stops after its batches in flight (see firemigrate status ${runId}).`);
    else if (result.holder) lines.push(`The process running it (${result.holder}) stops after its batches in flight.`);
    if (action === 'pause' && !result.unchanged) lines.push(`Resume with: firemigrate resume ${runId}`);
    process.stdout.write(`${lines.join('\n')}\n`);
  });
}

export function register(program: Command): void {
  program
    .command('pause <runId>')
    .description('Pause a run: the process running it takes no new batch (within one batch), its commits in flight land; resumable with `firemigrate resume`')
    .option('--reason <text>', 'why (recorded in the run document and the audit trail)')
    .option('--wait <seconds>', 'how long to wait for the running process to release the run (0: do not wait)', seconds, DEFAULT_WAIT_SECONDS)
    .action((runId: string, flags: StopFlags, command: Command) => stop('pause', runId, flags, command));

  program
    .command('abort <runId>')
    .description('Abort a run for good (final: it cannot be resumed; what it migrated stays, with its before-images for a rollback)')
    .option('--reason <text>', 'why (recorded in the run document and the audit trail)')
    .option('--wait <seconds>', 'how long to wait for the running process to release the run (0: do not wait)', seconds, DEFAULT_WAIT_SECONDS)
    .action((runId: string, flags: StopFlags, command: Command) => stop('abort', runId, flags, command));

  program
    .command('resume <runId>')
    .description('Continue a paused, emergency-stopped, failed or crashed run in this process (same as `run <migration> --execute --resume <runId>`)')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .option('--accept-definition-change', 'continue although the definition changed since the run started (a fixed transform); recorded')
    .option('--no-report', 'skip the validation scan once the run completes')
    .action(async (runId: string, flags: ResumeFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const config = loadContextConfig();
      const registry = await loadCliRegistry(globals.migrations);
      const paths = new ControlPaths(config.migration.controlCollection);
      await withFirestore(globals, async (connection) => {
        const run = await findRun(connection, paths, runId);
        const result = await executeRun(connection, {
          migration: migrationById(registry, run.migrationId),
          config,
          caller: await cliCaller(globals, connection, flags.reason),
          resume: runId,
          acceptDefinitionChange: flags.acceptDefinitionChange,
          mode: progressModeFor(globals),
          report: flags.report,
          handleSignals: true,
          resumeArgs: resumeArgs(globals),
        });
        process.exitCode = result.exitCode;
      });
    });
}
