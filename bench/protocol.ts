/** What the bench's parent and its child processes say to each other (over the fork IPC channel). */

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

export type Job = ContenderJob | WriterJob;

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
  | { type: 'error'; message: string };

export type ParentMessage = { type: 'job'; job: Job } | { type: 'stop' };
