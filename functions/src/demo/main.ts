import { Command, InvalidArgumentError } from 'commander';
import type { FiremigrateConfig } from '../config';
import { renderMigrationList, listMigrations } from '../cli/commands/list';
import { renderPlanReport } from '../cli/commands/plan';
import { cliCaller, executeRun } from '../cli/commands/run';
import { renderRunDetail, renderRunTable, viewOf } from '../cli/commands/status';
import { DEFAULT_DEMO_DOCS, DEFAULT_DEMO_SEED, renderManifest } from '../cli/commands/seed-demo';
import { CliError, loadCliRegistry, loadContextConfig, openFirestore, type FirestoreConnection } from '../cli/context';
import { formatDuration, printLines } from '../cli/output';
import { ControlPaths } from '../control/paths';
import { RunStore } from '../control/runs';
import type { MigrationRegistry } from '../definitions/registry';
import { EmulatorMissingError, FirestoreEmulator } from '../dev/firestore-emulator';
import { planMigration } from '../engine/planner';
import { projectMigrations } from '../migrations';
import { seedDemoData } from './seed-data';

/**
 * `npm start`: the whole story on an embedded Firestore emulator, using the CLI's own command
 * functions — seed the TradeYa demo data, list the migrations, plan each one, run each with
 * --execute (progress bar on a terminal, a plain progress line otherwise; the final sweep; the
 * validation report), then `status`. The emulator is always stopped (normal end, error, Ctrl-C,
 * SIGTERM), so no java process outlives the demo.
 */
const DEMO_PROJECT = 'demo-firemigrate';

interface DemoContext {
  connection: FirestoreConnection;
  config: FiremigrateConfig;
  registry: MigrationRegistry;
  docs: number;
  seed: number;
}

interface DemoStep {
  title: string;
  run(context: DemoContext): Promise<void>;
}

const STEPS: DemoStep[] = [
  {
    title: 'Seed the TradeYa demo data',
    async run({ connection, docs, seed }) {
      printLines(renderManifest(await seedDemoData(connection.db, { docs, seed })));
    },
  },
  {
    title: 'firemigrate list',
    async run({ connection, config, registry }) {
      printLines(renderMigrationList(await listMigrations(connection.db, registry, config)));
    },
  },
  ...projectMigrations.map(
    (migration): DemoStep => ({
      title: `firemigrate plan ${migration.id}`,
      async run({ connection, config, registry }) {
        printLines(renderPlanReport(await planMigration(connection.db, registry.get(migration.id), config)));
      },
    }),
  ),
  ...projectMigrations.map(
    (migration): DemoStep => ({
      title: `firemigrate run ${migration.id} --execute`,
      async run({ connection, config, registry }) {
        const { outcome, report } = await executeRun(connection, {
          migration: registry.get(migration.id),
          config,
          caller: await cliCaller({}, connection, 'npm start (demo)'),
          mode: process.stderr.isTTY ? 'bar' : 'line',
          report: true,
          // The demo owns Ctrl-C: it stops the emulator.
          handleSignals: false,
          resumeArgs: [],
        });
        if (outcome.status !== 'completed' || !report?.ok) {
          throw new CliError(`run ${outcome.runId} of ${migration.id} ended ${outcome.status}${report && !report.ok ? ' and its report failed' : ''}`, 1);
        }
      },
    }),
  ),
  {
    title: 'firemigrate status',
    async run({ connection, config }) {
      const paths = new ControlPaths(config.migration.controlCollection);
      const runs = await new RunStore(connection.db, paths).listAll();
      const views = await Promise.all(runs.map((run) => viewOf(connection.db, paths, run, true)));
      printLines([...renderRunTable(views), '', ...views.flatMap((view) => [...renderRunDetail(view), ''])]);
    },
  },
];

function integerFrom(min: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw new InvalidArgumentError(`expected an integer of ${min} or more`);
    return Number(text);
  };
}

async function runDemo(options: { docs: number; seed: number }): Promise<number> {
  const emulator = new FirestoreEmulator();
  const stopOnSignal = (signal: NodeJS.Signals, exitCode: number) => () => {
    process.stderr.write(`\n${signal}: stopping the Firestore emulator…\n`);
    void emulator.stop().finally(() => process.exit(exitCode));
  };
  const onInterrupt = stopOnSignal('SIGINT', 130);
  const onTerminate = stopOnSignal('SIGTERM', 143);
  process.once('SIGINT', onInterrupt);
  process.once('SIGTERM', onTerminate);
  let connection: FirestoreConnection | undefined;
  try {
    process.stdout.write('Starting the Firestore emulator…\n');
    const host = await emulator.start();
    process.env.FIRESTORE_EMULATOR_HOST = host;
    process.env.METADATA_SERVER_DETECTION = 'none';
    process.stdout.write(`Firestore emulator at ${host}, project ${DEMO_PROJECT}\n`);
    const config = loadContextConfig();
    const registry = await loadCliRegistry();
    connection = openFirestore({ project: DEMO_PROJECT });
    const context: DemoContext = { connection, config, registry, ...options };
    for (const [index, step] of STEPS.entries()) {
      process.stdout.write(`\n== ${index + 1}/${STEPS.length} ${step.title} ==\n`);
      const started = Date.now();
      await step.run(context);
      process.stdout.write(`(${formatDuration((Date.now() - started) / 1000)})\n`);
    }
    return 0;
  } catch (error) {
    if (error instanceof EmulatorMissingError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    process.stderr.write(`demo failed: ${error instanceof Error ? error.message : String(error)}\n`);
    return error instanceof CliError ? error.exitCode : 1;
  } finally {
    await connection?.close();
    await emulator.stop();
    process.removeListener('SIGINT', onInterrupt);
    process.removeListener('SIGTERM', onTerminate);
  }
}

if (require.main === module) {
  const program = new Command('npm start --')
    .description('firemigrate demo on an embedded Firestore emulator')
    .option('--docs <n>', 'number of demo trades', integerFrom(1), DEFAULT_DEMO_DOCS)
    .option('--seed <s>', 'demo data seed', integerFrom(0), DEFAULT_DEMO_SEED)
    .parse();
  void runDemo(program.opts<{ docs: number; seed: number }>()).then((code) => {
    process.exitCode = code;
  });
}
