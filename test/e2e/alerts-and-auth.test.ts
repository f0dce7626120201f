/**
 * End to end through the emulator suite's Functions, Pub/Sub, Tasks, Auth and Firestore:
 * - the API's auth and validation over the Functions emulator's HTTP endpoint (401, 403, 400);
 * - health critical → Pub/Sub → stop (G7): a run whose error rate passes the critical threshold
 *   is running under the Tasks emulator; the health run (the emulator never fires schedules, so
 *   the test runs it against the suite's Firestore and Pub/Sub) publishes to `migration-alerts`,
 *   and the deployed `onMigrationAlert` stops the run within seconds, documents as committed;
 * - malformed alerts (not JSON, the wrong shape) and one naming a snapshot that is not critical
 *   are acknowledged and change nothing, and the function keeps serving;
 * - `firemigrate grant` (the built CLI) sets the claims of an Auth-emulator user;
 * - an admin whose sessions were revoked is refused a mutating call with the ID token they hold.
 */
import { Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import type { ChildProcess } from 'node:child_process';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { createLogger } from '../../functions/src/cli/log';
import { loadConfig } from '../../functions/src/config';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { DocData } from '../../functions/src/definitions/types';
import { DemoDataset, seedDemoData } from '../../functions/src/demo/seed-data';
import { projectMigrations } from '../../functions/src/migrations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { runHealthCheck } from '../../functions/src/monitor/health-run';
import { alertEventsPath } from '../../functions/src/pipeline/alert-stop';
import { TOPICS } from '../../functions/src/transports/names';
import { PubSubAlertBus } from '../../functions/src/transports/pubsub-alert-bus';
import { ensureCliBuilt, spawnCli } from '../support/cli-process';
import { E2E_PASSWORD, functionUrl, resetFirestore, setBackgroundTriggers, signedInUser, suiteProjectId, suiteVariable } from './support/suite';

const paths = new ControlPaths();

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('alerts and auth end to end: health → Pub/Sub → onMigrationAlert; API 401/403/400', () => {
  const projectId = suiteProjectId();
  const tag = `${process.pid}-${Date.now()}`;
  const logLines: string[] = [];
  const log = createLogger({ format: 'json', write: (line) => logLines.push(line) });
  const registry = createRegistry(projectMigrations);
  let admin: App;
  let db: Firestore;
  let pubsub: PubSub;
  let alerts: PubSubAlertBus;
  /** The run the health alert stops (test 2), which the malformed alerts must leave alone (test 3). */
  let stoppedRunId: string | null = null;
  /** Its CRITICAL snapshot: a health run publishes several messages naming it, some may arrive during test 3. */
  let criticalSnapshotId: string | null = null;

  const cliProcesses = new Set<ChildProcess>();

  beforeAll(async () => {
    ensureCliBuilt();
    admin = initializeApp({ projectId }, 'e2e-alerts');
    db = new Firestore({ projectId });
    pubsub = new PubSub({ projectId });
    alerts = new PubSubAlertBus(pubsub);
    // The suite's Firestore is shared by the e2e files, which run one at a time (--runInBand): start from nothing.
    await resetFirestore();
  });
  afterAll(async () => {
    for (const child of cliProcesses) child.kill('SIGKILL');
    // The stopped run still holds the migration's lease: leave the files after this one an empty Firestore.
    await resetFirestore();
    await alerts.close();
    await db.terminate();
    await deleteApp(admin);
  });

  async function tokenWith(claims: Record<string, boolean>, name: string): Promise<string> {
    return (await signedInUser(admin, claims, `${name}-${tag}@example.com`)).token;
  }

  async function post(path: string, body: unknown, token?: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(await functionUrl('api', path), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
      body: JSON.stringify(body),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  }

  /** The built CLI against the suite's Auth emulator: its exit code, stdout and stderr. */
  async function firemigrate(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    const cli = spawnCli(args, { FIREBASE_AUTH_EMULATOR_HOST: suiteVariable('FIREBASE_AUTH_EMULATOR_HOST'), GCLOUD_PROJECT: projectId }, cliProcesses);
    const { code } = await cli.exit;
    return { code, stdout: cli.stdout(), stderr: cli.stderr() };
  }

  /**
   * Waits for an alert event `onMigrationAlert` records for a message naming `snapshotId`; the
   * runs stopped by all the events of that snapshot (a critical health run publishes several messages).
   */
  async function handledEvent(snapshotId: string, timeoutMs: number): Promise<{ stoppedRuns: string[] }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = await db.collection(alertEventsPath(paths)).where('snapshotId', '==', snapshotId).get();
      if (!found.empty) return { stoppedRuns: found.docs.flatMap((doc) => doc.get('stoppedRuns') as string[]) };
      if (Date.now() > deadline) throw new Error(`onMigrationAlert recorded no event for snapshot ${snapshotId} within ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** A health run that can find nothing critical (every threshold out of reach): a snapshot to name in a harmless alert. */
  async function quietSnapshotId(): Promise<string> {
    const lenient = loadConfig({ MONITOR_ALERT_THRESHOLDS: JSON.stringify({ errorRate: { warning: 0.98, critical: 0.99 }, responseTime: { warning: 600_000, critical: 900_000 } }) });
    const { snapshot } = await runHealthCheck({ db, paths, config: lenient, registry, alerts: { publish: async () => 'not-published' }, stallAfterMs: 3_600_000, log, indexes: null });
    expect(snapshot.status).not.toBe('CRITICAL');
    return snapshot.id;
  }

  it('API over the Functions emulator: 401 without a token, 403 for a viewer on an admin route, 400 with the zod issues', async () => {
    const start = { migrationId: tradesV2.id, execute: true, reason: 'e2e auth' };
    const anonymous = await post('/migration/runs', start);
    expect(anonymous.status).toBe(401);
    expect(anonymous.body).toMatchObject({ error: 'unauthenticated' });

    const forged = await post('/migration/runs', start, 'not-a-token');
    expect(forged.status).toBe(401);

    const viewer = await post('/migration/runs', start, await tokenWith({ migrationViewer: true }, 'viewer'));
    expect(viewer.status).toBe(403);
    expect(viewer.body).toMatchObject({ error: 'forbidden' });
    expect(String(viewer.body.message)).toContain('migrationAdmin');

    const adminToken = await tokenWith({ migrationAdmin: true }, 'admin');
    const invalid = await post('/migration/runs', { migrationId: 42, execute: 'yes' }, adminToken);
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ error: 'invalid-request' });
    const issues = invalid.body.issues as Array<{ path: string[]; code: string }>;
    expect(issues).toEqual(expect.arrayContaining([
      expect.objectContaining({ path: ['migrationId'], code: 'invalid_type' }),
      expect.objectContaining({ path: ['execute'], code: 'invalid_type' }),
    ]));
    // Nothing was started by any of them.
    expect((await db.collection(paths.runs(tradesV2.id)).get()).size).toBe(0);
  });

  it('a critical error rate: the health run publishes to migration-alerts and onMigrationAlert stops the running run within seconds', async () => {
    // Enough trades that the run is still going when the alert lands; the malformed ones fail (invalid-source).
    // The dual-read sync triggers stay off while seeding (one invocation per seeded document otherwise).
    const seeded = { docs: 4000, seed: 29, now: new Date('2026-11-01T10:00:00Z') };
    const seedStarted = Date.now();
    await setBackgroundTriggers(false);
    let manifest;
    try {
      manifest = await seedDemoData(db, seeded);
    } finally {
      await setBackgroundTriggers(true);
    }
    console.log(`seeded ${seeded.docs} trades (and their users and conversations) in ${Date.now() - seedStarted} ms`);
    expect(manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray).toBeGreaterThan(0);

    // Warm the function up (its first call starts a worker): an alert naming a snapshot that is not critical.
    const warmUp = await quietSnapshotId();
    await alerts.publish(TOPICS.alerts, { snapshotId: warmUp });
    expect(await handledEvent(warmUp, 60_000)).toEqual({ stoppedRuns: [] });

    const started = await post('/migration/runs', { migrationId: tradesV2.id, execute: true, reason: 'e2e health alert' }, await tokenWith({ migrationAdmin: true }, 'operator'));
    expect(started.status).toBe(202);
    const runId = started.body.runId as string;
    stoppedRunId = runId;
    const runRef = db.doc(paths.run(tradesV2.id, runId));
    const markers = db.collection(paths.batches(tradesV2.id, runId));

    // Running, with failures committed: any failure passes this critical threshold.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const run = (await runRef.get()).data() as RunDocument;
      if (run.status !== 'planning' && run.status !== 'running') throw new Error(`the run ended (${run.status}) before the health check: seed more trades`);
      const failed = run.status === 'running' ? (await markers.where('failed', '>', 0).limit(1).get()).size : 0;
      if (failed > 0) break;
      if (Date.now() > deadline) throw new Error('the run committed no batch with failures within 120 s');
      await sleep(100);
    }
    // A small integrity sample keeps the health run short on a loaded machine: the run must still be going when it publishes.
    const strict = loadConfig({ MONITOR_SAMPLE_SIZE: '5', MONITOR_ALERT_THRESHOLDS: JSON.stringify({ errorRate: { warning: 0.00001, critical: 0.00002 } }) });
    const checkStarted = Date.now();
    const { snapshot, alertMessageId } = await runHealthCheck({ db, paths, config: strict, registry, alerts, stallAfterMs: 300_000, log, indexes: null });
    const published = Date.now();
    criticalSnapshotId = snapshot.id;
    expect(snapshot.status).toBe('CRITICAL');
    expect(alertMessageId).not.toBeNull();
    const health = snapshot.runs.find((entry) => entry.runId === runId);
    expect(health?.critical).toBe(true);

    let run = (await runRef.get()).data() as RunDocument;
    while (run.status === 'running' && Date.now() - published < 60_000) {
      await sleep(100);
      run = (await runRef.get()).data() as RunDocument;
    }
    // From the snapshot's write (the health run publishes right after it) to the stop's.
    const snapshotWritten = (await db.collection(paths.healthSnapshots()).doc(snapshot.id).get()).createTime!.toMillis();
    const reactionMs = run.updatedAt.toMillis() - snapshotWritten;
    console.log(`health run ${published - checkStarted} ms; snapshot written → run emergency_stopped ${reactionMs} ms`);
    expect({ status: run.status, reason: run.statusReason }).toEqual({
      status: 'emergency_stopped',
      reason: expect.stringContaining(`health snapshot ${snapshot.id} is CRITICAL`),
    });
    // G7: within seconds of the alert (publish, push to the function, its transaction) — generous for a loaded 2-core machine.
    expect(reactionMs).toBeLessThan(20_000);
    const event = await handledEvent(snapshot.id, 10_000);
    expect(event.stoppedRuns).toEqual([runId]);

    // Documents as committed: batches in flight at the stop still land, then nothing more.
    let count = -1;
    for (let settled = (await markers.count().get()).data().count; settled !== count; await sleep(3000)) {
      count = settled;
      settled = (await markers.count().get()).data().count;
    }
    await expectTradesAsCommitted(db, seeded, runId);
    const actions = (await new AuditLog(db, paths).forRun(runId)).map((entry) => entry.action).filter((action) => action.startsWith('run.'));
    expect(actions).toEqual(['run.requested', 'run.started', 'run.stopped']);
  }, 300_000);

  it('malformed alerts and one naming a non-critical snapshot are acknowledged and change nothing; the function keeps serving', async () => {
    expect(stoppedRunId).not.toBeNull();
    const runRef = db.doc(paths.run(tradesV2.id, stoppedRunId!));
    const before = (await runRef.get()).data() as RunDocument;
    const otherEvents = async () => (await db.collection(alertEventsPath(paths)).get()).docs.filter((doc) => doc.get('snapshotId') !== criticalSnapshotId).length;
    const eventsBefore = await otherEvents();
    const topic = pubsub.topic(TOPICS.alerts);

    await topic.publishMessage({ data: Buffer.from('{ not json') });
    await topic.publishMessage({ json: { stop: 'everything', runIds: [stoppedRunId] } });
    await topic.publishMessage({ json: { snapshotId: '../../etc/passwd' } });
    const quiet = await quietSnapshotId();
    await topic.publishMessage({ json: { snapshotId: quiet, runIds: [stoppedRunId] } });

    // The non-critical one is handled (recorded, nothing stopped) — after the malformed ones were published.
    expect(await handledEvent(quiet, 60_000)).toEqual({ stoppedRuns: [] });
    await sleep(3000);
    // The malformed ones were acknowledged without a trace in Firestore; the run is as it was, field by field.
    expect(await otherEvents()).toBe(eventsBefore + 1);
    expect((await runRef.get()).data()).toEqual(before);
    const actions = (await new AuditLog(db, paths).forRun(stoppedRunId!)).map((entry) => entry.action).filter((action) => action.startsWith('run.'));
    expect(actions).toEqual(['run.requested', 'run.started', 'run.stopped']);

    // Still serving: the next alert is handled as promptly.
    const next = await quietSnapshotId();
    const published = Date.now();
    await alerts.publish(TOPICS.alerts, { snapshotId: next });
    await handledEvent(next, 20_000);
    expect(Date.now() - published).toBeLessThan(20_000);
  }, 120_000);

  it('firemigrate grant --viewer / --admin sets the claim on an Auth-emulator user, keeping its other claims; an unknown email exits 1 naming it', async () => {
    const auth = getAuth(admin);
    const email = `grantee-${tag}@example.com`;
    const user = await auth.createUser({ email, password: E2E_PASSWORD });
    await auth.setCustomUserClaims(user.uid, { team: 'ops' });

    const viewer = await firemigrate('grant', email, '--viewer', '--json');
    expect({ code: viewer.code, stderr: viewer.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(viewer.stdout)).toEqual({
      email,
      uid: user.uid,
      projectId,
      claim: 'migrationViewer',
      action: 'granted',
      changed: true,
      claims: { migrationAdmin: false, migrationViewer: true },
      sessionsRevoked: false,
    });
    expect((await auth.getUser(user.uid)).customClaims).toEqual({ team: 'ops', migrationViewer: true });

    const adminGrant = await firemigrate('grant', email, '--admin');
    expect(adminGrant.code).toBe(0);
    expect(adminGrant.stdout).toContain(`Granted: migrationAdmin for ${email} (uid ${user.uid}) in project ${projectId}.`);
    expect((await auth.getUser(user.uid)).customClaims).toEqual({ team: 'ops', migrationViewer: true, migrationAdmin: true });

    const unknown = `nobody-${tag}@example.com`;
    const missing = await firemigrate('grant', unknown, '--admin');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`No Firebase Auth user has the email ${unknown} in project ${projectId}: the user must sign up (or be created) first.`);
    expect(missing.stdout).toBe('');
  }, 60_000);

  it('an admin whose sessions were revoked: a mutating call with the ID token they still hold gets 401 (auth/id-token-revoked)', async () => {
    const { uid, token } = await signedInUser(admin, { migrationAdmin: true }, `revoked-${tag}@example.com`);
    // Accepted before the revocation: the admin check passes, the empty body is then refused (400, nothing changes).
    const accepted = await post('/migration/runs', {}, token);
    expect({ status: accepted.status, error: accepted.body.error }).toEqual({ status: 400, error: 'invalid-request' });

    // Revocation is recorded in whole seconds and compared with the token's auth_time (seconds): a
    // revocation in the second of the sign-in would not cover the token. Revoke in a later second.
    await sleep(1500);
    await getAuth(admin).revokeRefreshTokens(uid);
    const validAfter = Date.parse((await getAuth(admin).getUser(uid)).tokensValidAfterTime!);
    expect(validAfter).toBeGreaterThan(JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()).auth_time * 1000);

    const refused = await post('/migration/runs', {}, token);
    expect(refused.status).toBe(401);
    expect(refused.body).toMatchObject({ error: 'unauthenticated', reason: 'auth/id-token-revoked' });
    // Against the Auth emulator firebase-admin checks revocation on every verifyIdToken
    // (`checkRevoked || isEmulator`), reads included: this shows a real revoked token refused end to
    // end, not that only mutating calls ask for the check — api.test.ts shows that through the verifier port.
  }, 60_000);
});

/**
 * Each demo trade either as seeded, or migrated exactly as `up()` derives it with its
 * before-image; the migrated ones are exactly what the markers count, failures only for malformed trades.
 */
async function expectTradesAsCommitted(db: Firestore, seeded: { docs: number; seed: number; now: Date }, runId: string): Promise<void> {
  const dataset = new DemoDataset(seeded);
  const stored = new Map<string, DocData>();
  for await (const snapshot of db.collection('trades').stream() as AsyncIterable<QueryDocumentSnapshot>) stored.set(snapshot.id, snapshot.data());
  const backups = new Set<string>();
  for await (const snapshot of db.collection(paths.backups(tradesV2.id, runId)).select('path').stream() as AsyncIterable<QueryDocumentSnapshot>) backups.add(snapshot.get('path') as string);
  let migratedByMarkers = 0;
  for await (const snapshot of db.collection(paths.batches(tradesV2.id, runId)).select('migrated').stream() as AsyncIterable<QueryDocumentSnapshot>) migratedByMarkers += snapshot.get('migrated') as number;
  expect(stored.size).toBe(seeded.docs);
  let migrated = 0;
  let untouchedLegacy = 0;
  for (let index = 0; index < seeded.docs; index++) {
    const trade = dataset.trade(index);
    const path = `trades/${trade.id}`;
    const actual = stored.get(trade.id);
    if (backups.has(path)) {
      migrated++;
      expect(trade.case.kind).toBe('legacy');
      const derived = tradesV2.up(structuredClone(trade.data), { path, id: trade.id }) as DocData;
      expect({ path, data: actual }).toEqual({ path, data: { ...trade.data, ...derived, schemaVersion: '2.0' } });
    } else {
      if (trade.case.kind === 'legacy') untouchedLegacy++;
      expect({ path, data: actual }).toEqual({ path, data: trade.data });
    }
  }
  expect(migrated).toBe(migratedByMarkers);
  expect(migrated).toBeGreaterThan(0);
  // Stopped before the end: legacy trades are left in the old shape.
  expect(untouchedLegacy).toBeGreaterThan(0);
}
