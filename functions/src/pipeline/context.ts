import type { Firestore } from '@google-cloud/firestore';
import type { Logger } from '../cli/log';
import type { FiremigrateConfig } from '../config';
import { AuditLog } from '../control/audit';
import { LeaseStore, type LeaseSettings } from '../control/lease';
import { PartitionStore } from '../control/partitions';
import type { ControlPaths } from '../control/paths';
import { RegistryStore } from '../control/registry-store';
import { RunStore } from '../control/runs';
import type { MigrationRegistry } from '../definitions/registry';
import type { WireClient } from '../engine/wire/client';
import type { TaskQueue } from '../transports/task-queue';
import type { BatchTask } from './batch-payload';

/** What the task handlers of the Cloud Functions pipeline work with (index.ts builds it; tests build their own). */
export interface PipelineContext {
  db: Firestore;
  wire: WireClient;
  config: FiremigrateConfig;
  paths: ControlPaths;
  registry: MigrationRegistry;
  /** The `migrateBatch` queue (QUEUES.migrateBatch). */
  batchQueue: TaskQueue<BatchTask>;
  lease: LeaseSettings;
  log: Logger;
}

/**
 * The lease holder of a run driven by tasks. No single process lives for the whole run, so the
 * holder names the run itself: every task of the run may renew or release the lease, and a CLI
 * process (another holder) is refused while the lease is live.
 */
export function pipelineHolder(runId: string): string {
  return `cloud-tasks/${runId}`;
}

export class PipelineStores {
  readonly runs: RunStore;
  readonly partitions: PartitionStore;
  readonly registry: RegistryStore;
  readonly leases: LeaseStore;
  readonly audit: AuditLog;

  constructor(ctx: Pick<PipelineContext, 'db' | 'paths' | 'lease'>) {
    this.runs = new RunStore(ctx.db, ctx.paths);
    this.partitions = new PartitionStore(ctx.db, ctx.paths);
    this.registry = new RegistryStore(ctx.db, ctx.paths);
    this.leases = new LeaseStore(ctx.db, ctx.paths, ctx.lease);
    this.audit = new AuditLog(ctx.db, ctx.paths);
  }
}

/** The audit identity of work done by the pipeline on behalf of the run's requester. */
export const PIPELINE_IDENTITY = 'firemigrate/cloud-functions';
