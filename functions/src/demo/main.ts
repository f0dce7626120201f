import { Command, InvalidArgumentError } from 'commander';
import type { FiremigrateConfig } from '../config';
import { renderMigrationList, listMigrations } from '../cli/commands/list';
import { renderAssessment, rollbackContext } from '../cli/commands/rollback';
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
import { WireClient } from '../engine/wire/client';
import { runHealthCheck } from '../monitor/health-run';
import { renderHealthReport } from '../monitor/report';
import { assessRollback, startRollback, type RollbackContext, type RollbackOutcome } from '../rollback';
import { InProcessAlertBus } from '../transports/in-process-alert-bus';
import { projectMigrations } from '../migrations';
import { seedDemoData } from './seed-data';

/**
 * `npm start`: the whole story on an embedded Firestore emulator, using the CLI's own command
 * functions — seed the TradeYa demo data, list the migrations, plan each one, run each with
 * --execute (progress bar on a terminal, a plain progress line otherwise; the final sweep; the
 * validation report), `monitor`, the rollback assessment of the trades migration (and with
 * `--rollback` the rollback itself and its validation), then `status`. The emulator is always stopped (normal end, error, Ctrl-C,
 * SIGTERM), so no java process outlives the demo.
 */
const DEMO_PROJECT = 'demo-firemigrate';
/** The migration whose rollback the demo assesses (and, with --rollback, executes). */
const ROLLBACK_DEMO_MIGRATION = 'tradeya-trades-v2';

/** Warnings and errors of the health run and the rollback reach the terminal; the rest would drown the report. */
const quietLog = {
  debug() {},
  info() {},
  warning(message: string) {
    process.stderr.write(`warning: ${message}\n`);
  },
  error(message: string) {
    process.stderr.write(`error: ${message}\n`);
  },
};

interface DemoContext {
  connection: FirestoreConnection;
  config: FiremigrateConfig;
  registry: MigrationRegistry;
  docs: number;
  seed: number;
  /** `--rollback`: execute the rollback after its assessment. */
  rollback: boolean;
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
    title: 'firemigrate monitor',
    async run({ connection, config, registry }) {
      // No Pub/Sub in the demo: an in-process bus with no subscriber (the report shows the alerts).
      const alerts = new InProcessAlertBus({ maxDeliveryAttempts: 1, retryDelayMs: 0 });
      const result = await runHealthCheck({
        db: connection.db,
        paths: new ControlPaths(config.migration.controlCollection),
        config,
        registry,
        alerts,
        stallAfterMs: 5 * 60_000,
        log: quietLog,
        // The Firestore Admin API (index states) does not exist on the emulator: "not checkable".
        indexes: null,
      });
      printLines(renderHealthReport(result.snapshot));
    },
  },
  {
    title: `firemigrate rollback ${ROLLBACK_DEMO_MIGRATION} (assessment: writes nothing)`,
    async run(context) {
      await withRollbackContext(context, async (ctx) => {
        printLines(renderAssessment(await assessRollback(ctx, { migrationId: ROLLBACK_DEMO_MIGRATION })));
        if (!context.rollback) printLines(['', 'To see the rollback itself: npm start -- --rollback']);
      });
    },
  },
  {
    title: `ROLLBACK_CONFIRMED=true firemigrate rollback ${ROLLBACK_DEMO_MIGRATION} --execute (with --rollback)`,
    async run(context) {
      if (!context.rollback) {
        printLines(['skipped: run `npm start -- --rollback` to restore every trade from its before-image and validate it']);
        return;
      }
      await withRollbackContext(context, async (ctx) => {
        const session = await startRollback(ctx, { migrationId: ROLLBACK_DEMO_MIGRATION, force: false, reason: 'npm start demo', user: 'npm start (demo)', identity: 'emulator' });
        const outcome = await session.outcome;
        printLines(renderRollbackOutcome(outcome));
        if (outcome.status !== 'completed') throw new CliError(`rollback ${outcome.runId} ended ${outcome.status}: ${outcome.statusReason ?? ''}`, 1);
      });
    },
  },
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

function renderRollbackOutcome(outcome: RollbackOutcome): string[] {
  const lines = [`Rollback run ${outcome.runId} (${outcome.strategy}): ${outcome.status}${outcome.statusReason ? ` — ${outcome.statusReason}` : ''}`];
  if (outcome.totals) {
    const t = outcome.totals;
    lines.push(`  restored ${t.restored}, already restored ${t.alreadyRestored}, conflicts ${t.conflicts}, missing ${t.missingDocuments}, failed ${t.failed}, batches ${t.batches}`);
  }
  if (outcome.validation) {
    const v = outcome.validation;
    lines.push(
      `  validation ${v.ok ? 'passed' : 'FAILED'}: ${v.equal}/${v.sampled} sampled documents equal their before-images; ` +
        `${v.fromSchema.passed}/${v.fromSchema.checked} parse with the source schema; probes ${v.probes.filter((probe) => probe.ok).length}/${v.probes.length} ok`,
    );
  }
  return lines;
}

async function withRollbackContext(context: DemoContext, use: (ctx: RollbackContext) => Promise<void>): Promise<void> {
  const wire = WireClient.forFirestore(context.connection.db);
  try {
    await use(rollbackContext(context.connection, wire, context.config, context.registry, quietLog));
  } finally {
    await wire.close();
  }
}

function integerFrom(min: number) {
  return (text: string): number => {
    if (!/^\d+$/.test(text) || Number(text) < min) throw new InvalidArgumentError(`expected an integer of ${min} or more`);
    return Number(text);
  };
}

async function runDemo(options: { docs: number; seed: number; rollback: boolean }): Promise<number> {
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
    .option('--rollback', 'after the assessment, roll the trades migration back and validate it')
    .parse();
  const options = program.opts<{ docs: number; seed: number; rollback?: boolean }>();
  void runDemo({ ...options, rollback: options.rollback ?? false }).then((code) => {
    process.exitCode = code;
  });
}
