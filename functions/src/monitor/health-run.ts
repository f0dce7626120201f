/**
 * The health check of the Cloud Functions pipeline (the `healthCheck` schedule): for each active
 * run, the error rate of its documents (failed / processed, summed over its batch markers) and
 * its stalled partitions (unfinished, with no batch committed for longer than `stallAfterMs`).
 * The result is stored as a health snapshot; a critical one is announced on `migration-alerts`,
 * naming the snapshot — `onMigrationAlert` trusts the stored snapshot, never the message.
 *
 * Score = 100 − 5·warnings − 15·errors − 30·critical (floor 0); status CRITICAL with any
 * critical check, DEGRADED with any other issue, MAINTENANCE while a run is in progress without
 * issues, HEALTHY otherwise (DESIGN.md "Health").
 */
import { randomBytes } from 'node:crypto';
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { Logger } from '../cli/log';
import type { FiremigrateConfig } from '../config';
import { PartitionStore } from '../control/partitions';
import type { ControlPaths } from '../control/paths';
import { processedOf, sumMarkers } from '../control/progress';
import { RegistryStore } from '../control/registry-store';
import type { RunDocument } from '../control/runs';
import type { AlertBus } from '../transports/alert-bus';
import { TOPICS } from '../transports/names';

export type CheckLevel = 'ok' | 'warning' | 'error' | 'critical';
export type SnapshotStatus = 'HEALTHY' | 'DEGRADED' | 'CRITICAL' | 'MAINTENANCE';

export interface HealthCheckResult {
  name: 'errorRate' | 'stalledPartitions';
  level: CheckLevel;
  /** The measured value: a ratio 0..1 for errorRate (null: nothing processed yet), a count for stalledPartitions. */
  value: number | null;
  message: string;
}

export interface RunHealth {
  migrationId: string;
  runId: string;
  processed: number;
  failed: number;
  stalledPartitions: string[];
  checks: HealthCheckResult[];
  critical: boolean;
}

export interface StoredHealthSnapshot {
  id: string;
  status: SnapshotStatus;
  score: number;
  checkedAt: Timestamp;
  runs: RunHealth[];
}

export interface HealthRunDeps {
  db: Firestore;
  paths: ControlPaths;
  config: Pick<FiremigrateConfig, 'monitor'>;
  alerts: AlertBus;
  /** A running partition without a committed batch for this long is stalled. */
  stallAfterMs: number;
  log: Logger;
}

const PENALTY: Record<CheckLevel, number> = { ok: 0, warning: 5, error: 15, critical: 30 };

export function healthScore(levels: readonly CheckLevel[]): number {
  return Math.max(0, 100 - levels.reduce((sum, level) => sum + PENALTY[level], 0));
}

export function snapshotStatus(levels: readonly CheckLevel[], activeRuns: number): SnapshotStatus {
  if (levels.includes('critical')) return 'CRITICAL';
  if (levels.some((level) => level !== 'ok')) return 'DEGRADED';
  return activeRuns > 0 ? 'MAINTENANCE' : 'HEALTHY';
}

/** The error-rate check against MONITOR_ALERT_THRESHOLDS.errorRate (ratios; alerts when above). */
export function errorRateCheck(failed: number, processed: number, thresholds: { warning: number; critical: number }): HealthCheckResult {
  if (processed === 0) return { name: 'errorRate', level: 'ok', value: null, message: 'no document processed yet' };
  const rate = failed / processed;
  const level: CheckLevel = rate > thresholds.critical ? 'critical' : rate > thresholds.warning ? 'warning' : 'ok';
  return { name: 'errorRate', level, value: rate, message: `${failed} of ${processed} documents failed (${(rate * 100).toFixed(2)} %; warning above ${thresholds.warning * 100} %, critical above ${thresholds.critical * 100} %)` };
}

export async function runHealthCheck(deps: HealthRunDeps, now: Date = new Date()): Promise<{ snapshot: StoredHealthSnapshot; alertMessageId: string | null }> {
  const { db, paths } = deps;
  const entries = await new RegistryStore(db, paths).list();
  const runs: RunDocument[] = [];
  for (const entry of entries) {
    if (!entry.activeRunId) continue;
    const run = (await db.doc(paths.run(entry.id, entry.activeRunId)).get()).data() as RunDocument | undefined;
    if (run?.status === 'running') runs.push(run);
  }
  const results = await Promise.all(runs.map((run) => checkRun(deps, run, now)));
  const levels = results.flatMap((result) => result.checks.map((check) => check.level));
  const checkedAt = Timestamp.fromDate(now);
  const id = `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
  const snapshot: StoredHealthSnapshot = { id, status: snapshotStatus(levels, runs.length), score: healthScore(levels), checkedAt, runs: results };
  await db.collection(paths.healthSnapshots()).doc(id).create(snapshot);
  let alertMessageId: string | null = null;
  if (snapshot.status === 'CRITICAL') {
    const critical = results.filter((result) => result.critical).map((result) => result.runId);
    alertMessageId = await deps.alerts.publish(TOPICS.alerts, { snapshotId: id, status: snapshot.status, runIds: critical }, { status: snapshot.status });
    deps.log.error(`health: CRITICAL (score ${snapshot.score}); alert ${alertMessageId} published for runs ${critical.join(', ')}`, { snapshotId: id });
  } else {
    deps.log.info(`health: ${snapshot.status} (score ${snapshot.score}), ${runs.length} active runs`, { snapshotId: id });
  }
  return { snapshot, alertMessageId };
}

async function checkRun(deps: HealthRunDeps, run: RunDocument, now: Date): Promise<RunHealth> {
  const { db, paths } = deps;
  const totals = await sumMarkers(db, paths, run.migrationId, run.runId);
  const processed = processedOf(totals);
  const errorRate = errorRateCheck(totals.failed, processed, deps.config.monitor.alertThresholds.errorRate);
  // Partitions with a batch committed within the window: one range query on committedAt (a
  // single-field index), reading a marker's partition only. Firestore has no descending key scan
  // for "latest marker of each partition".
  const since = Timestamp.fromMillis(now.getTime() - deps.stallAfterMs);
  const recent = await db.collection(paths.batches(run.migrationId, run.runId)).where('committedAt', '>', since).select('partition').get();
  const active = new Set(recent.docs.map((doc) => doc.get('partition') as string));
  const stalled: string[] = [];
  for (const partition of await new PartitionStore(db, paths).list(run.migrationId, run.runId)) {
    // updatedAt: planned or resumed (a new epoch) within the window counts as activity.
    if (partition.status === 'exhausted' || active.has(partition.partition) || partition.updatedAt.toMillis() > since.toMillis()) continue;
    stalled.push(partition.partition);
  }
  const stallCheck: HealthCheckResult = {
    name: 'stalledPartitions',
    level: stalled.length > 0 ? 'error' : 'ok',
    value: stalled.length,
    message: stalled.length > 0 ? `no batch committed for over ${Math.round(deps.stallAfterMs / 60000)} min in ${stalled.join(', ')}` : 'every unfinished partition committed recently',
  };
  const checks = [errorRate, stallCheck];
  return { migrationId: run.migrationId, runId: run.runId, processed, failed: totals.failed, stalledPartitions: stalled, checks, critical: checks.some((check) => check.level === 'critical') };
}
