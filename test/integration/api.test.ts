import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Firestore, Timestamp } from '@google-cloud/firestore';
import request from 'supertest';
import type { Express } from 'express';
import { createApiApp } from '../../functions/src/api/app';
import { TokenRejectedError, type IdTokenVerifier, type VerifiedCaller } from '../../functions/src/api/auth';
import { createLogger } from '../../functions/src/cli/log';
import { AuditLog } from '../../functions/src/control/audit';
import { markerId } from '../../functions/src/control/partitions';
import { ControlPaths, MODE_DOCUMENT_PATH } from '../../functions/src/control/paths';
import { RegistryStore } from '../../functions/src/control/registry-store';
import { RunStore, newRunDocument, type RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import { projectMigrations } from '../../functions/src/migrations';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import { planTaskId } from '../../functions/src/transports/task-id';
import type { PlanRunTask } from '../../functions/src/transports/task-payloads';
import type { TaskDelivery, TaskQueue } from '../../functions/src/transports/task-queue';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

/**
 * A TEST adapter of the ID-token port: known token strings stand for verified callers, and a
 * "revoked" token passes only when revocation is not checked — the port's contract, not Firebase
 * Auth's cryptography. The firebase-admin adapter (FirebaseIdTokenVerifier) is exercised against
 * the Auth emulator by the end-to-end suite.
 */
class StaticTokenVerifierForTests implements IdTokenVerifier {
  readonly calls: Array<{ token: string; checkRevoked: boolean }> = [];
  constructor(private readonly tokens: Record<string, { caller: VerifiedCaller; revoked?: boolean }>) {}

  async verify(idToken: string, options: { checkRevoked: boolean }): Promise<VerifiedCaller> {
    this.calls.push({ token: idToken, checkRevoked: options.checkRevoked });
    const known = this.tokens[idToken];
    if (!known) throw new TokenRejectedError('auth/argument-error', 'Decoding Firebase ID token failed.');
    if (known.revoked && options.checkRevoked) throw new TokenRejectedError('auth/id-token-revoked', 'The Firebase ID token has been revoked.');
    return known.caller;
  }
}

const ADMIN = { uid: 'u-admin', email: 'admin@example.com', claims: { migrationAdmin: true } };
const VIEWER = { uid: 'u-viewer', email: 'viewer@example.com', claims: { migrationViewer: true } };
const NOBODY = { uid: 'u-plain', email: null, claims: { role: 'customer' } };
const TOKENS = {
  'admin-token': { caller: ADMIN },
  'viewer-token': { caller: VIEWER },
  'plain-token': { caller: NOBODY },
  'revoked-admin-token': { caller: ADMIN, revoked: true },
};
const bearer = (token: keyof typeof TOKENS) => ({ Authorization: `Bearer ${token}` });

/** An app user's ID token as the emulator accepts it (unsigned): the rules apply to its requests. */
function appUserToken(projectId: string): string {
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: `https://securetoken.google.com/${projectId}`,
    aud: projectId,
    iat: now,
    exp: now + 3600,
    auth_time: now,
    sub: 'app-user',
    user_id: 'app-user',
    firebase: { sign_in_provider: 'custom', identities: {} },
  };
  return `${encode({ alg: 'none', type: 'JWT' })}.${encode(claims)}.`;
}

const trades = projectMigrations.find((migration) => migration.id === 'tradeya-trades-v2')!;

describeEmulator('HTTP API (express app on the Firestore emulator)', () => {
  const projectId = 'demo-api';
  const db = testFirestore(projectId);
  const config = emulatorConfig();
  const paths = new ControlPaths(config.migration.controlCollection);
  const runs = new RunStore(db, paths);
  const audit = new AuditLog(db, paths);
  const registry = createRegistry(projectMigrations);

  let verifier: StaticTokenVerifierForTests;
  let deliveries: Array<{ payload: PlanRunTask; delivery: TaskDelivery }>;
  let planQueue: InProcessTaskQueue<PlanRunTask>;
  let logLines: string[];
  let app: Express;

  function apiWith(overrides: { db?: Firestore; planQueue?: TaskQueue<PlanRunTask>; healthTimeoutMs?: number } = {}): Express {
    return createApiApp({
      db: overrides.db ?? db,
      config,
      registry,
      verifier,
      planQueue: overrides.planQueue ?? planQueue,
      log: createLogger({ format: 'json', write: (line) => logLines.push(line) }),
      healthTimeoutMs: overrides.healthTimeoutMs ?? 4000,
      healthStateTtlMs: 0,
    });
  }

  beforeEach(async () => {
    await resetProject(projectId);
    verifier = new StaticTokenVerifierForTests(TOKENS);
    deliveries = [];
    planQueue = new InProcessTaskQueue<PlanRunTask>(async (payload, delivery) => void deliveries.push({ payload, delivery }), {
      concurrency: 2,
      maxAttempts: 3,
      minBackoffMs: 10,
      maxBackoffMs: 100,
    });
    logLines = [];
    app = apiWith();
  });
  afterEach(() => planQueue.close());
  afterAll(() => db.terminate());

  /** Starts a run through the API and returns its id. */
  async function startRun(body: Record<string, unknown>): Promise<string> {
    const response = await request(app).post('/api/migration/runs').set(bearer('admin-token')).send(body).expect(202);
    return response.body.runId as string;
  }

  /** What the planning task does once it has planned: the run goes to 'running' with its target count. */
  async function markPlanned(runId: string, targetDocuments: number): Promise<void> {
    const now = Timestamp.now();
    await runs.transition(trades.id, runId, 'running', {
      startedAt: now,
      partitionCount: 1,
      partitionMethod: 'whole-target',
      totals: { migrated: 0, skipped: 0, alreadyMigrated: 0, failed: 0, batches: 0, targetDocuments, updatedAt: now },
    });
  }

  async function seedMarker(runId: string, seq: number, counts: { migrated: number; skipped: number; alreadyMigrated: number; failed: number }, committedAt: Timestamp) {
    await db.doc(`${paths.batches(trades.id, runId)}/${markerId('p0000', seq)}`).create({
      partition: 'p0000',
      seq,
      firstKey: `trades/t${seq}a`,
      lastKey: `trades/t${seq}z`,
      ...counts,
      latencyMs: 120 + seq,
      rssMb: 90,
      committedAt,
    });
  }

  describe('authentication and authorisation', () => {
    const reads = ['/api/migration/status', '/api/migration/migrations', '/api/migration/runs/20261129-142501-3fa9c2'];
    const writes = ['/api/migration/runs', '/api/migration/runs/20261129-142501-3fa9c2/pause', '/api/migration/runs/20261129-142501-3fa9c2/resume', '/api/migration/runs/20261129-142501-3fa9c2/abort'];

    it('health is open', async () => {
      const response = await request(app).get('/api/migration/health').expect(200);
      expect(response.body.status).toBe('operational');
      expect(verifier.calls).toEqual([]);
    });

    it.each([...reads.map((path) => ['GET', path]), ...writes.map((path) => ['POST', path])])('%s %s: 401 without a token or with a rejected one', async (method, path) => {
      const call = () => (method === 'GET' ? request(app).get(path) : request(app).post(path).send({ reason: 'x' }));
      const missing = await call().expect(401);
      expect(missing.body).toEqual({ error: 'unauthenticated', message: 'an Authorization: Bearer <Firebase ID token> header is required' });
      expect(missing.headers['www-authenticate']).toBe('Bearer realm="firemigrate"');
      const basic = await call().set('Authorization', 'Basic dXNlcjpwYXNz').expect(401);
      expect(basic.body.error).toBe('unauthenticated');
      const forged = await call().set('Authorization', 'Bearer not-a-token').expect(401);
      expect(forged.body).toMatchObject({ error: 'unauthenticated', reason: 'auth/argument-error' });
      expect(forged.headers['www-authenticate']).toBe('Bearer realm="firemigrate", error="invalid_token"');
    });

    it.each(reads)('GET %s: 403 without a claim, allowed for viewers and admins', async (path) => {
      const denied = await request(app).get(path).set(bearer('plain-token')).expect(403);
      expect(denied.body).toMatchObject({ error: 'forbidden', requiredClaim: 'migrationViewer' });
      for (const token of ['viewer-token', 'admin-token'] as const) {
        const response = await request(app).get(path).set(bearer(token));
        // The run does not exist: a 404 proves the caller got past authorisation.
        expect([200, 404]).toContain(response.status);
        expect(response.body.error).not.toBe('forbidden');
      }
    });

    it.each(writes)('POST %s: 403 for viewers (the admin claim is required)', async (path) => {
      for (const token of ['viewer-token', 'plain-token'] as const) {
        const response = await request(app).post(path).set(bearer(token)).send({ migrationId: trades.id, reason: 'x' }).expect(403);
        expect(response.body).toMatchObject({ error: 'forbidden', requiredClaim: 'migrationAdmin' });
      }
      expect(await db.collection(paths.root).get()).toHaveProperty('size', 0);
    });

    it('checks revocation on mutating calls only', async () => {
      await request(app).get('/api/migration/status').set(bearer('revoked-admin-token')).expect(200);
      const refused = await request(app).post('/api/migration/runs').set(bearer('revoked-admin-token')).send({ migrationId: trades.id }).expect(401);
      expect(refused.body).toMatchObject({ error: 'unauthenticated', reason: 'auth/id-token-revoked' });
      expect(verifier.calls).toEqual([
        { token: 'revoked-admin-token', checkRevoked: false },
        { token: 'revoked-admin-token', checkRevoked: true },
      ]);
      expect(await db.collection(paths.root).get()).toHaveProperty('size', 0);
    });
  });

  describe('request validation', () => {
    async function invalid(path: string, body: unknown) {
      const response = await request(app).post(path).set(bearer('admin-token')).send(body as object).expect(400);
      expect(response.body.error).toBe('invalid-request');
      return response.body.issues as Array<{ path: Array<string | number>; code: string; message: string }>;
    }

    it('answers 400 with the zod issues and writes nothing', async () => {
      expect(await invalid('/api/migration/runs', {})).toEqual([
        { path: ['migrationId'], code: 'invalid_type', message: 'Invalid input: expected string, received undefined' },
      ]);
      const unknown = await invalid('/api/migration/runs', { migrationId: 'tradeya-users-v9' });
      expect(unknown).toEqual([
        {
          path: ['migrationId'],
          code: 'custom',
          message: 'unknown migration "tradeya-users-v9"; deployed migrations: tradeya-conversations-v2, tradeya-trades-v2',
        },
      ]);
      const typo = await invalid('/api/migration/runs', { migrationId: trades.id, exceute: true });
      expect(typo).toEqual([{ path: [], code: 'unrecognized_keys', message: 'Unrecognized key: "exceute"' }]);
      const wrongType = await invalid('/api/migration/runs', { migrationId: trades.id, execute: 'yes', reason: '' });
      expect(wrongType.map((issue) => [issue.path, issue.code])).toEqual([
        [['execute'], 'invalid_type'],
        [['reason'], 'too_small'],
      ]);
      expect(await invalid('/api/migration/runs/20261129-142501-3fa9c2/pause', {})).toEqual([
        { path: ['reason'], code: 'invalid_type', message: 'Invalid input: expected string, received undefined' },
      ]);
      expect(await invalid('/api/migration/runs/20261129-142501-3fa9c2/abort', { reason: '   ' })).toEqual([
        { path: ['reason'], code: 'too_small', message: 'reason must not be empty' },
      ]);
      expect(await db.collection(paths.root).get()).toHaveProperty('size', 0);
      expect(planQueue.givenUp).toEqual([]);
      await planQueue.idle();
      expect(deliveries).toEqual([]);
    });

    it('answers 400 to a body that is not JSON', async () => {
      const response = await request(app)
        .post('/api/migration/runs')
        .set(bearer('admin-token'))
        .set('Content-Type', 'application/json')
        .send('{"migrationId": ')
        .expect(400);
      expect(response.body).toMatchObject({ error: 'invalid-request', message: 'the request body is not valid JSON (entity.parse.failed)' });
    });
  });

  describe('POST /api/migration/runs', () => {
    it('creates the run in planning, enqueues one planning task and answers 202', async () => {
      const response = await request(app)
        .post('/api/migration/runs')
        .set(bearer('admin-token'))
        .send({ migrationId: trades.id, reason: 'try the v2 shape', user: 'ops-team' })
        .expect(202);
      const runId = response.body.runId as string;
      expect(runId).toMatch(/^\d{8}-\d{6}-[0-9a-f]{6}$/);
      expect(response.headers.location).toBe(`/api/migration/runs/${runId}`);
      expect(response.body).toEqual({
        runId,
        migrationId: trades.id,
        kind: 'migrate',
        mode: 'dry-run',
        status: 'planning',
        statusReason: null,
        resumes: 0,
        user: 'ops-team',
        identity: 'firebase-auth/u-admin <admin@example.com>',
        reason: 'try the v2 shape',
        taskId: planTaskId(runId, 0),
        enqueue: 'enqueued',
        location: `/api/migration/runs/${runId}`,
      });

      const run = (await db.doc(paths.run(trades.id, runId)).get()).data() as RunDocument;
      expect(run.runId).toBe(runId);
      expect(run.migrationId).toBe(trades.id);
      expect(run.kind).toBe('migrate');
      expect(run.mode).toBe('dry-run');
      expect(run.status).toBe('planning');
      expect(run.user).toBe('ops-team');
      expect(run.identity).toBe('firebase-auth/u-admin <admin@example.com>');
      expect(run.reason).toBe('try the v2 shape');
      expect(run.checksum).toBe(trades.checksum);
      expect(run.config).toEqual(config);
      expect(run.lease).toBeNull();
      expect(run.partitionCount).toBeNull();
      expect(run.startedAt).toBeNull();
      expect(run.finishedAt).toBeNull();
      expect(run.resumes).toBe(0);
      expect(run.totals).toBeNull();
      expect(run.createdAt).toBeInstanceOf(Timestamp);

      const entry = await new RegistryStore(db, paths).get(trades.id);
      expect(entry).toEqual({
        id: trades.id,
        version: '2.0',
        checksum: trades.checksum,
        status: 'pending',
        lastRunId: null,
        appliedAt: null,
        appliedBy: null,
        updatedAt: expect.any(Timestamp),
        activeRunId: null,
        lease: null,
      });

      await planQueue.idle();
      expect(deliveries).toEqual([{ payload: { migrationId: trades.id, runId, resume: 0 }, delivery: { id: planTaskId(runId, 0), retryCount: 0 } }]);

      const events = await audit.forRun(runId);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({
        action: 'run.requested',
        migrationId: trades.id,
        runId,
        user: 'ops-team',
        identity: 'firebase-auth/u-admin <admin@example.com>',
        reason: 'try the v2 shape',
        details: { mode: 'dry-run', via: 'api', uid: 'u-admin' },
      });
    });

    it('runs with --execute semantics when execute is true; the user defaults to the token email', async () => {
      const runId = await startRun({ migrationId: trades.id, execute: true });
      const run = await runs.get(trades.id, runId);
      expect(run.mode).toBe('execute');
      expect(run.user).toBe('admin@example.com');
      expect(run.reason).toBeNull();
    });

    it('refuses a second executed run of a migration while one is planned or holds the lease (409); dry runs are not refused', async () => {
      const first = await startRun({ migrationId: trades.id, execute: true });
      const second = await request(app).post('/api/migration/runs').set(bearer('admin-token')).send({ migrationId: trades.id, execute: true }).expect(409);
      expect(second.body).toMatchObject({ error: 'conflict', migrationId: trades.id, activeRunId: first, currentStatus: 'planning' });
      await startRun({ migrationId: trades.id });

      await markPlanned(first, 10);
      await db.doc(paths.migration(trades.id)).update({ activeRunId: first, lease: { holder: 'worker-1', expiresAt: Timestamp.fromMillis(Date.now() + 60_000) } });
      const third = await request(app).post('/api/migration/runs').set(bearer('admin-token')).send({ migrationId: trades.id, execute: true }).expect(409);
      expect(third.body).toMatchObject({ error: 'conflict', activeRunId: first });
      expect((await db.collection(paths.runs(trades.id)).get()).size).toBe(2);
    });

    it('puts the run to failed and answers 503 when the task cannot be enqueued', async () => {
      const broken: TaskQueue<PlanRunTask> = {
        enqueue: async () => {
          throw new Error('Cloud Tasks unavailable');
        },
      };
      const response = await request(apiWith({ planQueue: broken })).post('/api/migration/runs').set(bearer('admin-token')).send({ migrationId: trades.id }).expect(503);
      const runId = response.body.runId as string;
      expect(response.body.error).toBe('unavailable');
      const run = await runs.get(trades.id, runId);
      expect(run.status).toBe('failed');
      expect(run.statusReason).toBe('the planning task could not be enqueued: Cloud Tasks unavailable');
      expect(run.finishedAt).toBeInstanceOf(Timestamp);
      expect((await audit.forRun(runId)).map((event) => [event.action, event.details.revertedTo ?? null])).toEqual([
        ['run.requested', null],
        ['run.failed', 'failed'],
      ]);
    });
  });

  describe('pause, resume, abort', () => {
    it('moves the run through the lifecycle with an audit event per action, and 409 on a wrong transition', async () => {
      const runId = await startRun({ migrationId: trades.id, execute: true, reason: 'v2 rollout' });
      const tooEarly = await request(app).post(`/api/migration/runs/${runId}/pause`).set(bearer('admin-token')).send({ reason: 'wait' }).expect(409);
      expect(tooEarly.body).toMatchObject({ error: 'conflict', runId, currentStatus: 'planning', requestedStatus: 'paused' });
      await markPlanned(runId, 100);

      const paused = await request(app).post(`/api/migration/runs/${runId}/pause`).set(bearer('admin-token')).send({ reason: 'p95 latency above 2 s', user: 'oncall' }).expect(200);
      expect(paused.body).toMatchObject({ runId, status: 'paused', previousStatus: 'running', statusReason: 'paused by oncall: p95 latency above 2 s' });
      let run = await runs.get(trades.id, runId);
      expect(run.status).toBe('paused');
      expect(run.statusReason).toBe('paused by oncall: p95 latency above 2 s');

      const again = await request(app).post(`/api/migration/runs/${runId}/pause`).set(bearer('admin-token')).send({ reason: 'twice' }).expect(409);
      expect(again.body).toMatchObject({ error: 'conflict', currentStatus: 'paused' });

      const resumed = await request(app).post(`/api/migration/runs/${runId}/resume`).set(bearer('admin-token')).send({ reason: 'latency back to normal' }).expect(202);
      expect(resumed.body).toMatchObject({ runId, status: 'running', previousStatus: 'paused', resumes: 1, taskId: planTaskId(runId, 1), enqueue: 'enqueued' });
      run = await runs.get(trades.id, runId);
      expect(run.status).toBe('running');
      expect(run.resumes).toBe(1);
      expect(run.statusReason).toBeNull();
      await planQueue.idle();
      expect(deliveries.map((d) => [d.payload, d.delivery.id])).toEqual([
        [{ migrationId: trades.id, runId, resume: 0 }, planTaskId(runId, 0)],
        [{ migrationId: trades.id, runId, resume: 1 }, planTaskId(runId, 1)],
      ]);

      const aborted = await request(app).post(`/api/migration/runs/${runId}/abort`).set(bearer('admin-token')).send({ reason: 'superseded by v2.1' }).expect(200);
      expect(aborted.body).toMatchObject({ status: 'aborted', previousStatus: 'running' });
      run = await runs.get(trades.id, runId);
      expect(run.status).toBe('aborted');
      expect(run.finishedAt).toBeInstanceOf(Timestamp);

      const final = await request(app).post(`/api/migration/runs/${runId}/resume`).set(bearer('admin-token')).send({ reason: 'undo' }).expect(409);
      expect(final.body).toMatchObject({ error: 'conflict', currentStatus: 'aborted', requestedStatus: 'running' });
      expect(final.body.message).toMatch(/it is final/);
      expect((await runs.get(trades.id, runId)).status).toBe('aborted');

      const events = await audit.forRun(runId);
      expect(events.map((event) => ({ action: event.action, user: event.user, reason: event.reason, previous: event.details.previousStatus ?? null }))).toEqual([
        { action: 'run.requested', user: 'admin@example.com', reason: 'v2 rollout', previous: null },
        { action: 'run.paused', user: 'oncall', reason: 'p95 latency above 2 s', previous: 'running' },
        { action: 'run.resumed', user: 'admin@example.com', reason: 'latency back to normal', previous: 'paused' },
        { action: 'run.aborted', user: 'admin@example.com', reason: 'superseded by v2.1', previous: 'running' },
      ]);
      for (const event of events) {
        expect(event.identity).toBe('firebase-auth/u-admin <admin@example.com>');
        expect(event.details).toMatchObject({ via: 'api', uid: 'u-admin' });
      }
    });

    it('refuses to resume a dry run, or a run whose definition changed since it started (409)', async () => {
      const dry = await startRun({ migrationId: trades.id });
      await runs.transition(trades.id, dry, 'failed', { statusReason: 'planner crashed' });
      const refusedDry = await request(app).post(`/api/migration/runs/${dry}/resume`).set(bearer('admin-token')).send({ reason: 'again' }).expect(409);
      expect(refusedDry.body).toMatchObject({ error: 'conflict', currentStatus: 'failed' });
      expect(refusedDry.body.message).toMatch(/is a migrate dry-run run; only executed migrate runs can be resumed/);

      const stale = newRunDocument({
        runId: '20261129-000000-abcdef',
        migrationId: trades.id,
        kind: 'migrate',
        mode: 'execute',
        user: 'ops',
        identity: 'emulator',
        reason: null,
        checksum: 'an-older-definition',
        config,
        lease: null,
      });
      await db.doc(paths.run(trades.id, stale.runId)).create({ ...stale, status: 'paused' });
      const refusedStale = await request(app).post(`/api/migration/runs/${stale.runId}/resume`).set(bearer('admin-token')).send({ reason: 'go' }).expect(409);
      expect(refusedStale.body.message).toMatch(/started with definition checksum an-older-definition/);
      expect((await runs.get(trades.id, stale.runId)).status).toBe('paused');
      expect((await audit.forRun(stale.runId)).length).toBe(0);

      const accepted = await request(app)
        .post(`/api/migration/runs/${stale.runId}/resume`)
        .set(bearer('admin-token'))
        .send({ reason: 'transform fixed', acceptDefinitionChange: true })
        .expect(202);
      expect(accepted.body).toMatchObject({ runId: stale.runId, status: 'running', previousStatus: 'paused', resumes: 1 });
      const resumed = await runs.get(trades.id, stale.runId);
      expect(resumed.checksum).toBe(trades.checksum);
      expect(resumed.definitionChanges).toEqual([
        expect.objectContaining({ from: 'an-older-definition', to: trades.checksum, user: 'admin@example.com', reason: 'transform fixed' }),
      ]);
    });

    it('answers 404 for an unknown run and for something that is no run id', async () => {
      await startRun({ migrationId: trades.id });
      const unknown = await request(app).post('/api/migration/runs/20261129-142501-000000/abort').set(bearer('admin-token')).send({ reason: 'x' }).expect(404);
      expect(unknown.body).toEqual({ error: 'not-found', message: 'Run 20261129-142501-000000 was not found.', runId: '20261129-142501-000000' });
      await request(app).get('/api/migration/runs/20261129-142501-000000').set(bearer('viewer-token')).expect(404);
      const malformed = await request(app).get('/api/migration/runs/a.b').set(bearer('viewer-token')).expect(404);
      expect(malformed.body.message).toBe('"a.b" is not a run id');
    });
  });

  describe('GET /api/migration/health', () => {
    it('answers 200 with the migration state in the body', async () => {
      const response = await request(app).get('/api/migration/health').expect(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).toEqual({
        status: 'operational',
        lastCheck: expect.any(String),
        compatibilityLayer: true,
        mode: 'normal',
        modeCollections: [],
        migration: { inMigration: false, activeRuns: 0, healthStatus: 'unknown', healthCheckedAt: null },
      });
      expect(Math.abs(Date.parse(response.body.lastCheck) - Date.now())).toBeLessThan(10_000);
      // Called on the function's own URL, the `api` function sees the path without /api.
      const direct = await request(app).get('/migration/health').expect(200);
      expect(direct.body.status).toBe('operational');
    });

    it('stays 200 while a migration is critical: the app is still served (maintenance reported)', async () => {
      const runId = await startRun({ migrationId: trades.id, execute: true });
      await markPlanned(runId, 100);
      const checkedAt = Timestamp.fromMillis(Date.now() - 5_000);
      await db.collection(paths.healthSnapshots()).add({ status: 'CRITICAL', score: 40, checkedAt });
      await db.doc(MODE_DOCUMENT_PATH).set({ mode: 'maintenance', collections: ['trades'] });
      const response = await request(app).get('/api/migration/health').expect(200);
      expect(response.body).toEqual({
        status: 'maintenance',
        lastCheck: expect.any(String),
        compatibilityLayer: true,
        mode: 'maintenance',
        modeCollections: ['trades'],
        migration: { inMigration: true, activeRuns: 1, healthStatus: 'critical', healthCheckedAt: checkedAt.toDate().toISOString() },
      });
    });

    it('answers 503 only when Firestore itself cannot be used', async () => {
      // The function's identity cannot read Firestore (as when its service account loses
      // access): a client without the emulator's admin token, on a project whose rules close the
      // control data, is refused with PERMISSION_DENIED.
      const deniedProject = 'demo-api-denied';
      const rules = await fetch(`http://${emulatorHost()}/emulator/v1/projects/${deniedProject}:securityRules`, {
        method: 'PUT',
        body: JSON.stringify({ rules: { files: [{ name: 'firestore.rules', content: readFileSync(join(__dirname, '../../firestore.rules'), 'utf8') }] } }),
      });
      expect(rules.status).toBe(200);
      const denied = new Firestore({ projectId: deniedProject, host: emulatorHost(), ssl: false, customHeaders: { Authorization: `Bearer ${appUserToken(deniedProject)}` } });
      try {
        // A new client's first call is slow here (channel set-up, rules compilation): allow it time.
        const response = await request(apiWith({ db: denied, healthTimeoutMs: 60_000 })).get('/api/migration/health').expect(503);
        expect(response.body).toEqual({
          status: 'unavailable',
          lastCheck: expect.any(String),
          compatibilityLayer: false,
          error: expect.stringMatching(/^7 PERMISSION_DENIED/),
        });
        expect(response.headers['cache-control']).toBe('no-store');
      } finally {
        await denied.terminate();
      }
    });
  });

  describe('GET /api/migration/status', () => {
    it('reports no migration in the seed shape, with the applied version', async () => {
      const idle = await request(app).get('/api/migration/status').set(bearer('viewer-token')).expect(200);
      expect(idle.body).toEqual({
        inMigration: false,
        version: null,
        healthStatus: 'unknown',
        estimatedCompletion: null,
        progress: null,
        health: null,
        runs: [],
        mode: { mode: 'normal', collections: [], migrations: [], migrationId: null, runId: null, changedAt: null, changedBy: null, reason: null },
        checkedAt: expect.any(String),
      });
      await startRun({ migrationId: trades.id });
      await db.doc(paths.migration(trades.id)).update({ status: 'applied', appliedAt: Timestamp.now(), appliedBy: 'ops' });
      await db.collection(paths.healthSnapshots()).add({ status: 'HEALTHY', score: 100, checkedAt: Timestamp.now() });
      const applied = await request(app).get('/api/migration/status').set(bearer('viewer-token')).expect(200);
      expect(applied.body).toMatchObject({ inMigration: false, version: '2.0', healthStatus: 'healthy', estimatedCompletion: null, progress: null });

      // A newer snapshot of one version's migrations only (`monitor --version`) is not the database's health.
      await db.collection(paths.healthSnapshots()).add({ status: 'CRITICAL', score: 40, checkedAt: Timestamp.fromMillis(Date.now() + 1000), version: '3.0' });
      const scoped = await request(app).get('/api/migration/status').set(bearer('viewer-token')).expect(200);
      expect(scoped.body.healthStatus).toBe('healthy');
    });

    it('reports progress from the batch markers and an ETA from their measured throughput', async () => {
      const runId = await startRun({ migrationId: trades.id, execute: true });
      await markPlanned(runId, 1000);
      const now = Date.now();
      // One batch long before the throughput window: counted in progress, not in throughput.
      await seedMarker(runId, 0, { migrated: 100, skipped: 0, alreadyMigrated: 0, failed: 0 }, Timestamp.fromMillis(now - 20 * 60_000));
      // Four batches of 100 documents committed 10 s apart: 300 documents after the first one in 30 s = 10 docs/s.
      for (let seq = 1; seq <= 4; seq++) {
        await seedMarker(runId, seq, { migrated: 90, skipped: 5, alreadyMigrated: 3, failed: 2 }, Timestamp.fromMillis(now - (50 - seq * 10) * 1000));
      }
      await db.collection(paths.healthSnapshots()).add({ status: 'MAINTENANCE', score: 100, checkedAt: Timestamp.now() });

      const response = await request(app).get('/api/migration/status').set(bearer('viewer-token')).expect(200);
      const body = response.body;
      // 500 of 1000 processed, 500 left at 10 docs/s: 50 s after the check.
      const expectedEta = new Date(Date.parse(body.checkedAt) + 50_000).toISOString();
      expect(body).toMatchObject({
        inMigration: true,
        version: '2.0',
        healthStatus: 'maintenance',
        estimatedCompletion: expectedEta,
        progress: { processed: 500, total: 1000, percent: 50, migrated: 460, skipped: 20, alreadyMigrated: 12, failed: 8, batches: 5 },
        health: { status: 'maintenance', score: 100 },
      });
      expect(body.runs).toHaveLength(1);
      expect(body.runs[0]).toMatchObject({
        runId,
        migrationId: trades.id,
        version: '2.0',
        mode: 'execute',
        status: 'running',
        progress: { processed: 500, total: 1000, percent: 50, batches: 5, meanBatchLatencyMs: (120 + 121 + 122 + 123 + 124) / 5 },
        throughput: { docsPerSecond: 10, sampleBatches: 4, sampleSeconds: 30 },
        estimatedCompletion: expectedEta,
        failureRecords: 0,
        partitions: { count: 1, method: 'whole-target' },
        resumes: 0,
      });

      const single = await request(app).get(`/api/migration/runs/${runId}`).set(bearer('viewer-token')).expect(200);
      expect(single.body).toMatchObject({ runId, status: 'running', progress: { processed: 500, total: 1000 }, throughput: { docsPerSecond: 10 } });
      expect(single.body.estimatedCompletion).toEqual(expect.any(String));

      await request(app).post(`/api/migration/runs/${runId}/pause`).set(bearer('admin-token')).send({ reason: 'hold' }).expect(200);
      const paused = await request(app).get('/api/migration/status').set(bearer('viewer-token')).expect(200);
      expect(paused.body).toMatchObject({ inMigration: true, estimatedCompletion: null, progress: { processed: 500, total: 1000 } });
      expect(paused.body.runs[0]).toMatchObject({ status: 'paused', estimatedCompletion: null, throughput: { docsPerSecond: 10 } });
    });
  });

  describe('GET /api/migration/migrations', () => {
    it('lists the deployed migrations with their registry entries', async () => {
      const before = await request(app).get('/api/migration/migrations').set(bearer('viewer-token')).expect(200);
      expect(before.body.migrations.map((m: { id: string; registry: unknown; deployed: boolean }) => [m.id, m.deployed, m.registry])).toEqual([
        ['tradeya-conversations-v2', true, null],
        ['tradeya-trades-v2', true, null],
      ]);
      const runId = await startRun({ migrationId: trades.id });
      const after = await request(app).get('/api/migration/migrations').set(bearer('viewer-token')).expect(200);
      expect(after.body.migrations[1]).toEqual({
        id: trades.id,
        version: '2.0',
        description: trades.description,
        target: { collection: 'trades' },
        checksum: trades.checksum,
        deployed: true,
        registry: {
          status: 'pending',
          checksum: trades.checksum,
          checksumMatches: true,
          lastRunId: null,
          appliedAt: null,
          appliedBy: null,
          activeRunId: null,
          lease: null,
          updatedAt: expect.any(String),
        },
      });
      expect(runId).toBeTruthy();
    });
  });
});
