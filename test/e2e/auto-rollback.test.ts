/**
 * End to end through the emulator suite: the auto-rollback policy (issue #8, "with the auto-rollback
 * policy the documents end up restored"). An admin starts tradeya-trades-v2 over HTTP with
 * `rollbackPolicy: 'auto'`; while the Tasks emulator runs it, failures push its error rate past
 * the critical threshold; the health run (the emulator never fires schedules, so the test runs it
 * against the suite's Firestore and Pub/Sub) publishes to `migration-alerts`; the deployed
 * `onMigrationAlert` stops the run and enqueues the rollback's start on `rollbackBatch`, which
 * starts once the stopped run's lease has lapsed and restores every before-image through its own
 * chain of tasks. Afterwards every seeded document is exactly as before the run (typed values,
 * canonically), the run and the migration are `rolled_back`, and the audit trail says why.
 */
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { createLogger } from '../../functions/src/cli/log';
import { loadConfig } from '../../functions/src/config';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { WireClient } from '../../functions/src/engine/wire/client';
import type { RawFields } from '../../functions/src/engine/wire/types';
import { projectMigrations } from '../../functions/src/migrations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { runHealthCheck } from '../../functions/src/monitor/health-run';
import { alertEventsPath } from '../../functions/src/pipeline/alert-stop';
import { PIPELINE_IDENTITY } from '../../functions/src/pipeline/context';
import { AUTO_ROLLBACK_USER } from '../../functions/src/pipeline/rollback-task';
import type { RollbackRunDocument } from '../../functions/src/rollback/rollback-run';
import { TOPICS } from '../../functions/src/transports/names';
import { PubSubAlertBus } from '../../functions/src/transports/pubsub-alert-bus';
import { canonical } from '../support/raw-seed';
import { rawCollections } from '../support/rollback-support';
import { functionUrl, resetFirestore, setBackgroundTriggers, signedInUser, suiteProjectId, suiteVariable } from './support/suite';

const paths = new ControlPaths();
const SEEDED_COLLECTIONS = ['trades', 'users', 'conversations'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('auto-rollback end to end: health critical → onMigrationAlert stops the run → rollbackBatch restores every document', () => {
  const projectId = suiteProjectId();
  const tag = `${process.pid}-${Date.now()}`;
  const logLines: string[] = [];
  const log = createLogger({ format: 'json', write: (line) => logLines.push(line) });
  let admin: App;
  let db: Firestore;
  let wire: WireClient;
  let pubsub: PubSub;
  let alerts: PubSubAlertBus;

  beforeAll(async () => {
    admin = initializeApp({ projectId }, 'e2e-auto-rollback');
    db = new Firestore({ projectId });
    wire = new WireClient({ projectId, emulatorHost: suiteVariable('FIRESTORE_EMULATOR_HOST') });
    pubsub = new PubSub({ projectId });
    alerts = new PubSubAlertBus(pubsub);
    // The suite's Firestore is shared by the e2e files, which run one at a time (--runInBand): start from nothing.
    await resetFirestore();
  });
  afterAll(async () => {
    await resetFirestore();
    await alerts.close();
    await wire.close();
    await db.terminate();
    await deleteApp(admin);
  });

  async function adminToken(): Promise<string> {
    return (await signedInUser(admin, { migrationAdmin: true }, `auto-rollback-${tag}@example.com`)).token;
  }

  /** A health run that finds nothing critical (every threshold out of reach): a snapshot a harmless alert can name. */
  async function quietSnapshotId(): Promise<string> {
    const lenient = loadConfig({ MONITOR_ALERT_THRESHOLDS: JSON.stringify({ errorRate: { warning: 0.98, critical: 0.99 }, responseTime: { warning: 600_000, critical: 900_000 } }) });
    const { snapshot } = await runHealthCheck({ db, paths, config: lenient, registry: createRegistry(projectMigrations), alerts: { publish: async () => 'not-published' }, stallAfterMs: 3_600_000, log, indexes: null });
    expect(snapshot.status).not.toBe('CRITICAL');
    return snapshot.id;
  }

  async function runOf(runId: string): Promise<RunDocument> {
    return (await db.doc(paths.run(tradesV2.id, runId)).get()).data() as RunDocument;
  }

  async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await probe();
      if (found !== undefined) return found;
      if (Date.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms`);
      await sleep(500);
    }
  }

  it('a run started with rollbackPolicy auto turns critical: it is stopped, rolled back through rollbackBatch tasks, every document exactly as before', async () => {
    // Enough trades that the run is still going when the alert lands; the malformed ones fail (invalid-source).
    // The dual-read sync triggers stay off while seeding (one invocation per seeded document otherwise).
    const seeded = { docs: 4000, seed: 37, now: new Date('2026-11-01T10:00:00Z') };
    await setBackgroundTriggers(false);
    let manifest;
    try {
      manifest = await seedDemoData(db, seeded);
    } finally {
      await setBackgroundTriggers(true);
    }
    expect(manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray).toBeGreaterThan(0);
    // Warm onMigrationAlert up while the machine is quiet (its first call starts a worker): an alert naming a snapshot that is not critical.
    const warmUp = await quietSnapshotId();
    await alerts.publish(TOPICS.alerts, { snapshotId: warmUp });
    const handled = await waitFor('onMigrationAlert recorded no event for the warm-up alert', 60_000, async () => {
      const found = await db.collection(alertEventsPath(paths)).where('snapshotId', '==', warmUp).get();
      return found.empty ? undefined : found.docs.flatMap((doc) => doc.get('stoppedRuns') as string[]);
    });
    expect(handled).toEqual([]);
    const before = await rawCollections(db, wire, SEEDED_COLLECTIONS);
    expect(before.size).toBe(manifest.trades.total + manifest.users.total + manifest.conversations.total);

    const response = await fetch(await functionUrl('api', '/migration/runs'), {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken()}`, 'content-type': 'application/json' },
      body: JSON.stringify({ migrationId: tradesV2.id, execute: true, reason: 'e2e auto-rollback', rollbackPolicy: 'auto' }),
    });
    expect(response.status).toBe(202);
    const runId = ((await response.json()) as { runId: string }).runId;
    expect((await runOf(runId)).rollbackPolicy).toBe('auto');
    const markers = db.collection(paths.batches(tradesV2.id, runId));

    // Running, with failures committed: any failure passes this critical threshold.
    await waitFor('the run committed no batch with failures', 120_000, async () => {
      const run = await runOf(runId);
      if (run.status !== 'planning' && run.status !== 'running') throw new Error(`the run ended (${run.status}) before the health check: seed more trades`);
      return run.status === 'running' && (await markers.where('failed', '>', 0).limit(1).get()).size > 0 ? true : undefined;
    });
    // A small integrity sample keeps the health run short on a loaded machine: the run must still be going when it publishes.
    const strict = loadConfig({ MONITOR_SAMPLE_SIZE: '5', MONITOR_ALERT_THRESHOLDS: JSON.stringify({ errorRate: { warning: 0.00001, critical: 0.00002 } }) });
    const { snapshot, alertMessageId } = await runHealthCheck({ db, paths, config: strict, registry: createRegistry(projectMigrations), alerts, stallAfterMs: 300_000, log, indexes: null });
    expect(snapshot.status).toBe('CRITICAL');
    expect(alertMessageId).not.toBeNull();
    expect(snapshot.runs.find((entry) => entry.runId === runId)?.critical).toBe(true);

    // onMigrationAlert stops it, then its rollback starts once the stopped run's lease (MIGRATION_LEASE_TTL_MS) has lapsed.
    const stopped = await waitFor('onMigrationAlert did not stop the run', 60_000, async () => {
      const run = await runOf(runId);
      return run.status === 'running' ? undefined : run;
    });
    const stopReason = `emergency stop: health snapshot ${snapshot.id} is CRITICAL`;
    expect({ status: stopped.status, reason: stopped.statusReason }).toEqual({ status: 'emergency_stopped', reason: expect.stringContaining(stopReason) });
    const rollbackRunId = await waitFor('no rollback run was started', 300_000, async () => {
      const found = await db.collection(paths.runs(tradesV2.id)).where('kind', '==', 'rollback').get();
      return found.empty ? undefined : found.docs.map((doc) => doc.id);
    });
    expect(rollbackRunId).toHaveLength(1);
    const rollbackRun = await waitFor('the rollback run did not finish', 240_000, async () => {
      const run = (await runOf(rollbackRunId[0])) as RollbackRunDocument;
      return run.status === 'running' || run.status === 'planning' ? undefined : run;
    });

    // Every before-image of the run (batches in flight at the stop included) was restored by more than one rollbackBatch task.
    const backups = (await db.collection(paths.backups(tradesV2.id, runId)).count().get()).data().count;
    let migratedByMarkers = 0;
    for (const marker of (await markers.get()).docs) migratedByMarkers += marker.get('migrated') as number;
    expect(backups).toBe(migratedByMarkers);
    expect(backups).toBeGreaterThan(0);
    expect({
      kind: rollbackRun.kind,
      status: rollbackRun.status,
      statusReason: rollbackRun.statusReason,
      user: rollbackRun.user,
      identity: rollbackRun.identity,
      strategy: rollbackRun.rollback.strategy,
      sourceRuns: rollbackRun.rollback.sourceRuns,
      validationOk: rollbackRun.rollback.validation?.ok,
    }).toEqual({
      kind: 'rollback',
      status: 'completed',
      statusReason: null,
      user: AUTO_ROLLBACK_USER,
      identity: PIPELINE_IDENTITY,
      strategy: 'restore',
      sourceRuns: [runId],
      validationOk: true,
    });
    expect(rollbackRun.reason).toBe(`auto-rollback (rollbackPolicy auto) after ${stopped.statusReason}`);
    expect(rollbackRun.rollback.rollbackTotals).toMatchObject({ restored: backups, alreadyRestored: 0, conflicts: 0, forced: 0, missingDocuments: 0, missingBackups: 0, failed: 0 });
    const rollbackMarkers = (await db.collection(paths.batches(tradesV2.id, rollbackRunId[0])).count().get()).data().count;
    expect(rollbackMarkers).toBe(rollbackRun.rollback.rollbackTotals!.batches);

    // The run and the migration are rolled back.
    const source = await runOf(runId);
    expect({ status: source.status, reason: source.statusReason }).toEqual({ status: 'rolled_back', reason: `rolled back by run ${rollbackRunId[0]} (restore)` });
    expect((await db.doc(paths.migration(tradesV2.id)).get()).get('status')).toBe('rolled_back');

    // A few seconds for anything the restores could still set off (the dual-read sync trigger), then
    // every seeded document, typed values compared canonically: exactly as before the run.
    await sleep(3000);
    const after = await rawCollections(db, wire, SEEDED_COLLECTIONS);
    expect([...after.keys()].sort()).toEqual([...before.keys()].sort());
    for (const [path, fields] of before) expect({ path, fields: canonical(after.get(path) as RawFields) }).toEqual({ path, fields: canonical(fields) });

    // The audit trail says why: the stop names the critical snapshot, the rollback the stop.
    const audit = new AuditLog(db, paths);
    const runEvents = (await audit.forRun(runId)).filter((event) => event.action.startsWith('run.'));
    expect(runEvents.map((event) => event.action)).toEqual(['run.requested', 'run.started', 'run.stopped']);
    expect(runEvents[2]).toMatchObject({ user: 'healthCheck', identity: PIPELINE_IDENTITY, reason: stopped.statusReason, details: { snapshotId: snapshot.id, via: 'pubsub' } });
    const rollbackEvents = (await audit.forRun(rollbackRunId[0])).filter((event) => event.action.startsWith('rollback.'));
    expect(rollbackEvents.map((event) => ({ action: event.action, user: event.user, identity: event.identity, reason: event.reason }))).toEqual([
      { action: 'rollback.started', user: AUTO_ROLLBACK_USER, identity: PIPELINE_IDENTITY, reason: rollbackRun.reason },
      { action: 'rollback.completed', user: AUTO_ROLLBACK_USER, identity: PIPELINE_IDENTITY, reason: rollbackRun.reason },
    ]);
  }, 900_000);
});
