import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { FieldPath, Timestamp } from '@google-cloud/firestore';
import { createLogger } from '../../functions/src/cli/log';
import type { FiremigrateConfig } from '../../functions/src/config';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RegistryEntry } from '../../functions/src/control/registry-store';
import { newRunDocument, RunStore, type RunDocument } from '../../functions/src/control/runs';
import { defineMigration } from '../../functions/src/definitions/define';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { DocData, Migration } from '../../functions/src/definitions/types';
import { DemoDataset, seedDemoData, type DemoManifest } from '../../functions/src/demo/seed-data';
import { migrateBatch } from '../../functions/src/engine/batch-core';
import { startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { WireClient } from '../../functions/src/engine/wire/client';
import { projectMigrations } from '../../functions/src/migrations';
import { conversationsV2 } from '../../functions/src/migrations/tradeya/conversations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { runHealthCheck, type HealthRunDeps, type HealthRunResult } from '../../functions/src/monitor/health-run';
import { alertStatePath } from '../../functions/src/monitor/monitor-paths';
import type { HealthCheck } from '../../functions/src/monitor/types';
import { HttpAlertWebhook } from '../../functions/src/monitor/webhook';
import { handleMigrationAlert, type AlertOutcome } from '../../functions/src/pipeline/alert-stop';
import { InProcessAlertBus, type MessageHandler } from '../../functions/src/transports/in-process-alert-bus';
import { LogMetricsSink } from '../../functions/src/transports/log-metrics-sink';
import { TOPICS } from '../../functions/src/transports/names';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

/** Nearest-rank percentile, written out here so the test does not reuse the code it checks. */
function nearestRank(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil((p / 100) * sorted.length) - 1];
}

const checkOf = (checks: readonly HealthCheck[], name: string, runId: string | null = null): HealthCheck => {
  const found = checks.find((check) => check.name === name && (runId === null || check.scope.runId === runId));
  if (!found) throw new Error(`no check ${name}${runId ? ` for run ${runId}` : ''} in ${checks.map((check) => check.name).join(', ')}`);
  return found;
};

describeEmulator('health monitor on the TradeYa demo', () => {
  const projectId = 'demo-monitor-health';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  // A sample as large as the demo's 100 trades: integrity and orphans cover every document, so the counts are exact.
  // Response-time thresholds far above the defaults: this 2-core machine is shared, and a latency
  // alert caused by its load would hide the conditions under test (latency checks have unit tests).
  const SLOW_OK = '"responseTime":{"warning":30000,"critical":60000},"memory":{"warning":8192,"critical":16384}';
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '20', MONITOR_SAMPLE_SIZE: '100', MONITOR_ALERT_THRESHOLDS: `{${SLOW_OK}}` });
  const seeded = { docs: 100, seed: 7, now: new Date('2026-11-01T10:00:00Z') };
  const logLines: string[] = [];
  const log = createLogger({ format: 'json', write: (line) => logLines.push(line) });
  const metricLines: string[] = [];
  const published: Array<{ id: string; json: Record<string, unknown> }> = [];
  let bus: InProcessAlertBus;
  let manifest: DemoManifest;

  const SLOW_ENDPOINT_MS = 250;
  let server: Server;
  let webhookUrl: URL;
  const posts: Array<{ text: string; blocks: unknown[] }> = [];

  beforeAll(async () => {
    server = createServer((request, response) => {
      // The app's own endpoints, for URL probes: one slowed down on purpose, one failing.
      if (request.method === 'GET' && request.url === '/app/slow') {
        setTimeout(() => response.writeHead(200).end('slow page'), SLOW_ENDPOINT_MS);
        return;
      }
      if (request.method === 'GET' && request.url === '/app/broken') {
        response.writeHead(503).end('down');
        return;
      }
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        posts.push(JSON.parse(body));
        response.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    webhookUrl = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/monitor`);
  });
  beforeEach(async () => {
    await resetProject(projectId);
    logLines.length = 0;
    metricLines.length = 0;
    published.length = 0;
    posts.length = 0;
    bus = new InProcessAlertBus({ maxDeliveryAttempts: 3, retryDelayMs: 10 });
    bus.subscribe(TOPICS.alerts, (message) => {
      published.push({ id: message.messageId, json: message.json as Record<string, unknown> });
    });
    manifest = await seedDemoData(db, seeded);
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await wire.close();
    await db.terminate();
  });

  function deps(overrides: Partial<HealthRunDeps> = {}): HealthRunDeps {
    return {
      db,
      paths,
      config,
      registry: createRegistry(projectMigrations),
      alerts: bus,
      stallAfterMs: 5 * 60_000,
      log,
      indexes: null,
      metrics: new LogMetricsSink((line) => metricLines.push(line)),
      webhook: new HttpAlertWebhook(webhookUrl),
      ...overrides,
    };
  }

  async function health(overrides: Partial<HealthRunDeps> = {}): Promise<HealthRunResult> {
    const result = await runHealthCheck(deps(overrides));
    await bus.idle();
    return result;
  }

  it('after a real run: counts add up, the orphans are exactly the demo\'s, an alert opens once, persists quietly and resolves when fixed', async () => {
    // Before the run: the migration is watched by name; nothing is wrong yet.
    const before = await health({ migrationIds: [tradesV2.id] });
    expect(before.snapshot.checks.filter((check) => check.status !== 'ok' && check.status !== 'not-checkable')).toEqual([]);
    expect(before.snapshot.status).toBe('HEALTHY');
    expect(before.snapshot.score).toBe(100);
    expect(checkOf(before.snapshot.checks, 'indexes')).toMatchObject({ status: 'not-checkable', message: expect.stringContaining('not checkable on the emulator') });
    expect(checkOf(before.snapshot.checks, 'taskQueueBacklog').status).toBe('not-checkable');
    expect(checkOf(before.snapshot.checks, 'controlWritable').status).toBe('ok');
    // The write probe left nothing behind.
    expect((await db.collection(`${paths.root}/_control/health-probes`).get()).size).toBe(0);
    expect(checkOf(before.snapshot.checks, 'orphans')).toMatchObject({ status: 'ok', value: 0 });
    // Only the already-v2 trades are at the target so far, and they all parse.
    expect(checkOf(before.snapshot.checks, 'schemaCompliance').message).toContain(`${manifest.trades.alreadyV2} of ${manifest.trades.alreadyV2} sampled documents`);
    const probe = checkOf(before.snapshot.checks, 'probe:recent-open-trades');
    expect(probe.status).toBe('ok');
    expect(probe.message).toContain('over 100 runs');
    expect(published).toEqual([]);
    expect(posts).toEqual([]);

    const ctx: RunnerContext = { db, wire, migration: tradesV2, config, paths, lease: { ttlMs: 10_000, renewEveryMs: 3_000 }, holder: 'test/monitor', log };
    const session = await startRun(ctx, { user: 'tester', identity: 'emulator', reason: 'monitor test' });
    const outcome = await session.outcome;
    expect(outcome.status).toBe('completed');

    const after = await health();
    const { snapshot } = after;
    // Counts: aggregate count queries against the markers of the run.
    const markerDocs = (await db.collection(paths.batches(tradesV2.id, session.runId)).get()).docs.map((doc) => doc.data());
    const migrated = markerDocs.reduce((sum, marker) => sum + marker.migrated, 0);
    expect(migrated).toBe(manifest.trades.legacy);
    const malformed = manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray;
    const counts = checkOf(snapshot.checks, 'counts');
    expect(counts).toMatchObject({ status: 'ok', value: 0, scope: { migrationId: tradesV2.id, runId: session.runId } });
    expect(counts.message).toBe(
      `total 100 = at target ${manifest.trades.alreadyV2 + manifest.trades.legacy} + failed ${malformed} + skipped 0 + remaining 0; ` +
        `markers: ${manifest.trades.alreadyV2} at target before the run + ${migrated} migrated`,
    );
    expect(checkOf(snapshot.checks, 'schemaCompliance')).toMatchObject({ status: 'ok', value: 1 });

    // Orphans: exactly the demo trades generated with a missing creator or participant.
    const dataset = new DemoDataset(seeded);
    const orphanTrades = Array.from({ length: seeded.docs }, (_, i) => dataset.trade(i)).filter((trade) => trade.case.orphan !== 'none');
    expect(orphanTrades).toHaveLength(manifest.trades.orphans.creator + manifest.trades.orphans.participant);
    const orphans = checkOf(snapshot.checks, 'orphans');
    expect(orphans).toMatchObject({ status: 'warning', value: orphanTrades.length, threshold: 0 });
    expect(orphans.message).toContain(`(participants.creator: ${manifest.trades.orphans.creator}, participants.participant: ${manifest.trades.orphans.participant})`);
    expect(orphans.message.split(', e.g. ')[1].split(', ').sort()).toEqual(orphanTrades.map((trade) => `trades/${trade.id}`).sort());

    // The compatibility reader reads every trade but the malformed ones, all of them now stored new.
    const reader = checkOf(snapshot.checks, 'compatReader');
    expect(reader.value).toBeCloseTo((100 - malformed) / 100, 10);
    expect(reader.message).toContain(`${100 - malformed} stored new, 0 upgraded from legacy`);
    expect(checkOf(snapshot.checks, 'syncTrigger')).toMatchObject({ status: 'not-checkable', message: 'not measured: no sync trigger activity (mode normal)' });

    // One warning: 95, DEGRADED; the trend compares with the first snapshot.
    expect(snapshot.status).toBe('DEGRADED');
    expect(snapshot.score).toBe(95);
    expect(snapshot.trend).toMatchObject({ overall: 'degrading', comparedWith: 1 });
    expect(snapshot.trend.metrics.find((metric) => metric.name === 'score')).toMatchObject({ current: 95, baseline: 100, delta: -5, direction: 'degrading' });
    expect(snapshot.trend.metrics.find((metric) => metric.name === 'orphans')).toMatchObject({ current: orphanTrades.length, baseline: 0, direction: 'degrading' });
    const stored = (await db.collection(paths.healthSnapshots()).doc(snapshot.id).get()).data()!;
    expect(stored).toMatchObject({ status: 'DEGRADED', score: 95, metrics: { score: 95, [`${tradesV2.id}/orphans`]: orphanTrades.length } });

    // The alert: published once on migration-alerts and POSTed to the webhook.
    expect(published).toHaveLength(1);
    expect(published[0].json).toMatchObject({
      kind: 'alert',
      snapshotId: snapshot.id,
      alert: { key: `${tradesV2.id}/-/orphans`, severity: 'warning', category: 'integrity', metric: 'orphans', value: orphanTrades.length, threshold: 0, runId: null, recommendedActions: [orphans.recommendedAction] },
    });
    expect(posts).toHaveLength(1);
    expect(posts[0].text).toBe(`WARNING integrity/orphans on migration ${tradesV2.id}: ${orphans.message}`);
    expect((await db.collection(alertStatePath(paths)).get()).size).toBe(1);
    // Metrics as structured log lines, with the snapshot's figures.
    const metrics = metricLines.map((line) => JSON.parse(line).metric);
    expect(metrics).toContainEqual({ name: 'firemigrate/score', value: 95, unit: 'points', labels: {} });
    expect(metrics).toContainEqual({ name: 'firemigrate/orphans', value: orphanTrades.length, unit: 'count', labels: { migration_id: tradesV2.id } });

    // The condition persists: nothing is announced again.
    const persisting = await health();
    expect(persisting.snapshot.alerts).toEqual({ opened: 0, changed: 0, persisting: 1, resolved: 0 });
    expect(published).toHaveLength(1);
    expect(posts).toHaveLength(1);

    // The app fixes its data (the missing users appear): the alert resolves, once.
    const missingUsers = new Set(orphanTrades.map((trade) => (trade.case.orphan === 'creator' ? trade.data.creatorId : trade.data.participantId) as string));
    for (const id of missingUsers) await db.collection('users').doc(id).set({ displayName: 'restored' });
    const fixed = await health();
    expect(checkOf(fixed.snapshot.checks, 'orphans')).toMatchObject({ status: 'ok', value: 0 });
    expect(fixed.snapshot.status).toBe('HEALTHY');
    expect(fixed.snapshot.trend.overall).toBe('improving');
    expect(fixed.snapshot.alerts).toEqual({ opened: 0, changed: 0, persisting: 0, resolved: 1 });
    expect(published).toHaveLength(2);
    expect(published[1].json).toMatchObject({ kind: 'resolved', snapshotId: fixed.snapshot.id, alert: { key: `${tradesV2.id}/-/orphans` } });
    expect(posts).toHaveLength(2);
    expect(posts[1].text).toMatch(new RegExp(`^RESOLVED integrity/orphans on migration ${tradesV2.id} \\(open since `));
    expect((await db.collection(alertStatePath(paths)).get()).size).toBe(0);
    expect(await health().then((result) => result.snapshot.alerts)).toEqual({ opened: 0, changed: 0, persisting: 0, resolved: 0 });
    expect(published).toHaveLength(2);
  });

  /** tradeya-trades-v2 whose transform fails any trade whose title says so (references left out: orphans are the other test's). */
  const failing: Migration = defineMigration({
    id: 'monitor-failing-trades',
    version: '2.0',
    description: 'trades v2 with a transform that fails marked trades',
    target: tradesV2.target,
    marker: tradesV2.marker,
    from: tradesV2.from,
    to: tradesV2.to,
    probes: tradesV2.probes,
    up: (doc: DocData, ctx) => {
      if (String(doc.title).includes('FAIL-ME')) throw new Error('the transform cannot handle this trade');
      return tradesV2.up(doc, ctx);
    },
  });

  /** A run in progress, its batches committed by the real batch core (one at a time: the markers are read back exactly). */
  async function runInProgress(runConfig: FiremigrateConfig): Promise<{ runId: string; batch: (keys: string[]) => Promise<void> }> {
    const runId = 'run-in-progress';
    const now = Timestamp.now();
    const lease = { holder: 'test/live', expiresAt: Timestamp.fromMillis(now.toMillis() + 600_000) };
    const run: RunDocument = {
      ...newRunDocument({ runId, migrationId: failing.id, kind: 'migrate', mode: 'execute', user: 'ops', identity: 'emulator', reason: null, checksum: failing.checksum, config: runConfig, lease }),
      status: 'running',
      startedAt: now,
    };
    const entry: RegistryEntry = {
      id: failing.id, version: failing.version, checksum: failing.checksum, status: 'running', lastRunId: runId,
      appliedAt: null, appliedBy: null, updatedAt: now, activeRunId: runId, lease,
    };
    await db.doc(paths.run(failing.id, runId)).set(run);
    await db.doc(paths.migration(failing.id)).set(entry);
    let seq = 0;
    return {
      runId,
      batch: async (keys) => {
        const result = await migrateBatch({ db, wire, migration: failing, config: runConfig, paths, runId }, { partition: 'p0000', seq: seq++, keys });
        expect(result.status).toBe('committed');
      },
    };
  }

  it('a run in progress: batch figures are the markers\', a failing transform degrades, then a critical one escalates and the alert stops the run', async () => {
    const registry = createRegistry([...projectMigrations, failing]);
    const tolerant = emulatorConfig({ MONITOR_SAMPLE_SIZE: '100', MONITOR_ALERT_THRESHOLDS: `{"errorRate":{"warning":0.01,"critical":0.5},${SLOW_OK}}` });
    const { runId, batch } = await runInProgress(tolerant);
    const keys = (await db.collection('trades').orderBy(FieldPath.documentId()).select().get()).docs.map((doc) => doc.ref.path);
    // Only legacy trades, so every document of these batches migrates.
    const dataset = new DemoDataset(seeded);
    const legacyPaths = new Set(Array.from({ length: seeded.docs }, (_, i) => dataset.trade(i)).filter((trade) => trade.case.kind === 'legacy').map((trade) => `trades/${trade.id}`));
    const legacy = keys.filter((key) => legacyPaths.has(key));
    await batch(legacy.slice(0, 20));
    await batch(legacy.slice(20, 40));

    const calm = await health({ registry, config: tolerant });
    expect(calm.snapshot.status).toBe('MAINTENANCE');
    expect(calm.snapshot.score).toBe(100);
    expect(calm.snapshot.runs.map((run) => [run.runId, run.critical])).toEqual([[runId, false]]);

    // The app writes trades the transform fails on; the next batch meets them.
    const poisoned = legacy.slice(40, 48);
    for (const path of poisoned) await db.doc(path).update({ title: 'FAIL-ME please' });
    await batch(legacy.slice(40, 60));

    metricLines.length = 0; // only this health run's metrics: the calm one wrote a p95 over two batches
    const degraded = await health({ registry, config: tolerant });
    const markers = (await db.collection(paths.batches(failing.id, runId)).get()).docs.map((doc) => doc.data());
    expect(markers).toHaveLength(3);
    const processed = markers.reduce((sum, m) => sum + m.migrated + m.skipped + m.alreadyMigrated + m.failed, 0);
    const failed = markers.reduce((sum, m) => sum + m.failed, 0);
    expect(failed).toBe(8);
    const latencies = markers.map((m) => m.latencyMs as number);
    const times = markers.map((m) => (m.committedAt as Timestamp).toMillis()).sort((a, b) => a - b);
    const first = markers.find((m) => (m.committedAt as Timestamp).toMillis() === times[0])!;
    const expectedRate = ((processed - (first.migrated + first.skipped + first.alreadyMigrated + first.failed)) * 1000) / (times[2] - times[0]);

    const checks = degraded.snapshot.checks;
    expect(checkOf(checks, 'batchLatency', runId)).toMatchObject({ value: nearestRank(latencies, 95), unit: 'ms' });
    expect(checkOf(checks, 'batchLatency', runId).message).toContain(`P99 ${nearestRank(latencies, 99)} ms over 3 batches`);
    expect(checkOf(checks, 'throughput', runId).value).toBeCloseTo(expectedRate, 9);
    expect(checkOf(checks, 'errorRate', runId)).toMatchObject({ status: 'warning', value: failed / processed, threshold: 0.01 });
    expect(checkOf(checks, 'workerMemory', runId).value).toBe(Math.max(...markers.map((m) => m.rssMb as number)));
    expect(checkOf(checks, 'stalledPartitions', runId)).toMatchObject({ status: 'ok', value: 0 });
    expect(checkOf(checks, 'rpcPool', runId).status).toBe('not-checkable');
    expect(degraded.snapshot.runs[0]).toMatchObject({ runId, processed, failed, critical: false });
    // The compatibility reader cannot read the poisoned trades either: 90 of 100 with the malformed ones, below the 95 % warning.
    const reader = checkOf(checks, 'compatReader');
    expect(reader.status).toBe('warning');
    expect(reader.message).toContain('transform-error 8');
    // The counts: 40 + 12 migrated by the markers on top of the already-v2 trades.
    expect(checkOf(checks, 'counts', runId).message).toContain(`at target ${manifest.trades.alreadyV2 + 52} + failed 8 + skipped 0 + remaining ${100 - manifest.trades.alreadyV2 - 60}`);
    expect(degraded.snapshot.status).toBe('DEGRADED');
    expect(degraded.snapshot.score).toBe(90);
    expect(degraded.snapshot.trend.metrics.find((metric) => metric.name === 'errorRate')).toMatchObject({ baseline: 0, direction: 'degrading' });
    const opened = published.map((message) => (message.json.alert as { key: string }).key).sort();
    expect(opened).toEqual([`${failing.id}/${runId}/errorRate`, `${failing.id}/-/compatReader`].sort());
    expect(degraded.alertMessageId).toBeNull();
    const batchMetric = metricLines.map((line) => JSON.parse(line).metric).find((metric) => metric.name === 'firemigrate/batch_p95_ms' && metric.labels.migration_id === failing.id);
    expect(batchMetric.value).toBe(nearestRank(latencies, 95));

    // Stricter thresholds: the same error rate is critical; the escalation names the snapshot and onMigrationAlert stops the run.
    const strict = emulatorConfig({ MONITOR_SAMPLE_SIZE: '100', MONITOR_ALERT_THRESHOLDS: `{"errorRate":{"warning":0.01,"critical":0.05},${SLOW_OK}}` });
    const outcomes: AlertOutcome[] = [];
    const stopper: MessageHandler = async (message) => {
      // onMigrationAlert acts on any message naming a critical snapshot; the escalation is the one meant for it.
      if ((message.json as { kind?: string }).kind !== 'escalation') return;
      outcomes.push(await handleMigrationAlert({ db, paths, log }, message.messageId, message.json));
    };
    bus.subscribe(TOPICS.alerts, stopper);
    published.length = 0;
    const critical = await health({ registry, config: strict });
    expect(critical.snapshot.status).toBe('CRITICAL');
    expect(critical.snapshot.runs[0]).toMatchObject({ runId, critical: true });
    expect(critical.snapshot.alerts).toMatchObject({ changed: 1, persisting: 1 });
    expect(critical.alertMessageId).not.toBeNull();
    const escalation = published.find((message) => message.id === critical.alertMessageId)!;
    expect(escalation.json).toEqual({ kind: 'escalation', snapshotId: critical.snapshot.id, status: 'CRITICAL', runIds: [runId] });
    const changed = published.find((message) => message.json.kind === 'alert')!;
    expect(changed.json).toMatchObject({ severityChanged: true, alert: { key: `${failing.id}/${runId}/errorRate`, severity: 'critical', threshold: 0.05 } });
    expect(outcomes).toEqual(['stopped']);
    expect(bus.undelivered).toEqual([]);
    const stopped = await new RunStore(db, paths).get(failing.id, runId);
    expect(stopped.status).toBe('emergency_stopped');
    expect(stopped.statusReason).toContain(`health snapshot`);
  });

  it('firemigrate monitor --json: one health run with the report as JSON, exit code 2 when degraded', async () => {
    const { main } = await import('../../functions/src/cli/main');
    const out: string[] = [];
    const err: string[] = [];
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
    // An orphan user reference in an already-v2 trade: a warning before any run.
    const dataset = new DemoDataset(seeded);
    const v2 = Array.from({ length: seeded.docs }, (_, i) => dataset.trade(i)).find((trade) => trade.case.kind === 'alreadyV2')!;
    await db.collection('trades').doc(v2.id).update({ 'participants.creator': 'nobody-here' });
    let code: number;
    process.env.MONITOR_ALERT_THRESHOLDS = `{${SLOW_OK}}`;
    try {
      code = await main(['node', 'firemigrate', '--project', projectId, '--json', 'monitor', '--migration', tradesV2.id]);
    } finally {
      delete process.env.MONITOR_ALERT_THRESHOLDS;
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(err.join('')).not.toContain('error:');
    expect(code).toBe(2);
    const report = JSON.parse(out.join(''));
    expect(report).toMatchObject({ status: 'DEGRADED', score: 95, alertBus: 'in-process (no subscriber: alerts are logged)' });
    expect(report.checks.find((check: HealthCheck) => check.name === 'orphans')).toMatchObject({ status: 'warning', value: 1 });
    const stored = (await db.collection(paths.healthSnapshots()).doc(report.id).get()).data()!;
    expect(stored.score).toBe(95);
    // Metrics went to stderr as log lines, beside the logs.
    expect(err.join('')).toContain('"name":"firemigrate/score","value":95');
  });
  it('firemigrate monitor --version <v>, global flags after the command as the npm alias passes them: only that version\'s migrations, other alerts left open; unknown version exit 2', async () => {
    const { main } = await import('../../functions/src/cli/main');
    const fixture = join(__dirname, '..', 'fixtures', 'migrations', 'monitor', 'users-city-v3.ts');
    const cli = async (args: string[]): Promise<{ code: number; out: string; err: string }> => {
      const out: string[] = [];
      const err: string[] = [];
      const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
      const stderr = jest.spyOn(process.stderr, 'write').mockImplementation((chunk) => (err.push(String(chunk)), true));
      try {
        return { code: await main(['node', 'firemigrate', ...args]), out: out.join(''), err: err.join('') };
      } finally {
        stdout.mockRestore();
        stderr.mockRestore();
      }
    };
    const migrationsOf = (report: { checks: HealthCheck[] }) => [...new Set(report.checks.map((check) => check.scope.migrationId))].sort();
    const snapshots = db.collection(paths.healthSnapshots());
    // An orphan user reference in an already-v2 trade: a warning alert of tradeya-trades-v2 (version 2.0), opened by a run over everything.
    const dataset = new DemoDataset(seeded);
    const v2 = Array.from({ length: seeded.docs }, (_, i) => dataset.trade(i)).find((trade) => trade.case.kind === 'alreadyV2')!;
    await db.collection('trades').doc(v2.id).update({ 'participants.creator': 'nobody-here' });
    const orphanAlertKey = `${tradesV2.id}/-/orphans`;
    const openAlerts = async () => (await db.collection(alertStatePath(paths)).get()).docs.map((doc) => doc.get('alert.key') as string).sort();
    process.env.MONITOR_ALERT_THRESHOLDS = `{${SLOW_OK}}`;
    try {
      const all = await cli(['monitor', '--migration', tradesV2.id, '--project', projectId, '--json', '--migrations', fixture]);
      expect(all.err).not.toContain('error:');
      const allReport = JSON.parse(all.out);
      expect({ code: all.code, status: allReport.status, version: allReport.version, migrations: migrationsOf(allReport) }).toEqual({ code: 2, status: 'DEGRADED', version: null, migrations: [tradesV2.id, null].sort() });
      expect(await openAlerts()).toEqual([orphanAlertKey]);

      // Version 3.0: only the fixture's migration (loaded, never run), beside the database's checks.
      const v3 = await cli(['monitor', '--version', '3.0', '--project', projectId, '--json', '--migrations', fixture]);
      expect(v3.err).not.toContain('error:');
      const v3Report = JSON.parse(v3.out);
      expect({ code: v3.code, status: v3Report.status, version: v3Report.version, migrations: migrationsOf(v3Report) }).toEqual({ code: 0, status: 'HEALTHY', version: '3.0', migrations: ['fixture-users-city-v3', null].sort() });
      expect(v3Report.checks.find((check: HealthCheck) => check.name === 'compatReader')).toMatchObject({ status: 'ok', scope: { migrationId: 'fixture-users-city-v3' } });
      // The trades alert is outside version 3.0: neither resolved nor announced; the trend compares with no snapshot of everything.
      expect(v3Report.alerts).toEqual({ opened: 0, changed: 0, persisting: 0, resolved: 0 });
      expect(await openAlerts()).toEqual([orphanAlertKey]);
      expect(v3Report.trend.comparedWith).toBe(0);
      expect((await snapshots.doc(v3Report.id).get()).get('version')).toBe('3.0');

      // Version 2.0, global flags before the command this time (a variadic one closed by "=", else it would take the command
      // name as a path): both TradeYa migrations, not the fixture; the trades alert persists.
      const v2Run = await cli(['--project', projectId, `--migrations=${fixture}`, 'monitor', '--version', '2.0', '--json']);
      expect(v2Run.err).not.toContain('error:');
      const v2Report = JSON.parse(v2Run.out);
      expect({ code: v2Run.code, version: v2Report.version, migrations: migrationsOf(v2Report) }).toEqual({ code: 2, version: '2.0', migrations: [conversationsV2.id, tradesV2.id, null].sort() });
      expect(v2Report.alerts.persisting).toBe(1);
      expect(await openAlerts()).toEqual(expect.arrayContaining([orphanAlertKey]));

      // The terminal report names the version and its migrations.
      const text = await cli(['monitor', '--version', '3.0', '--project', projectId, '--migrations', fixture]);
      expect(text.out.split('\n')[1]).toBe('Only the migrations of version 3.0: fixture-users-city-v3');

      // Unknown version, or a --migration of another version: usage errors (exit 2) that store nothing.
      const stored = (await snapshots.count().get()).data().count;
      const unknown = await cli(['monitor', '--version', '9.9', '--project', projectId, '--migrations', fixture]);
      expect(unknown).toEqual({ code: 2, out: '', err: 'error: --version "9.9" matches no migration: known versions are "2.0", "3.0"\n' });
      const mixed = await cli(['monitor', '--version', '3.0', '--migration', tradesV2.id, '--project', projectId, '--migrations', fixture]);
      expect(mixed).toEqual({ code: 2, out: '', err: `error: --migration ${tradesV2.id} is of version "2.0", not of --version "3.0"\n` });
      expect((await snapshots.count().get()).data().count).toBe(stored);
    } finally {
      delete process.env.MONITOR_ALERT_THRESHOLDS;
    }

    // The root --version still prints the package's version.
    const manifestVersion = (JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
    expect(await cli(['--version'])).toEqual({ code: 0, out: `${manifestVersion}\n`, err: '' });
  });
  it('firemigrate monitor --watch --interval 1: a health run each interval, each compared with the previous, until Ctrl-C', async () => {
    const { main } = await import('../../functions/src/cli/main');
    const out: string[] = [];
    const stdout = jest.spyOn(process.stdout, 'write').mockImplementation((chunk) => (out.push(String(chunk)), true));
    const stderr = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    process.env.MONITOR_ALERT_THRESHOLDS = `{${SLOW_OK}}`;
    process.env.MONITOR_SAMPLE_SIZE = '5';
    let code: number;
    try {
      const running = main(['node', 'firemigrate', '--project', projectId, 'monitor', '--watch', '--interval', '1', '--migration', tradesV2.id]);
      const snapshots = db.collection(paths.healthSnapshots());
      while ((await snapshots.count().get()).data().count < 2) await new Promise((resolve) => setTimeout(resolve, 100));
      process.emit('SIGINT');
      code = await running;
    } finally {
      delete process.env.MONITOR_ALERT_THRESHOLDS;
      delete process.env.MONITOR_SAMPLE_SIZE;
      stdout.mockRestore();
      stderr.mockRestore();
    }
    expect(code).toBe(0);
    const reports = out.join('').split('\n').filter((line) => line.startsWith('Health '));
    const stored = (await db.collection(paths.healthSnapshots()).orderBy('checkedAt').get()).docs.map((doc) => doc.data());
    // The interrupt may land during a run, which then completes: two or three runs.
    expect(stored.length).toBeGreaterThanOrEqual(2);
    expect(reports).toHaveLength(stored.length);
    expect(reports[0]).toMatch(new RegExp(`^Health HEALTHY — score 100/100 at .* \\(snapshot ${stored[0].id}, 0 active runs, \\d+ ms\\)$`));
    expect(stored.map((snapshot) => snapshot.trend.comparedWith)).toEqual(stored.map((_, i) => i));
    expect(out.join('')).toContain('Trend: first snapshot, nothing to compare with');
    expect(out.join('')).toContain('Trend: stable (against 1 previous snapshot)');
  });
  it('migrated documents that no longer parse with the target schema lower integrity: a warning, then critical, with the action', async () => {
    const ctx: RunnerContext = { db, wire, migration: tradesV2, config, paths, lease: { ttlMs: 10_000, renewEveryMs: 3_000 }, holder: 'test/monitor', log };
    expect((await (await startRun(ctx, { user: 'tester', identity: 'emulator', reason: 'integrity test' })).outcome).status).toBe('completed');
    const atTarget = (await db.collection('trades').where('schemaVersion', '==', tradesV2.marker.to).orderBy(FieldPath.documentId()).get()).docs;
    expect(atTarget).toHaveLength(manifest.trades.alreadyV2 + manifest.trades.legacy);
    // The app (or a bad deploy) writes v2 trades whose skills are no longer objects: they keep the marker.
    const corrupt = async (count: number) => {
      const batch = db.batch();
      for (const doc of atTarget.slice(0, count)) batch.update(doc.ref, { skillsOffered: 'not a list' });
      await batch.commit();
    };
    // The sample (MONITOR_SAMPLE_SIZE 100) covers every trade, so the share is exact.
    const warningCount = Math.ceil(atTarget.length * 0.07);
    await corrupt(warningCount);
    const warned = checkOf((await health()).snapshot.checks, 'schemaCompliance');
    expect(warned.value).toBeCloseTo((atTarget.length - warningCount) / atTarget.length, 10);
    expect(warned).toMatchObject({ status: 'warning', threshold: config.monitor.alertThresholds.integrity.warning, recommendedAction: expect.stringContaining('roll back') });
    expect(warned.message).toContain(`${atTarget.length - warningCount} of ${atTarget.length} sampled documents`);

    const criticalCount = Math.ceil(atTarget.length * 0.2);
    await corrupt(criticalCount);
    const failed = checkOf((await health()).snapshot.checks, 'schemaCompliance');
    expect(failed.value).toBeCloseTo((atTarget.length - criticalCount) / atTarget.length, 10);
    expect(failed).toMatchObject({ status: 'critical', threshold: config.monitor.alertThresholds.integrity.critical });
  });

  it('service probes measure the app for real: injected latency is a warning, a failing endpoint critical', async () => {
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const probed = defineMigration({
      id: 'monitor-probed-trades',
      version: '2.0',
      description: 'trades v2 watched through the app\'s HTTP endpoints',
      target: tradesV2.target,
      marker: tradesV2.marker,
      from: tradesV2.from,
      to: tradesV2.to,
      up: tradesV2.up,
      probes: [{ name: 'slow-page', url: `${base}/app/slow` }, { name: 'broken-page', url: `${base}/app/broken` }],
    });
    const probeConfig = emulatorConfig({ MONITOR_SAMPLE_SIZE: '5', MONITOR_ALERT_THRESHOLDS: '{"responseTime":{"warning":200,"critical":5000}}' });
    const { snapshot } = await health({ registry: createRegistry([...projectMigrations, probed]), config: probeConfig, migrationIds: [probed.id] });
    const slow = checkOf(snapshot.checks, 'probe:slow-page');
    expect(slow).toMatchObject({ status: 'warning', threshold: 200, scope: { migrationId: probed.id, runId: null } });
    expect(slow.value).toBeGreaterThanOrEqual(SLOW_ENDPOINT_MS);
    expect(slow.message).toContain('over 5 runs');
    const broken = checkOf(snapshot.checks, 'probe:broken-page');
    expect(broken).toMatchObject({ status: 'critical', value: null });
    expect(broken.message).toBe('all 5 runs of the app\'s query "broken-page" failed: HTTP 503');
    expect(snapshot.status).toBe('CRITICAL');
    expect(snapshot.metrics[`${probed.id}/probeP95Ms`]).toBe(slow.value);
    expect(snapshot.metrics[`${probed.id}/probeErrorRate`]).toBe(0.5);
    // No run of that migration is in progress: nothing to escalate, but both alerts are out.
    const keys = published.map((message) => (message.json.alert as { key: string }).key);
    expect(keys).toEqual(expect.arrayContaining([`${probed.id}/-/probe:slow-page`, `${probed.id}/-/probe:broken-page`]));
  });
});
