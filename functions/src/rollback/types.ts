import type { Firestore } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import type { LeaseSettings } from '../control/lease';
import type { ControlPaths } from '../control/paths';
import type { Migration } from '../definitions/types';
import type { RunLog } from '../engine/runner';
import type { WireClient } from '../engine/wire/client';

/**
 * `restore` applies the before-images of every run of the migration; `revert` applies `down` to
 * migrated documents (runs made with MIGRATION_ROLLBACK_ENABLED=false have no before-images).
 * Backup restoration (a managed export import) lives with the entry points, not here.
 */
export type RollbackStrategy = 'restore' | 'revert';

export interface RollbackScope {
  migrationId: string;
  /** Only this run's changes; default: every run of the migration (DESIGN.md G4: rollback covers a migration). */
  runId?: string;
}

export interface RollbackRequest extends RollbackScope {
  /** Override; by default restore when every run in scope has before-images, else revert via `down`. */
  strategy?: RollbackStrategy;
  /** Restore conflicts' migrated fields anyway. */
  force: boolean;
  reason: string;
  user: string;
  identity: string;
}

export interface RollbackContext {
  db: Firestore;
  wire: WireClient;
  config: FiremigrateConfig;
  paths: ControlPaths;
  registry: { get(id: string): Migration };
  lease: LeaseSettings;
  /** Names this process in the lease (see `newLeaseHolder`). */
  holder: string;
  log: RunLog;
}

export interface RollbackConflict {
  path: string;
  runId: string;
  reason: string;
}

export interface RollbackAssessment {
  migrationId: string;
  scope: RollbackScope;
  strategy: { chosen: RollbackStrategy; reason: string; overridden: boolean };
  /** The migrate runs in scope, newest first (the order they are rolled back in). */
  runs: Array<{ runId: string; status: string; backups: number }>;
  documents: {
    /** Before-images in scope (restore), or documents at the target version (revert). */
    total: number;
    toRestore: number;
    alreadyRestored: number;
    conflicts: number;
    missingDocuments: number;
    missingBackups: number;
  };
  /** At most `CONFLICT_LIST_LIMIT` entries; `conflictsNotListed` says how many more there are. */
  conflicts: RollbackConflict[];
  conflictsNotListed: number;
  impact: Array<{ name: string; description?: string; count: number | null; error?: string }>;
  readiness: Array<{ check: string; ok: boolean; detail: string }>;
  /** From measured figures (the migration runs' batch-marker latencies), null without any. */
  estimatedDurationMs: number | null;
  ready: boolean;
}

export interface AssessOptions extends RollbackScope {
  strategy?: RollbackStrategy;
  force?: boolean;
}

/** Counters of a rollback (sums over its batch markers, or the session's live ones). */
export interface RollbackTotals {
  restored: number;
  alreadyRestored: number;
  conflicts: number;
  /** Conflicts restored anyway because of `force`. */
  forced: number;
  missingDocuments: number;
  missingBackups: number;
  /** Documents that kept changing past ROLLBACK_MAX_RETRIES, or whose revert failed. */
  failed: number;
  batches: number;
}

export interface RollbackProgress extends RollbackTotals {
  /** Before-images (restore) or documents (revert) in scope, when known. */
  total: number | null;
  processed: number;
  startedAt: number;
  docsPerSecond: number;
  /** The source run being rolled back now. */
  currentRunId: string | null;
}

export interface RollbackValidation {
  /** Documents compared with their before-images; `mismatches` lists the paths that differ. */
  sampled: number;
  equal: number;
  mismatches: string[];
  /** Sampled documents parsed with the migration's `from` schema. */
  fromSchema: { checked: number; passed: number; failures: Array<{ path: string; issues: string }> };
  probes: Array<{ name: string; ok: boolean; latencyMs: number; detail: string }>;
  ok: boolean;
}

export type RollbackOutcomeStatus = 'completed' | 'paused' | 'emergency_stopped' | 'aborted' | 'failed' | 'lease-lost';

export interface RollbackOutcome {
  runId: string;
  migrationId: string;
  strategy: RollbackStrategy;
  status: RollbackOutcomeStatus;
  statusReason: string | null;
  totals: RollbackTotals | null;
  validation: RollbackValidation | null;
  error: Error | null;
}

export interface RollbackSession {
  runId: string;
  migrationId: string;
  strategy: RollbackStrategy;
  progress(): RollbackProgress;
  /** Stop taking new batches, let the one in flight settle, then pause the rollback run (resumable). */
  stop(reason: string): void;
  outcome: Promise<RollbackOutcome>;
}

export interface RollbackCaller {
  user: string;
  identity: string;
  reason: string;
}

export interface RollbackBatchInput {
  rollbackRunId: string;
  migrationId: string;
  sourceRunId: string;
  seq: number;
  /** The last backup id of the previous batch of this source run; null for the first batch. */
  afterBackupId: string | null;
  force: boolean;
}

export interface RollbackBatchResult {
  /** `duplicate`: the batch marker already existed, the batch was committed by another delivery. */
  status: 'committed' | 'duplicate' | 'empty';
  /** Cursor for the next batch: the last backup id this batch covered (from the marker when duplicate). */
  lastBackupId: string | null;
  /** No backup of the source run after `lastBackupId`. */
  done: boolean;
  totals: Omit<RollbackTotals, 'batches'>;
  conflicts: RollbackConflict[];
  latencyMs: number;
  preconditionRetries: number;
  transientRetries: number;
}

/** `.../runs/{rollbackRunId}` fields a rollback run adds to the run document. */
export interface RollbackRunFields {
  strategy: RollbackStrategy;
  force: boolean;
  /** The migrate runs rolled back, newest first: the order of execution. */
  sourceRuns: string[];
  /** Set when the scope is one run. */
  scopeRunId: string | null;
  rollbackTotals?: RollbackTotals | null;
  validation?: RollbackValidation | null;
}
