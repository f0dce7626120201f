/** What the bench's parent and its child processes say to each other (over the fork IPC channel). */
import type { RollbackTotals } from '../functions/src/rollback/types';

export const CONTENDERS = ['engine', 'hand-loop', 'fireway'] as const;
export type ContenderName = (typeof CONTENDERS)[number];

export const SCENARIOS = ['quiet', 'writer'] as const;
export type Scenario = (typeof SCENARIOS)[number];

/** Where every child finds the data: the emulator comes from FIRESTORE_EMULATOR_HOST. */
export interface DataLocation {
  projectId: string;
  collection: string;
}

export interface ContenderJob extends DataLocation {
  kind: 'contender';
  contender: ContenderName;
}

export interface WriterJob extends DataLocation {
  kind: 'writer';
  /** The dataset, to find the hot documents (see `hotTradePaths`). */
  docs: number;
  seed: number;
  now: string;
  ratePerSecond: number;
}

/** Undo the engine's run of the bench migration (after it was verified), as `firemigrate rollback --execute` does. */
export interface RollbackJob extends DataLocation {
  kind: 'rollback';
}

export type Job = ContenderJob | WriterJob | RollbackJob;

/** Latency figures of one run's batches (a contender's unit of commit). */
export interface LatencySummary {
  count: number;
  p50Ms: number;
  p95Ms: number;
  meanMs: number;
}

/** Time spent in one kind of RPC, summed over its calls. */
export interface RpcTiming {
  calls: number;
  totalMs: number;
}

export interface EngineDetails {
  runId: string;
  status: string;
  /** From startRun to the first batch's start: lease, count, partition plan. */
  planningMs: number;
  /** From the last batch's end to the run's outcome: the final sweep's last scan, finalisation. */
  finishingMs: number;
  /** The validation report after the run (a scan of the whole target), as `run --execute` makes it: not in the run's docs/s. */
  validationMs: number;
  partitions: number;
  /** Sum of the batches' FAILED_PRECONDITION retries. */
  preconditionRetries: number;
  /** Batches that needed at least one such retry. */
  batchesRetried: number;
  transientRetries: number;
  /** The engine's settings that shape throughput. */
  settings: { batchSize: number; concurrentBatches: number; connectionPoolSize: number; validationEnabled: boolean; rollbackEnabled: boolean };
  /** WireClient calls made by batches (all of them are: the runner's own writes use the SDK). */
  batchGet: RpcTiming;
  commit: RpcTiming;
}

export interface ContenderResult {
  contender: ContenderName;
  /** Documents the contender went through (read and decided on). */
  processed: number;
  migrated: number;
  /** Already at target, skipped or failed (malformed). */
  notMigrated: number;
  elapsedMs: number;
  batches: LatencySummary;
  /** Max of process.memoryUsage.rss() sampled every 50 ms. */
  peakRssMb: number;
  /** RSS when the contender started (modules loaded, client created). */
  startRssMb: number;
  /** The kernel's high-water mark (VmHWM), a cross-check of the sampled peak. */
  hwmRssMb: number | null;
  cpuUserMs: number;
  cpuSystemMs: number;
  engine?: EngineDetails;
}

export interface RollbackResult {
  runId: string;
  strategy: string;
  status: string;
  statusReason: string | null;
  totals: RollbackTotals | null;
  /** From the startRollback call (the operator's confirmed request) to the outcome, validation included. */
  elapsedMs: number;
  /** From the startRollback call to the first committed restore batch; null when none committed. */
  firstBatchMs: number | null;
  /** The rollback's own post-rollback validation (sample of ROLLBACK_VALIDATION_SAMPLE). */
  validation: { sampled: number; equal: number; ok: boolean } | null;
  peakRssMb: number;
  startRssMb: number;
  hwmRssMb: number | null;
  cpuUserMs: number;
  cpuSystemMs: number;
  /** The settings that shape a rollback's throughput. */
  settings: { batchSize: number; concurrentBatches: number; timeoutMs: number };
}

export interface WriterResult {
  writes: number;
  errors: number;
  elapsedMs: number;
  /** Each written document's last write time (`seconds.nanos`): tells the app's last write from the migration's. */
  lastWrites: Array<[path: string, updateTime: string]>;
}

export type ChildMessage =
  | { type: 'ready' }
  | { type: 'result'; result: ContenderResult }
  | { type: 'writer-result'; result: WriterResult }
  | { type: 'rollback-result'; result: RollbackResult }
  | { type: 'error'; message: string };

export type ParentMessage = { type: 'job'; job: Job } | { type: 'stop' };
