import { PubSub } from '@google-cloud/pubsub';
import { InvalidArgumentError, type Command } from 'commander';
import { ControlPaths } from '../../control/paths';
import { knownVersions, runHealthCheck, type HealthRunResult } from '../../monitor/health-run';
import { healthOutlets } from '../../monitor/outlets';
import { renderHealthReport } from '../../monitor/report';
import type { SnapshotStatus } from '../../monitor/types';
import type { AlertBus } from '../../transports/alert-bus';
import { InProcessAlertBus } from '../../transports/in-process-alert-bus';
import { PubSubAlertBus } from '../../transports/pubsub-alert-bus';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, loadCliRegistry, loadContextConfig, migrationById, withFirestore, type GlobalOptions } from '../context';
import { createLogger } from '../log';
import { printJson, printLines } from '../output';

interface MonitorFlags {
  watch?: boolean;
  interval?: number;
  migration?: string[];
  criticalOnly?: boolean;
  stallMinutes: number;
  version?: string;
}

/** Exit codes as the seed's CI gate reads them: 0 healthy or maintenance, 2 degraded, 1 critical. */
export function exitCodeOf(status: SnapshotStatus): number {
  if (status === 'CRITICAL') return EXIT_FAILURE;
  if (status === 'DEGRADED') return EXIT_USAGE;
  return EXIT_OK;
}

function positiveInteger(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new InvalidArgumentError('expected an integer of 1 or more');
  return Number(text);
}

/**
 * Pub/Sub where a real or emulated topic exists (production, or PUBSUB_EMULATOR_HOST); otherwise
 * an in-process bus with no subscriber — the alerts are still stored, logged and sent to the webhook.
 */
function alertBus(projectId: string, firestoreEmulator: boolean): { bus: AlertBus; close(): Promise<void>; kind: string } {
  if (!firestoreEmulator || process.env.PUBSUB_EMULATOR_HOST) {
    const bus = new PubSubAlertBus(new PubSub({ projectId }));
    return { bus, close: () => bus.close(), kind: 'pubsub' };
  }
  return { bus: new InProcessAlertBus({ maxDeliveryAttempts: 1, retryDelayMs: 0 }), close: async () => undefined, kind: 'in-process (no subscriber: alerts are logged)' };
}

export function register(program: Command): void {
  program
    .command('monitor')
    .description(
      'Run the health checks (infrastructure, performance, integrity, compatibility) once, or every interval with --watch: ' +
        'prints the report, stores the snapshot and publishes alerts like the scheduled healthCheck. Exit 0 healthy/maintenance, 2 degraded, 1 critical',
    )
    .option('--watch', 'run again every interval until interrupted (Ctrl-C)')
    .option('--interval <seconds>', 'seconds between runs with --watch (default: MONITOR_HEALTH_INTERVAL)', positiveInteger)
    .option('--migration <ids...>', 'also monitor these migrations when they have never run (probes, integrity, compatibility)')
    .option('--version <v>', 'only the migrations of this version (registry entries and loaded definitions whose version is v, e.g. 2.0)')
    .option('--critical-only', 'show only error and critical checks')
    .option('--stall-minutes <n>', 'a running partition with no committed batch for this long is stalled; also the window of the batch figures', positiveInteger, 5)
    .action(async (flags: MonitorFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const config = loadContextConfig();
      const registry = await loadCliRegistry(globals.migrations);
      for (const id of flags.migration ?? []) migrationById(registry, id);
      const intervalMs = flags.interval ? flags.interval * 1000 : config.monitor.healthIntervalMs;
      await withFirestore(globals, async (connection) => {
        const paths = new ControlPaths(config.migration.controlCollection);
        if (flags.version !== undefined) {
          const versions = await knownVersions(connection.db, paths, registry);
          if (!versions.includes(flags.version)) {
            throw new CliError(`--version "${flags.version}" matches no migration: known versions are ${versions.map((v) => `"${v}"`).join(', ') || '(none)'}`, EXIT_USAGE);
          }
          for (const id of flags.migration ?? []) {
            const version = registry.get(id).version;
            if (version !== flags.version) throw new CliError(`--migration ${id} is of version "${version}", not of --version "${flags.version}"`, EXIT_USAGE);
          }
        }
        const emulator = Boolean(connection.emulatorHost);
        const log = createLogger({ format: globals.json ? 'json' : 'text', write: (line) => process.stderr.write(line) });
        const outlets = await healthOutlets({ db: connection.db, projectId: connection.projectId, emulator, writeMetricLine: (line) => process.stderr.write(line) });
        const alerts = alertBus(connection.projectId, emulator);
        const once = async (): Promise<HealthRunResult> => {
          const result = await runHealthCheck({
            db: connection.db,
            paths,
            config,
            registry,
            alerts: alerts.bus,
            stallAfterMs: flags.stallMinutes * 60_000,
            log,
            ...outlets,
            // One version's score is not the database's: it stays out of the metric time series.
            metrics: flags.version === undefined ? outlets.metrics : undefined,
            migrationIds: flags.migration ?? [],
            version: flags.version,
          });
          if (globals.json) printJson({ ...result.snapshot, checkedAt: result.snapshot.checkedAt.toDate().toISOString(), alertBus: alerts.kind, escalationMessageId: result.alertMessageId, webhookErrors: result.webhookErrors });
          else printLines([...renderHealthReport(result.snapshot, { criticalOnly: flags.criticalOnly }), `Alert bus: ${alerts.kind}`, '']);
          return result;
        };
        try {
          let result = await once();
          if (flags.watch) {
            let stopping = false;
            let wake: () => void = () => undefined;
            const stop = () => {
              stopping = true;
              wake();
            };
            process.once('SIGINT', stop);
            process.once('SIGTERM', stop);
            try {
              while (!stopping) {
                await new Promise<void>((resolve) => {
                  const timer = setTimeout(resolve, intervalMs);
                  wake = () => {
                    clearTimeout(timer);
                    resolve();
                  };
                });
                if (!stopping) result = await once();
              }
            } finally {
              process.off('SIGINT', stop);
              process.off('SIGTERM', stop);
            }
          }
          process.exitCode = exitCodeOf(result.snapshot.status);
        } finally {
          await alerts.close();
        }
      });
    });
}
