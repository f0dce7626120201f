import { userInfo } from 'node:os';
import { Argument, InvalidArgumentError, type Command } from 'commander';
import { getMode, MIGRATION_MODES, ModeError, setMode, type MigrationMode, type ModeChange, type ModeState } from '../../compat/modes';
import { ControlPaths, MODE_DOCUMENT_PATH } from '../../control/paths';
import { targetCollectionId } from '../../compat/mode-policy';
import { CliError, EXIT_FAILURE, EXIT_USAGE, loadCliRegistry, loadContextConfig, migrationById, resolveCaller, withFirestore, type GlobalOptions } from '../context';
import { printJson, printLines } from '../output';

interface ModeFlags {
  collections?: string[];
  migration?: string;
  reason?: string;
}

/** `a,b` → `['a', 'b']` (blanks dropped): the value of `--collections`. */
export function parseCollectionList(text: string): string[] {
  const names = text.split(',').map((name) => name.trim()).filter((name) => name.length > 0);
  if (names.length === 0) throw new InvalidArgumentError('expected collection ids separated by commas, e.g. trades,conversations');
  return names;
}


const EFFECT: Record<MigrationMode, string> = {
  normal: 'no migration affects clients',
  'dual-read': 'these collections hold both shapes: the app reads them through the compatibility reader; client writes stay open',
  maintenance: 'client writes to these collections are denied by the rules (migrationAllowsWrite)',
};

/** The mode as JSON: timestamps as ISO strings. */
export function modeJson(state: ModeState) {
  return { ...state, changedAt: state.changedAt ? state.changedAt.toDate().toISOString() : null };
}

export function renderMode(state: ModeState): string[] {
  const lines = [`Mode: ${state.mode}${state.collections.length ? ` for ${state.collections.join(', ')}` : ''} — ${EFFECT[state.mode]}`];
  if (state.migrationId) lines.push(`  migration: ${state.migrationId}`);
  if (state.mode === 'dual-read') lines.push(`  sync trigger: ${state.migrations.length ? `applies ${state.migrations.join(', ')}` : 'off (no migration named)'}`);
  if (state.runId) lines.push(`  set by run: ${state.runId}`);
  if (state.changedAt) {
    lines.push(`  changed ${state.changedAt.toDate().toISOString()} by ${state.changedBy ?? 'unknown'}${state.reason ? `, reason: ${state.reason}` : ''}`);
  } else {
    lines.push(`  (${MODE_DOCUMENT_PATH} has never been written: normal)`);
  }
  return lines;
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
    .command('mode')
    .description(`Show the migration mode, or set it (${MIGRATION_MODES.join(' | ')}) for some collections; firestore.rules reads it from ${MODE_DOCUMENT_PATH}`)
    .addArgument(new Argument('[mode]', 'the mode to set; without it, the current mode is printed').choices(MIGRATION_MODES))
    .option('--collections <ids>', 'collection ids the mode applies to, comma-separated (dual-read and maintenance)', parseCollectionList)
    .option('--migration <id>', 'the migration the mode is for (recorded; in dual-read the sync trigger applies it); its target collection is the default of --collections')
    .option('--reason <text>', 'why (recorded in the mode document and the audit trail)')
    .addHelpText(
      'after',
      '\nModes: normal — nothing applies; dual-read — the collections hold both shapes, writes stay open; ' +
        'maintenance — the rules deny client writes to the collections.\n' +
        'Every change is recorded as a mode.changed audit event. Exit codes: 0 ok, 1 failure, 2 usage error.',
    )
    .action(async (mode: MigrationMode | undefined, flags: ModeFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (mode === undefined) {
        if (flags.collections || flags.migration || flags.reason) {
          throw new CliError('--collections, --migration and --reason apply when setting a mode: name the mode (normal, dual-read or maintenance)', EXIT_USAGE);
        }
        const state = await withFirestore(globals, ({ db }) => readMode(db));
        if (globals.json) printJson(modeJson(state));
        else printLines(renderMode(state));
        return;
      }

      const config = loadContextConfig();
      let collections = flags.collections;
      if (flags.migration) {
        const migration = migrationById(await loadCliRegistry(globals.migrations), flags.migration);
        if (!collections && mode !== 'normal') collections = [targetCollectionId(migration.target)];
      }
      // In dual-read the named migration is also the one the sync trigger applies.
      const migrations = mode === 'dual-read' && flags.migration ? [flags.migration] : undefined;
      const change: ModeChange = { mode, collections, migrations, migrationId: flags.migration, user: globals.user?.trim() || osUser(), reason: flags.reason };
      const result = await withFirestore(globals, async (connection) => {
        const caller = await resolveCaller(globals.user, connection);
        try {
          return await setMode(connection.db, { ...change, identity: caller.identity }, new ControlPaths(config.migration.controlCollection));
        } catch (error) {
          // setMode checks the change before it writes anything: its ModeErrors are usage errors.
          if (!(error instanceof ModeError)) throw error;
          const hint = mode !== 'normal' && !collections?.length ? ' (--collections a,b, or --migration <id> for its target collection)' : '';
          throw new CliError(`${error.message}${hint}`, EXIT_USAGE);
        }
      });
      if (globals.json) {
        printJson({ previous: result.previous && modeJson(result.previous), current: modeJson(result.current), auditEventId: result.auditEventId });
        return;
      }
      const from = result.previous ? result.previous.mode : 'a malformed mode document';
      printLines([`Mode changed: ${from} → ${result.current.mode}`, ...renderMode(result.current), `  audit event: ${result.auditEventId}`]);
    });
}

async function readMode(db: Parameters<typeof getMode>[0]): Promise<ModeState> {
  try {
    return await getMode(db);
  } catch (error) {
    if (error instanceof ModeError) throw new CliError(error.message, EXIT_FAILURE);
    throw error;
  }
}
