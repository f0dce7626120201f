import { loadConfig } from '../functions/src/config';
import { leaseSettings, newLeaseHolder } from '../functions/src/control/lease';
import { ControlPaths } from '../functions/src/control/paths';
import type { Migration } from '../functions/src/definitions/types';
import { startRun, type RunLog } from '../functions/src/engine/runner';
import { WireClient } from '../functions/src/engine/wire/client';
import { openFirestore } from '../functions/src/cli/context';
import { RunStore } from '../functions/src/control/runs';
import { storeReport, validateRun } from '../functions/src/engine/validation';
import type { ContenderOutcome } from './contender';
import type { EngineDetails, RpcTiming } from './protocol';

interface BatchRecord {
  endedAt: number;
  latencyMs: number;
  preconditionRetries: number;
  transientRetries: number;
}

/**
 * Times every call of one WireClient method (the batch core's reads and commits), from outside:
 * the bench's own instrumentation of the prototype, in the engine's child process only.
 */
function timeCalls(method: 'batchGet' | 'commit'): RpcTiming {
  const timing: RpcTiming = { calls: 0, totalMs: 0 };
  const prototype = WireClient.prototype as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  const original = prototype[method];
  prototype[method] = async function timed(this: WireClient, ...args: unknown[]) {
    const started = performance.now();
    try {
      return await original.apply(this, args);
    } finally {
      timing.calls++;
      timing.totalMs += performance.now() - started;
    }
  };
  return timing;
}

/** The batch outcomes the runner logs at debug level ("batch p-seq committed", with its counters). */
function batchRecord(message: string, fields: Record<string, unknown> | undefined, at: number): BatchRecord | null {
  if (!message.startsWith('batch ') || typeof fields?.latencyMs !== 'number') return null;
  return {
    endedAt: at,
    latencyMs: fields.latencyMs,
    preconditionRetries: typeof fields.preconditionRetries === 'number' ? fields.preconditionRetries : 0,
    transientRetries: typeof fields.transientRetries === 'number' ? fields.transientRetries : 0,
  };
}

/**
 * The engine as `firemigrate run <id> --execute` drives it: the CLI's Firestore client, the
 * configuration from the environment, the lease, `startRun` and its outcome — before-images,
 * preconditions, batch markers, per-document validation and the final sweep included — then the
 * validation report `run --execute` prints (timed apart).
 */
export async function runEngine(projectId: string, migration: Migration): Promise<ContenderOutcome> {
  const config = loadConfig(process.env);
  const connection = openFirestore({ project: projectId });
  const wire = WireClient.forFirestore(connection.db);
  const paths = new ControlPaths(config.migration.controlCollection);
  const batchGet = timeCalls('batchGet');
  const commit = timeCalls('commit');
  const batches: BatchRecord[] = [];
  const started = performance.now();
  const log: RunLog = {
    debug(message, fields) {
      const record = batchRecord(message, fields, performance.now() - started);
      if (record) batches.push(record);
    },
    info() {},
    warning(message) {
      process.stderr.write(`  engine warning: ${message}\n`);
    },
    error(message) {
      process.stderr.write(`  engine error: ${message}\n`);
    },
  };
  try {
    const session = await startRun(
      {
        db: connection.db,
        wire,
        migration,
        config,
        paths,
        lease: leaseSettings(),
        holder: newLeaseHolder(),
        log,
      },
      { user: 'bench', identity: 'emulator', reason: 'npm run bench' },
    );
    const outcome = await session.outcome;
    const elapsedMs = performance.now() - started;
    if (outcome.status !== 'completed' || !outcome.totals) {
      throw new Error(`the engine's run ${outcome.runId} ended ${outcome.status}${outcome.error ? `: ${outcome.error.message}` : ''}`);
    }
    // The run's docs/s compares with the loops (every written document validated against `to`,
    // MIGRATION_VALIDATION_ENABLED); the report `run --execute` then makes — one more scan of the
    // whole target — is timed on its own, beside it.
    const validationStarted = performance.now();
    const run = await new RunStore(connection.db, paths).get(migration.id, outcome.runId);
    const report = await validateRun({ db: connection.db, migration, config, paths, run });
    await storeReport(connection.db, paths, report);
    if (!report.ok) throw new Error(`the engine's run ${outcome.runId} failed its validation report: ${JSON.stringify(report.failures)}`);
    const validationMs = performance.now() - validationStarted;
    const { totals } = outcome;
    if (batches.length === 0) process.stderr.write('  note: the runner logged no batch outcomes at debug level; engine batch latencies are unknown\n');
    const engine: EngineDetails = {
      runId: outcome.runId,
      status: outcome.status,
      planningMs: batches.length ? Math.min(...batches.map((batch) => batch.endedAt - batch.latencyMs)) : NaN,
      finishingMs: batches.length ? elapsedMs - Math.max(...batches.map((batch) => batch.endedAt)) : NaN,
      validationMs,
      partitions: session.partitions,
      preconditionRetries: batches.reduce((sum, batch) => sum + batch.preconditionRetries, 0),
      batchesRetried: batches.filter((batch) => batch.preconditionRetries > 0).length,
      transientRetries: batches.reduce((sum, batch) => sum + batch.transientRetries, 0),
      settings: {
        batchSize: config.migration.batchSize,
        concurrentBatches: config.migration.concurrentBatches,
        connectionPoolSize: config.migration.connectionPoolSize,
        validationEnabled: config.migration.validationEnabled,
        rollbackEnabled: config.migration.rollbackEnabled,
      },
      batchGet,
      commit,
    };
    return {
      // Every document passes through the partitions once; the final sweep re-examines some of them.
      processed: totals.migrated + totals.skipped + totals.alreadyMigrated + totals.failed,
      // Documents the partitions left (e.g. precondition-exhausted under the app writer) may be migrated by the sweep.
      migrated: totals.migrated + (outcome.sweep?.migrated ?? 0),
      elapsedMs,
      batchLatenciesMs: batches.map((batch) => batch.latencyMs),
      engine,
    };
  } finally {
    await wire.close();
    await connection.close();
  }
}
