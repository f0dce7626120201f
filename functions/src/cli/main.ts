#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../config';
import { UnknownMigrationError } from '../definitions/errors';
import * as cleanup from './commands/cleanup';
import * as backup from './commands/backup';
import * as control from './commands/control';
import * as grant from './commands/grant';
import * as list from './commands/list';
import * as mode from './commands/mode';
import * as monitor from './commands/monitor';
import * as plan from './commands/plan';
import * as report from './commands/report';
import * as rollback from './commands/rollback';
import * as rules from './commands/rules';
import * as run from './commands/run';
import * as seedDemo from './commands/seed-demo';
import * as status from './commands/status';
import * as validate from './commands/validate';
import { applyEnvironment, CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, type GlobalOptions } from './context';

/**
 * The commands, one module each (functions/src/cli/commands/<name>.ts exporting `register`).
 * Add new command modules to this list.
 */
const COMMANDS: ReadonlyArray<{ register(program: Command): void }> = [list, seedDemo, plan, validate, run, control, report, status, mode, rules, grant, monitor, cleanup, rollback, backup];

function packageVersion(): string {
  // functions/src/cli and functions/lib/cli are both three levels below the package root.
  const manifest = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

export function buildProgram(): Command {
  const program = new Command('firemigrate')
    .description('Zero-downtime schema and data migrations for Cloud Firestore')
    .version(packageVersion())
    .option('--project <id>', 'Firestore project (default: GCLOUD_PROJECT / GOOGLE_CLOUD_PROJECT; demo-firemigrate on the emulator)')
    .option('--env <name>', 'environment name; loads .env.<name> from the working directory when it exists (set variables win)')
    .option('--migrations <paths...>', 'migration files or folders to load beside the built-in ones')
    .option('--user <name>', 'who answers for this command (recorded with runs and audit events beside the Google identity)')
    .option('--json', 'print one machine-readable JSON document on stdout')
    .showHelpAfterError()
    // Usage errors exit 2 (see main): commander must throw instead of exiting itself.
    .exitOverride()
    .hook('preAction', (_program, actionCommand) => {
      applyEnvironment(actionCommand.optsWithGlobals<GlobalOptions>().env);
    });
  for (const command of COMMANDS) command.register(program);
  return program;
}

/** Runs the CLI; resolves to the exit code: 0 ok, 1 failure, 2 usage or configuration error. */
export async function main(argv: readonly string[] = process.argv): Promise<number> {
  process.exitCode = undefined;
  try {
    await buildProgram().parseAsync([...argv]);
    return Number(process.exitCode ?? EXIT_OK);
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has printed its message; help and version are successes.
      return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' ? EXIT_OK : EXIT_USAGE;
    }
    process.stderr.write(`error: ${error instanceof Error ? error.message : String(error)}\n`);
    if (error instanceof CliError) return error.exitCode;
    if (error instanceof ConfigError || error instanceof UnknownMigrationError) return EXIT_USAGE;
    if (process.env.FIREMIGRATE_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return EXIT_FAILURE;
  }
}

if (require.main === module) {
  void main().then((code) => {
    process.exitCode = code;
  });
}
