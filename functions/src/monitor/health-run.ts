/**
 * One health run (the `healthCheck` schedule, `firemigrate monitor`): the four dimensions' checks
 * for the database, each monitored migration and each run in progress; the score and status; the
 * trend against the previous snapshots; the snapshot stored under ControlPaths.healthSnapshots();
 * alerts (de-duplicated) on `migration-alerts` and the webhook; the figures to the metrics sink.
 *
 * A CRITICAL snapshot with a critical run still running is announced on `migration-alerts` as an
 * escalation naming the snapshot, every time: `onMigrationAlert` trusts the stored snapshot, never
 * the message, and stops those runs. Escalations are never de-duplicated — a resumed run that is
 * still critical must be stopped again — while the human-facing alerts are.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Timestamp, type Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { Logger } from '../cli/log';
import type { FiremigrateConfig } from '../config';
import type { ControlPaths } from '../control/paths';
import { countFailureRecords, sumMarkers } from '../control/progress';
import { RegistryStore, type RegistryEntry } from '../control/registry-store';
import type { RunDocument } from '../control/runs';
import type { MigrationRegistry } from '../definitions/registry';
import type { Migration } from '../definitions/types';
import { targetQuery } from '../engine/planner';
import type { AlertBus } from '../transports/alert-bus';
import type { MetricPoint, MetricsSink } from '../transports/metrics';
import { TOPICS } from '../transports/names';
import { AlertStateStore, alertsOf, planAlerts, type AlertPlan } from './alerts';
import { getMode } from '../compat/modes';
import { syncRunId } from '../compat/sync-trigger';
import { lagging, readDocuments, readerCheck, syncTriggerCheck, type SyncFigures } from './checks/compatibility';
import { infrastructureChecks } from './checks/infrastructure';
import { countOrphans, countsCheck, orphanCheck, schemaCheck } from './checks/integrity';
import { batchChecks, batchFigures, measureProbe, poolCheck, probeCheck, readRecentMarkers, stalledCheck, stalledPartitions, type ProbeMeasurement } from './checks/performance';
import { readIndexFile, type IndexDefinition, type IndexStatusSource } from './index-status';
import { atTargetQuery, sampleDocuments } from './sample';
import { countedLevels, healthScore, snapshotStatus } from './score';
import { compareTrends, metricMap, type TrendReport } from './trends';
import { scoped, type CheckResult, type HealthCheck, type HealthMetric, type SnapshotStatus } from './types';
import { slackMessage, type AlertEvent, type AlertWebhook } from './webhook';

/** The repository's index file: three levels above functions/src/monitor and functions/lib/monitor. */
export const DEFAULT_INDEX_FILE = join(__dirname, '..', '..', '..', 'firestore.indexes.json');
/** Previous snapshots a trend compares with. */
export const TREND_DEPTH = 5;
/**
 * Latest snapshots searched for those of the same scope (all migrations, or one version): an hour
 * of the scheduled minutely runs, so a `monitor --version` run finds its predecessors among them.
 */
export const TREND_WINDOW = 60;

/** A run in progress, as `onMigrationAlert` reads it: `critical` runs are stopped. */
export interface RunHealth {
  migrationId: string;
  runId: string;
  /** The run's `resumes` when checked: the session of the run this verdict is about. */
  resumes: number;
  /** Documents of the batches committed within the window, and the failed among them. */
  processed: number;
  failed: number;
  stalledPartitions: string[];
  /** The run's own checks and its migration's. */
  checks: HealthCheck[];
  critical: boolean;
}

export interface StoredHealthSnapshot {
  id: string;
  status: SnapshotStatus;
  score: number;
  checkedAt: Timestamp;
  durationMs: number;
  activeRuns: number;
  /** Every check: infrastructure (scope null), each migration's, each run's. */
  checks: HealthCheck[];
  runs: RunHealth[];
  /** `{ "<migrationId>/<name>" | "<name>": value }`: what later snapshots' trends compare with. */
  metrics: Record<string, number>;
  /** Set when the run covered only the migrations of this version (`firemigrate monitor --version`); trends compare like with like. */
  version: string | null;
  trend: TrendReport;
  alerts: { opened: number; changed: number; persisting: number; resolved: number };
}

export interface HealthRunDeps {
  db: Firestore;
  paths: ControlPaths;
  config: Pick<FiremigrateConfig, 'monitor' | 'migration'>;
  registry: MigrationRegistry;
  alerts: AlertBus;
  /** A running partition without a committed batch for this long is stalled; also the window of the batch figures. */
  stallAfterMs: number;
  log: Logger;
  /** The Admin API's index list; null on the emulator (reported as not checkable there). */
  indexes: IndexStatusSource | null;
  /** The declared indexes (default: read from DEFAULT_INDEX_FILE). */
  declaredIndexes?: IndexDefinition[] | Error;
  metrics?: MetricsSink;
  webhook?: AlertWebhook | null;
  /** Migrations to monitor beside those with a registry entry (e.g. before their first run). */
  migrationIds?: readonly string[];
  /**
   * Only the migrations of this version: registry entries and loaded definitions whose `version`
   * equals it (definitions included before their first run). Alerts of other migrations are left
   * open, neither seen nor resolved.
   */
  version?: string;
  /** How long a legacy write made during dual-read may stay legacy before the sync trigger counts as lagging (default SYNC_GRACE_MS). */
  syncGraceMs?: number;
}

/** The sync trigger normally lands within seconds; a minute absorbs cold starts and its retries. */
export const SYNC_GRACE_MS = 60_000;

export interface HealthRunResult {
  snapshot: StoredHealthSnapshot;
  /** The escalation message's id, when one was published. */
  alertMessageId: string | null;
  alertPlan: AlertPlan;
  /** Webhook posts that failed (the health run itself does not fail for them). */
  webhookErrors: string[];
}

interface Target {
  migrationId: string;
  migration: Migration | null;
  /** The run in progress, else the latest run. */
  run: RunDocument | null;
  active: boolean;
}

function declared(deps: HealthRunDeps): IndexDefinition[] | Error {
  if (deps.declaredIndexes) return deps.declaredIndexes;
  try {
    return readIndexFile(DEFAULT_INDEX_FILE);
  } catch (error) {
    return error as Error;
  }
}

/** The versions a health run can be restricted to: of the registry entries and of the loaded definitions, sorted. */
export async function knownVersions(db: Firestore, paths: ControlPaths, registry: MigrationRegistry): Promise<string[]> {
  const versions = new Set([...(await new RegistryStore(db, paths).list()).map((entry) => entry.version), ...registry.all().map((migration) => migration.version)]);
  return [...versions].sort((a, b) => a.localeCompare(b, 'en', { numeric: true }));
}

async function findTargets(deps: HealthRunDeps): Promise<Target[]> {
  const { db, paths, version } = deps;
  const entries = new Map<string, RegistryEntry | null>((await new RegistryStore(db, paths).list()).map((entry) => [entry.id, entry]));
  for (const id of deps.migrationIds ?? []) if (!entries.has(id)) entries.set(id, null);
  if (version !== undefined) {
    for (const migration of deps.registry.all()) if (migration.version === version && !entries.has(migration.id)) entries.set(migration.id, null);
  }
  const known = new Set(deps.registry.all().map((migration) => migration.id));
  const targets: Target[] = [];
  for (const [migrationId, entry] of entries) {
    // An entry records the version it ran; a definition not run yet has only its own.
    if (version !== undefined && (entry?.version ?? (known.has(migrationId) ? deps.registry.get(migrationId).version : null)) !== version) continue;
    const runId = entry?.activeRunId ?? entry?.lastRunId ?? null;
    const run = runId ? ((await db.doc(paths.run(migrationId, runId)).get()).data() as RunDocument | undefined) ?? null : null;
    targets.push({ migrationId, migration: known.has(migrationId) ? deps.registry.get(migrationId) : null, run, active: run?.status === 'running' });
  }
  return targets;
}

const notLoaded = (migrationId: string, name: string, dimension: CheckResult['dimension']): CheckResult => ({
  name, dimension, status: 'not-checkable', value: null, threshold: null, unit: 'ratio',
  message: `not checkable: the definition of ${migrationId} is not loaded here (pass --migrations, or deploy it with the functions)`,
  recommendedAction: null,
});

interface MigrationFigures {
  checks: HealthCheck[];
  metrics: HealthMetric[];
}

async function syncFigures(deps: HealthRunDeps, migration: Migration, sample: readonly QueryDocumentSnapshot[], now: Date): Promise<SyncFigures> {
  const graceMs = deps.syncGraceMs ?? SYNC_GRACE_MS;
  const figures: SyncFigures = { mode: new Error('mode not read'), migrationId: migration.id, lagging: [], writtenDuringDualRead: 0, synced: 0, graceMs };
  try {
    figures.mode = await getMode(deps.db);
  } catch (error) {
    figures.mode = error as Error;
    return figures;
  }
  const since = figures.mode.changedAt;
  if (figures.mode.mode !== 'dual-read' || !since) return figures;
  figures.writtenDuringDualRead = sample.filter((doc) => doc.updateTime.toMillis() >= since.toMillis()).length;
  figures.lagging = lagging(sample, migration, since, now.getTime() - graceMs);
  figures.synced = (await deps.db.collection(deps.paths.batches(migration.id, syncRunId(figures.mode))).count().get()).data().count;
  return figures;
}

async function migrationChecks(deps: HealthRunDeps, target: Target, now: Date): Promise<MigrationFigures> {
  const scope = { migrationId: target.migrationId, runId: null };
  const { migration } = target;
  if (!migration) {
    return { checks: scoped(scope, [notLoaded(target.migrationId, 'probes', 'performance'), notLoaded(target.migrationId, 'schemaCompliance', 'integrity'), notLoaded(target.migrationId, 'compatReader', 'compatibility')]), metrics: [] };
  }
  const { db, config } = deps;
  const thresholds = config.monitor.alertThresholds;
  const sampleSize = config.monitor.sampleSize;
  const metrics: HealthMetric[] = [];
  const metric = (name: string, value: number | null | undefined, unit: string) => {
    if (typeof value === 'number' && Number.isFinite(value)) metrics.push({ name, migrationId: migration.id, value, unit });
  };

  const probes: ProbeMeasurement[] = [];
  for (const probe of migration.probes ?? []) {
    probes.push(await measureProbe(db, probe, { samples: sampleSize, timeoutMs: thresholds.responseTime.critical }));
  }
  const probeResults = probes.map((measured) => probeCheck(measured, thresholds));
  const measuredProbes = probes.filter((probe) => probe.latencies);
  if (measuredProbes.length > 0) {
    // The app's worst read stands for its availability.
    metric('probeP50Ms', Math.max(...measuredProbes.map((probe) => probe.latencies!.p50)), 'ms');
    metric('probeP95Ms', Math.max(...measuredProbes.map((probe) => probe.latencies!.p95)), 'ms');
    metric('probeP99Ms', Math.max(...measuredProbes.map((probe) => probe.latencies!.p99)), 'ms');
  }
  const attempts = probes.reduce((sum, probe) => sum + probe.attempts, 0);
  if (attempts > 0) metric('probeErrorRate', probes.reduce((sum, probe) => sum + probe.failures, 0) / attempts, 'ratio');

  const atTarget = await sampleDocuments(migration, atTargetQuery(db, migration), sampleSize);
  let valid = 0;
  let firstIssues: string | null = null;
  for (const doc of atTarget) {
    const parsed = migration.to.safeParse(doc.data());
    if (parsed.success) valid++;
    else firstIssues ??= `${doc.ref.path}: ${parsed.error.issues.map((issue) => `${issue.path.join('.') || '(document)'} ${issue.code}`).join(', ')}`;
  }
  const schema = schemaCheck(atTarget.length, valid, firstIssues, thresholds, migration.marker.to);
  metric('integrityRatio', schema.value, 'ratio');
  const orphans = migration.references?.length && atTarget.length > 0 ? await countOrphans(db, atTarget, migration.references) : null;
  const orphan = orphanCheck(migration, atTarget.length, orphans);
  metric('orphans', orphan.value, 'count');

  const anyShape = await sampleDocuments(migration, targetQuery(db, migration.target), sampleSize);
  const reader = readerCheck(readDocuments(migration, anyShape), thresholds);
  metric('readableRatio', reader.value, 'ratio');
  const sync = syncTriggerCheck(await syncFigures(deps, migration, anyShape, now));
  metric('syncLaggingDocs', sync.value, 'docs');

  const checks = scoped(scope, [...probeResults, schema, orphan, reader, sync]);
  if (target.run && target.run.kind === 'migrate' && target.run.mode === 'execute') {
    const run = target.run;
    const [total, atTargetCount, markers, failed] = await Promise.all([
      targetQuery(db, migration.target).count().get(),
      atTargetQuery(db, migration).count().get(),
      sumMarkers(db, deps.paths, run.migrationId, run.runId),
      countFailureRecords(db, deps.paths, run.migrationId, run.runId),
    ]);
    const counts = countsCheck({
      total: total.data().count,
      atTarget: atTargetCount.data().count,
      failed,
      skipped: markers.skipped,
      migratedByMarkers: markers.migrated,
      atTargetBefore: run.before?.atTarget ?? null,
      runCompleted: run.status === 'completed',
    });
    checks.push(...scoped({ migrationId: migration.id, runId: run.runId }, [counts]));
  }
  return { checks, metrics };
}

async function runChecks(deps: HealthRunDeps, run: RunDocument, now: Date): Promise<{ checks: HealthCheck[]; metrics: HealthMetric[]; processed: number; failed: number; stalled: string[] }> {
  const since = Timestamp.fromMillis(now.getTime() - deps.stallAfterMs);
  const markers = await readRecentMarkers(deps.db, deps.paths, run, since);
  const figures = batchFigures(markers);
  const stalled = await stalledPartitions(deps.db, deps.paths, run, markers, since);
  const results = [
    ...batchChecks(figures, { thresholds: deps.config.monitor.alertThresholds, runnerMemoryThresholdMb: run.config?.migration?.memoryThresholdMb ?? deps.config.migration.memoryThresholdMb, windowMs: deps.stallAfterMs }),
    stalledCheck(stalled, deps.stallAfterMs),
    poolCheck(run.throttle ?? null),
  ];
  const metrics: HealthMetric[] = [];
  const metric = (name: string, value: number | null | undefined, unit: string) => {
    if (typeof value === 'number' && Number.isFinite(value)) metrics.push({ name, migrationId: run.migrationId, value, unit });
  };
  metric('batchP95Ms', figures.latency?.p95, 'ms');
  metric('batchP99Ms', figures.latency?.p99, 'ms');
  metric('throughputDocsPerSecond', figures.docsPerSecond, 'docs/s');
  if (figures.processed > 0) metric('errorRate', figures.failed / figures.processed, 'ratio');
  metric('rssMb', figures.peakRssMb, 'MB');
  metric('poolUtilisation', results.find((check) => check.name === 'rpcPool')?.value, 'ratio');
  return { checks: scoped({ migrationId: run.migrationId, runId: run.runId }, results), metrics, processed: figures.processed, failed: figures.failed, stalled };
}

function snapshotId(now: Date): string {
  return `${now.toISOString().replace(/[-:.]/g, '')}-${randomBytes(3).toString('hex')}`;
}

/** The metrics of the latest snapshots of the same scope as this run (all migrations, or the same version). */
async function previousMetrics(deps: HealthRunDeps): Promise<Array<Record<string, number>>> {
  const snapshot = await deps.db.collection(deps.paths.healthSnapshots()).orderBy('checkedAt', 'desc').limit(TREND_WINDOW).select('metrics', 'version').get();
  return snapshot.docs
    .filter((doc) => ((doc.get('version') as string | null | undefined) ?? null) === (deps.version ?? null))
    .slice(0, TREND_DEPTH)
    .map((doc) => (doc.get('metrics') as Record<string, number> | undefined) ?? {});
}

export async function runHealthCheck(deps: HealthRunDeps, now: Date = new Date()): Promise<HealthRunResult> {
  const { db, paths, log } = deps;
  const started = performance.now();
  const [targets, infrastructure, previous] = await Promise.all([
    findTargets(deps),
    infrastructureChecks({ db, paths, thresholds: deps.config.monitor.alertThresholds, indexes: deps.indexes, declaredIndexes: declared(deps) }),
    previousMetrics(deps),
  ]);
  const checks: HealthCheck[] = scoped({ migrationId: null, runId: null }, infrastructure);
  const metrics: HealthMetric[] = [];
  const reachable = infrastructure.find((check) => check.name === 'firestoreReachable');
  if (reachable?.value != null) metrics.push({ name: 'firestoreLatencyMs', migrationId: null, value: reachable.value, unit: 'ms' });
  const runs: RunHealth[] = [];
  for (const target of targets) {
    const migration = await migrationChecks(deps, target, now);
    checks.push(...migration.checks);
    metrics.push(...migration.metrics);
    if (!target.active || !target.run) continue;
    const run = await runChecks(deps, target.run, now);
    checks.push(...run.checks);
    metrics.push(...run.metrics);
    const own = [...migration.checks, ...run.checks];
    runs.push({
      migrationId: target.migrationId,
      runId: target.run.runId,
      resumes: target.run.resumes,
      processed: run.processed,
      failed: run.failed,
      stalledPartitions: run.stalled,
      checks: own,
      critical: own.some((check) => check.status === 'critical'),
    });
  }
  const levels = countedLevels(checks);
  const score = healthScore(levels);
  metrics.unshift({ name: 'score', migrationId: null, value: score, unit: 'points' });
  const trend = compareTrends(metrics, previous);
  const id = snapshotId(now);
  const checkedAt = Timestamp.fromDate(now);
  const current = alertsOf(checks);
  const store = new AlertStateStore(db, paths);
  const monitored = new Set(targets.map((target) => target.migrationId));
  const open = (await store.open()).filter((entry) => deps.version === undefined || entry.alert.migrationId === null || monitored.has(entry.alert.migrationId));
  const alertPlan = planAlerts(current, open);
  const snapshot: StoredHealthSnapshot = {
    id,
    status: snapshotStatus(levels, runs.length),
    score,
    checkedAt,
    durationMs: Math.round(performance.now() - started),
    activeRuns: runs.length,
    checks,
    runs,
    metrics: metricMap(metrics),
    version: deps.version ?? null,
    trend,
    alerts: { opened: alertPlan.opened.length, changed: alertPlan.changed.length, persisting: alertPlan.persisting.length, resolved: alertPlan.resolved.length },
  };
  // Stored before anything is announced: every message names a snapshot that exists.
  await db.collection(paths.healthSnapshots()).doc(id).create(snapshot);

  const webhookErrors = await announce(deps, store, alertPlan, id, checkedAt);
  let alertMessageId: string | null = null;
  const critical = runs.filter((run) => run.critical).map((run) => run.runId);
  if (snapshot.status === 'CRITICAL' && critical.length > 0) {
    alertMessageId = await deps.alerts.publish(TOPICS.alerts, { kind: 'escalation', snapshotId: id, status: snapshot.status, runIds: critical }, { kind: 'escalation', status: snapshot.status });
    log.error(`health: CRITICAL (score ${score}); escalation ${alertMessageId} published for runs ${critical.join(', ')}`, { snapshotId: id });
  } else {
    const say = snapshot.status === 'HEALTHY' || snapshot.status === 'MAINTENANCE' ? log.info : log.warning;
    say.call(log, `health: ${snapshot.status} (score ${score}), ${runs.length} active runs, trend ${trend.overall}`, { snapshotId: id });
  }
  if (deps.metrics) await writeMetrics(deps, deps.metrics, metrics, now);
  return { snapshot, alertMessageId, alertPlan, webhookErrors };
}

/** Opens, re-announces and resolves alerts; returns the webhook failures. */
async function announce(deps: HealthRunDeps, store: AlertStateStore, plan: AlertPlan, snapshotId: string, at: Timestamp): Promise<string[]> {
  const events: AlertEvent[] = [];
  for (const alert of plan.opened) {
    if (!(await store.create(alert, snapshotId, at))) continue;
    try {
      await deps.alerts.publish(TOPICS.alerts, { kind: 'alert', snapshotId, alert }, { kind: 'alert', severity: alert.severity });
    } catch (error) {
      // Not announced: leave it closed, so the next health run opens it again.
      await store.remove(alert.key);
      throw error;
    }
    events.push({ kind: 'opened', alert });
  }
  for (const alert of plan.changed) {
    await store.seen(alert, snapshotId, at);
    await deps.alerts.publish(TOPICS.alerts, { kind: 'alert', snapshotId, alert, severityChanged: true }, { kind: 'alert', severity: alert.severity });
    events.push({ kind: 'changed', alert });
  }
  for (const alert of plan.persisting) await store.seen(alert, snapshotId, at);
  for (const open of plan.resolved) {
    if (!(await store.remove(open.alert.key))) continue;
    await deps.alerts.publish(
      TOPICS.alerts,
      { kind: 'resolved', snapshotId, alert: open.alert, openedAt: open.openedAt.toDate().toISOString(), resolvedAt: at.toDate().toISOString() },
      { kind: 'resolved', severity: open.alert.severity },
    );
    events.push({ kind: 'resolved', open });
  }
  for (const event of events) {
    const alert = event.kind === 'resolved' ? event.open.alert : event.alert;
    const line = `alert ${event.kind}: ${alert.severity} ${alert.category}/${alert.metric} (${alert.key}): ${alert.message}`;
    if (event.kind === 'resolved') deps.log.info(line, { snapshotId, alertKey: alert.key });
    else (alert.severity === 'critical' ? deps.log.error : deps.log.warning).call(deps.log, line, { snapshotId, alertKey: alert.key });
  }
  const errors: string[] = [];
  if (deps.webhook) {
    for (const event of events) {
      try {
        await deps.webhook.post(slackMessage(event, snapshotId));
      } catch (error) {
        errors.push((error as Error).message);
        deps.log.warning(`health: the alert webhook failed: ${(error as Error).message}`, { snapshotId });
      }
    }
  }
  return errors;
}

/** Metric names of the sink (`firemigrate/<snake_case>`), for the figures the issue names and the rest of the trend metrics. */
export function metricPoints(metrics: readonly HealthMetric[], at: Date): MetricPoint[] {
  return metrics.map((metric) => ({
    name: `firemigrate/${metric.name.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`)}`,
    value: metric.value,
    unit: metric.unit,
    labels: metric.migrationId ? { migration_id: metric.migrationId } : ({} as Record<string, string>),
    at,
  }));
}

async function writeMetrics(deps: HealthRunDeps, sink: MetricsSink, metrics: readonly HealthMetric[], at: Date): Promise<void> {
  try {
    await sink.write(metricPoints(metrics, at));
  } catch (error) {
    // Metrics are an outlet: the snapshot and alerts have been written.
    deps.log.warning(`health: writing metrics failed: ${(error as Error).message}`);
  }
}
