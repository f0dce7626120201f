#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError, Option } from 'commander';
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

/** The global options (GlobalOptions): accepted before the command and after it. */
const GLOBAL_OPTIONS: ReadonlyArray<readonly [flags: string, description: string]> = [
  ['--project <id>', 'Firestore project (default: GCLOUD_PROJECT / GOOGLE_CLOUD_PROJECT; demo-firemigrate on the emulator)'],
  ['--env <name>', 'environment name; loads .env.<name> from the working directory when it exists (set variables win)'],
  ['--migrations <paths...>', 'migration files or folders to load beside the built-in ones'],
  ['--user <name>', 'who answers for this command (recorded with runs and audit events beside the Google identity)'],
  ['--json', 'print one machine-readable JSON document on stdout'],
];

/**
 * With positional options the root's options end at the command name, so a command can have an
 * option named like a root one (`monitor --version <v>` beside `firemigrate --version`). The
 * global options are then declared on every command too, so they keep working after it
 * (`firemigrate plan x --project p`, the npm aliases, printed resume commands);
 * `optsWithGlobals()` merges both places.
 */
function acceptGlobalOptions(command: Command): void {
  for (const sub of command.commands) {
    for (const [flags, description] of GLOBAL_OPTIONS) sub.addOption(new Option(flags, description));
    acceptGlobalOptions(sub);
  }
}

export function buildProgram(): Command {
  const program = new Command('firemigrate')
    .description('Zero-downtime schema and data migrations for Cloud Firestore')
    .version(packageVersion())
    .enablePositionalOptions();
  for (const [flags, description] of GLOBAL_OPTIONS) program.addOption(new Option(flags, description));
  program
    .showHelpAfterError()
    // Usage errors exit 2 (see main): commander must throw instead of exiting itself.
    .exitOverride()
    .hook('preAction', (_program, actionCommand) => {
      applyEnvironment(actionCommand.optsWithGlobals<GlobalOptions>().env);
    });
  for (const command of COMMANDS) command.register(program);
  acceptGlobalOptions(program);
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
