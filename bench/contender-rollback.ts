import { loadConfig } from '../functions/src/config';
import { leaseSettings, newLeaseHolder } from '../functions/src/control/lease';
import { ControlPaths } from '../functions/src/control/paths';
import { createRegistry } from '../functions/src/definitions/registry';
import type { RunLog } from '../functions/src/engine/runner';
import { WireClient } from '../functions/src/engine/wire/client';
import { openFirestore } from '../functions/src/cli/context';
import { startRollback } from '../functions/src/rollback';
import { BENCH_MIGRATION } from './contender';
import { highWaterMarkMb, RssSampler } from './measure';
import type { RollbackJob, RollbackResult } from './protocol';

/**
 * The rollback as `ROLLBACK_CONFIRMED=true firemigrate rollback <id> --execute` drives it once
 * confirmed: the CLI's Firestore client, the configuration from the environment, `startRollback`
 * (strategy chosen by the engine: restore from the before-images) and its outcome, post-rollback
 * validation included. The confirmation gate is the CLI's, so ROLLBACK_CONFIRMED plays no part.
 */
export async function runRollback(job: RollbackJob): Promise<RollbackResult> {
  const sampler = new RssSampler();
  const cpu = process.cpuUsage();
  sampler.start();
  const config = loadConfig(process.env);
  const connection = openFirestore({ project: job.projectId });
  const wire = WireClient.forFirestore(connection.db);
  const log: RunLog = {
    debug() {},
    info() {},
    warning(message) {
      process.stderr.write(`  rollback warning: ${message}\n`);
    },
    error(message) {
      process.stderr.write(`  rollback error: ${message}\n`);
    },
  };
  try {
    let firstBatchMs: number | null = null;
    const started = performance.now();
    const session = await startRollback(
      {
        db: connection.db,
        wire,
        config,
        paths: new ControlPaths(config.migration.controlCollection),
        registry: createRegistry([BENCH_MIGRATION]),
        lease: leaseSettings(config),
        holder: newLeaseHolder(),
        log,
      },
      { migrationId: BENCH_MIGRATION.id, force: false, reason: 'npm run bench', user: 'bench', identity: 'emulator' },
      {
        onBatch(_session, totals) {
          if (firstBatchMs === null && totals.restored > 0) firstBatchMs = performance.now() - started;
        },
      },
    );
    const outcome = await session.outcome;
    const elapsedMs = performance.now() - started;
    const peakRssMb = sampler.stop();
    const used = process.cpuUsage(cpu);
    const { validation } = outcome;
    return {
      runId: outcome.runId,
      strategy: outcome.strategy,
      status: outcome.status,
      statusReason: outcome.statusReason,
      totals: outcome.totals,
      elapsedMs,
      firstBatchMs,
      validation: validation ? { sampled: validation.sampled, equal: validation.equal, ok: validation.ok } : null,
      peakRssMb,
      startRssMb: sampler.startMb,
      hwmRssMb: highWaterMarkMb(),
      cpuUserMs: used.user / 1000,
      cpuSystemMs: used.system / 1000,
      settings: { batchSize: config.rollback.batchSize, concurrentBatches: config.migration.concurrentBatches, timeoutMs: config.rollback.timeoutMs },
    };
  } finally {
    await wire.close();
    await connection.close();
  }
}
