/** The API responses the page reads (functions/src/api: read-routes.ts, dashboard-routes.ts, rollback-routes.ts). */

export interface StatusResponse {
  inMigration: boolean;
  version: string | null;
  healthStatus: string;
  health: { status: string; score: number; checkedAt: string } | null;
  mode: { mode: string; collections: string[]; migrationId: string | null; changedAt: string | null; changedBy: string | null };
  checkedAt: string;
}

export interface MigrationItem {
  id: string;
  version: string;
  description: string | null;
  deployed: boolean;
  registry: { status: string; lastRunId: string | null; appliedAt: string | null; appliedBy: string | null; activeRunId: string | null } | null;
}

export interface RunListItem {
  runId: string;
  migrationId: string;
  kind: 'migrate' | 'rollback';
  mode: 'dry-run' | 'execute';
  status: string;
  statusReason: string | null;
  user: string;
  reason: string | null;
  createdAt: string | null;
  finishedAt: string | null;
  rollback?: { sourceRuns: string[]; strategy: string | null };
}

export interface RunView extends RunListItem {
  progress: { processed: number; total: number | null; percent: number | null; migrated: number; skipped: number; alreadyMigrated: number; failed: number; batches: number };
  throughput: { docsPerSecond: number | null };
  estimatedCompletion: string | null;
  failureRecords: number;
  partitions: { count: number | null; method: string | null };
}

export interface RunDetails {
  partitions: Array<{ partition: string; status: string; batches: number; processed: number; failed: number; lastCommitAt: string | null }>;
  throughput: { bucketSeconds: number | null; points: Array<{ at: string; docsPerSecond: number }> };
  batchLatency: { samples: number; p50: number; p95: number; p99: number; max: number } | null;
  failures: { total: number; listed: Array<{ path: string; errorClass: string; severity: string; message: string; attempts: number }> };
}

export interface Alert {
  key: string;
  severity: string;
  category: string;
  message: string;
  recommendedActions: string[];
  openedAt?: string | null;
  lastSeenAt: string | null;
}

export interface HealthHistory {
  latest: { status: string; score: number; checkedAt: string | null } | null;
  timeline: Array<{ status: string; score: number; checkedAt: string | null }>;
  openAlerts: Alert[];
  resolvedAlerts: Alert[];
}

export interface RollbackAssessment {
  migrationId: string;
  strategy: { chosen: string; reason: string };
  runs: Array<{ runId: string; status: string; backups: number }>;
  documents: { total: number; toRestore: number; alreadyRestored: number; conflicts: number; missingDocuments: number; missingBackups: number };
  conflicts: Array<Record<string, unknown>>;
  conflictsNotListed: number;
  impact: Array<{ name: string; description?: string; count: number | null; error?: string }>;
  readiness: Array<{ check: string; ok: boolean; detail: string }>;
  estimatedDurationMs: number | null;
  ready: boolean;
}
