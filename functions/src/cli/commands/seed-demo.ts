import { InvalidArgumentError, type Command } from 'commander';
import { seedDemoData, type DemoManifest } from '../../demo/seed-data';
import { CliError, EXIT_USAGE, withFirestore, type GlobalOptions } from '../context';
import { formatCount, printJson, printLines, renderTable } from '../output';

interface SeedFlags {
  docs: number;
  seed: number;
  force?: boolean;
}

export const DEFAULT_DEMO_DOCS = 2000;
export const DEFAULT_DEMO_SEED = 42;

export function renderManifest(manifest: DemoManifest): string[] {
  const { users, trades, conversations } = manifest;
  const malformedTrades = trades.malformed.missingCreator + trades.malformed.skillsNotArray;
  return [
    `Demo data (seed ${manifest.seed}, ${formatCount(manifest.docs)} trades, timestamps from ${manifest.now})`,
    ...renderTable(
      ['COLLECTION', 'TOTAL', 'LEGACY', 'ALREADY V2', 'MALFORMED', 'NOTES'],
      [
        ['users', formatCount(users.total), '-', '-', '-', `${formatCount(users.activeLast15Min)} active in the last 15 min`],
        [
          'trades',
          formatCount(trades.total),
          formatCount(trades.legacy),
          formatCount(trades.alreadyV2),
          formatCount(malformedTrades),
          `${trades.malformed.missingCreator} missing creator, ${trades.malformed.skillsNotArray} skills not an array; ` +
            `skills ${trades.skills.strings} strings / ${trades.skills.objects} objects / ${trades.skills.mixed} mixed; ` +
            `${trades.orphans.creator + trades.orphans.participant} orphan references`,
        ],
        [
          'conversations',
          formatCount(conversations.total),
          formatCount(conversations.legacy),
          formatCount(conversations.alreadyV2),
          formatCount(conversations.malformed.participantWithoutId),
          `${conversations.malformed.participantWithoutId} participant without id; ` +
            `${conversations.duplicateParticipant} with a duplicate participant; ${conversations.orphans.participant} orphan references`,
        ],
      ],
    ),
  ];
}

function integerIn(min: number, max: number) {
  return (text: string): number => {
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) throw new InvalidArgumentError(`expected an integer from ${min} to ${max}`);
    return value;
  };
}

export function register(program: Command): void {
  program
    .command('seed-demo')
    .description('Write the deterministic TradeYa demo data (users, trades, conversations); emulator only unless --force')
    .option('--docs <n>', 'number of trades (conversations: half, users: a quarter)', integerIn(1, 10_000_000), DEFAULT_DEMO_DOCS)
    .option('--seed <s>', 'random seed: the same seed writes the same documents', integerIn(0, 0xffffffff), DEFAULT_DEMO_SEED)
    .option('--force', 'allow writing demo data to a project that is not on the emulator')
    .action(async (flags: SeedFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (!process.env.FIRESTORE_EMULATOR_HOST && !flags.force) {
        throw new CliError(
          'seed-demo writes demo documents into users, trades and conversations: it runs only against the emulator ' +
            '(set FIRESTORE_EMULATOR_HOST), or with --force for a real project you mean to fill.',
          EXIT_USAGE,
        );
      }
      const manifest = await withFirestore(globals, ({ db }) => seedDemoData(db, { docs: flags.docs, seed: flags.seed }));
      if (globals.json) printJson(manifest);
      else printLines(renderManifest(manifest));
    });
}
