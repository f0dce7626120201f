import request from 'supertest';
import type { Express } from 'express';
import { createApiApp } from '../../functions/src/api/app';
import { createLogger } from '../../functions/src/cli/log';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore, newRunDocument, type RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { Migration } from '../../functions/src/definitions/types';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import type { RollbackPipelineContext, RollbackTask } from '../../functions/src/pipeline/rollback-payload';
import { handleRollbackTask } from '../../functions/src/pipeline/rollback-task';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import type { PlanRunTask } from '../../functions/src/transports/task-payloads';
import { StaticTokenVerifierForTests } from '../support/static-token-verifier';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, testWire } from '../support/raw-seed';
import { dumpDatabase, rawCollections } from '../support/rollback-support';

const TOKENS = {
  'admin-token': { uid: 'u-admin', email: 'admin@example.com', claims: { migrationAdmin: true } },
  'viewer-token': { uid: 'u-viewer', email: 'viewer@example.com', claims: { migrationViewer: true } },
};
const bearer = (token: keyof typeof TOKENS) => ({ Authorization: `Bearer ${token}` });

describeEmulator('HTTP API: POST /api/migration/runs/:id/rollback', () => {
  const projectId = 'demo-rollback-api';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '60', ROLLBACK_BATCH_SIZE: '50', MIGRATION_RETRY_DELAY: '5' });
  const registry = createRegistry([tradesV2, conversationsV2]);
  const seeded = { docs: 120, seed: 3, now: new Date('2026-11-01T10:00:00Z') };
  const log = createLogger({ format: 'json', write: () => undefined });
  let queue: InProcessTaskQueue<RollbackTask>;
  let planQueue: InProcessTaskQueue<PlanRunTask>;
  let rollback: RollbackPipelineContext;
  let app: Express;

  beforeEach(async () => {
    await resetProject(projectId);
    queue = new InProcessTaskQueue<RollbackTask>(async (task) => void (await handleRollbackTask(rollback, task)), { concurrency: 1, maxAttempts: 3, minBackoffMs: 10, maxBackoffMs: 50 });
    planQueue = new InProcessTaskQueue<PlanRunTask>(async () => undefined, { concurrency: 1, maxAttempts: 1, minBackoffMs: 10, maxBackoffMs: 10 });
    rollback = { db, wire, config, paths, registry, lease: { ttlMs: 60_000, renewEveryMs: 20_000 }, log, rollbackQueue: queue };
    app = createApiApp({ db, config, registry, verifier: new StaticTokenVerifierForTests(TOKENS), planQueue, rollback, log });
  });
  afterEach(() => {
    queue.close();
    planQueue.close();
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function migrate(migration: Migration): Promise<string> {
    const runCtx: RunnerContext = { db, wire, migration, config, paths, lease: rollback.lease, holder: 'test-host/1/migrate', log };
    const outcome = await (await startRun(runCtx, { user: 'tester', identity: 'emulator', reason: 'migrate' })).outcome;
    expect(outcome.status).toBe('completed');
    return outcome.runId;
  }

  const url = (runId: string) => `/api/migration/runs/${runId}/rollback`;

  it('401 without a token, 403 for a viewer, 400 with the zod issues for a bad body — and nothing is written', async () => {
    await seedDemoData(db, seeded);
    const source = await migrate(tradesV2);
    const before = await dumpDatabase(db, wire);
    const missing = await request(app).post(url(source)).send({ confirm: true, reason: 'r' }).expect(401);
    expect(missing.body).toMatchObject({ error: 'unauthenticated' });
    await request(app).post(url(source)).set({ Authorization: 'Bearer forged' }).send({ confirm: true, reason: 'r' }).expect(401);
    const viewer = await request(app).post(url(source)).set(bearer('viewer-token')).send({ confirm: true, reason: 'r' }).expect(403);
    expect(viewer.body).toMatchObject({ error: 'forbidden', requiredClaim: 'migrationAdmin' });

    const noReason = await request(app).post(url(source)).set(bearer('admin-token')).send({ confirm: true }).expect(400);
    expect(noReason.body).toEqual({
      error: 'invalid-request',
      message: 'the request body is invalid',
      issues: [{ path: ['reason'], code: 'custom', message: 'reason is required with confirm: true (it is recorded in the rollback run and the audit trail)' }],
    });
    const bad = await request(app).post(url(source)).set(bearer('admin-token')).send({ confirm: 'yes', strategy: 'undo', execute: true }).expect(400);
    expect(bad.body.issues.map((issue: { path: string[]; code: string }) => [issue.path.join('.'), issue.code]).sort()).toEqual([
      ['', 'unrecognized_keys'],
      ['confirm', 'invalid_type'],
      ['strategy', 'invalid_value'],
    ]);
    expect(await dumpDatabase(db, wire)).toEqual(before);
  });

  it('404 for an unknown run, 409 for a run that is not an executed migrate run', async () => {
    await request(app).post(url('20200101-000000-000000')).set(bearer('admin-token')).send({}).expect(404);
    await request(app).post(url('not%20an%20id')).set(bearer('admin-token')).send({}).expect(404);
    const dry = newRunDocument({ runId: '20261101-000000-abcdef', migrationId: tradesV2.id, kind: 'migrate', mode: 'dry-run', user: 'u', identity: 'i', reason: null, checksum: tradesV2.checksum, config, lease: null });
    await db.doc(paths.migration(tradesV2.id)).set({ id: tradesV2.id });
    await db.doc(paths.run(tradesV2.id, dry.runId)).set(dry);
    const conflict = await request(app).post(url(dry.runId)).set(bearer('admin-token')).send({}).expect(409);
    expect(conflict.body).toMatchObject({ error: 'conflict', message: `run ${dry.runId} is a migrate dry-run run; only executed migrate runs can be rolled back` });
  });

  it('without confirm: 200 with the assessment, nothing written; with confirm and a reason: 202, the rollback runs on the queue and restores every document', async () => {
    const manifest = await seedDemoData(db, seeded);
    const originals = await rawCollections(db, wire, ['trades']);
    const source = await migrate(tradesV2);

    const before = await dumpDatabase(db, wire);
    const assessed = await request(app).post(url(source)).set(bearer('admin-token')).send({}).expect(200);
    expect(assessed.body.confirmed).toBe(false);
    expect(assessed.body.assessment).toMatchObject({
      migrationId: tradesV2.id,
      scope: { migrationId: tradesV2.id, runId: source },
      strategy: { chosen: 'restore', overridden: false },
      runs: [{ runId: source, status: 'completed', backups: manifest.trades.legacy }],
      documents: { total: manifest.trades.legacy, toRestore: manifest.trades.legacy, conflicts: 0 },
      ready: true,
    });
    expect(await dumpDatabase(db, wire)).toEqual(before);
    expect(queue.givenUp).toEqual([]);

    const started = await request(app).post(url(source)).set(bearer('admin-token')).send({ confirm: true, reason: 'skills broke the app', user: 'on-call' }).expect(202);
    const rollbackRunId = started.body.runId as string;
    expect(started.headers.location).toBe(`/api/migration/runs/${rollbackRunId}`);
    expect(started.body).toEqual({
      confirmed: true,
      kind: 'rollback',
      runId: rollbackRunId,
      migrationId: tradesV2.id,
      strategy: 'restore',
      sourceRuns: [source],
      scope: 'run',
      taskId: expect.stringMatching(/^[0-9a-f]{64}$/),
      enqueue: 'enqueued',
      location: `/api/migration/runs/${rollbackRunId}`,
    });
    await queue.idle();
    expect(queue.givenUp).toEqual([]);
    const after = await rawCollections(db, wire, ['trades']);
    for (const [path, fields] of after) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path)!) });
    const runs = new RunStore(db, paths);
    expect(await runs.get(tradesV2.id, rollbackRunId)).toMatchObject({ kind: 'rollback', status: 'completed', user: 'on-call', identity: 'firebase-auth/u-admin <admin@example.com>', reason: 'skills broke the app' });
    expect((await runs.get(tradesV2.id, source)).status).toBe('rolled_back');
    const view = await request(app).get(`/api/migration/runs/${rollbackRunId}`).set(bearer('viewer-token')).expect(200);
    expect(view.body).toMatchObject({ runId: rollbackRunId, kind: 'rollback', status: 'completed' });

  });

  it('409 while another run holds the migration; no rollback run is created', async () => {
    await seedDemoData(db, seeded);
    const source = await migrate(tradesV2);
    await db.doc(paths.migration(tradesV2.id)).update({ activeRunId: '20260101-000000-aaaaaa', lease: { holder: 'other/1/x', expiresAt: new Date(Date.now() + 60_000) } });
    const refused = await request(app).post(url(source)).set(bearer('admin-token')).send({ confirm: true, reason: 'r' }).expect(409);
    expect(refused.body).toMatchObject({ error: 'conflict', activeRunId: '20260101-000000-aaaaaa', message: expect.stringMatching(/is being run by run 20260101-000000-aaaaaa/) });
    const rollbackRuns = await db.collection(paths.runs(tradesV2.id)).where('kind', '==', 'rollback').get();
    expect(rollbackRuns.size).toBe(0);
  });

  it('POST /runs records the run\'s rollback policy (default manual)', async () => {
    const auto = await request(app).post('/api/migration/runs').set(bearer('admin-token')).send({ migrationId: tradesV2.id, execute: true, rollbackPolicy: 'auto' }).expect(202);
    const manual = await request(app).post('/api/migration/runs').set(bearer('admin-token')).send({ migrationId: conversationsV2.id, execute: true }).expect(202);
    expect(((await db.doc(paths.run(tradesV2.id, auto.body.runId)).get()).data() as RunDocument).rollbackPolicy).toBe('auto');
    expect(((await db.doc(paths.run(conversationsV2.id, manual.body.runId)).get()).data() as RunDocument).rollbackPolicy).toBe('manual');
    const bad = await request(app).post('/api/migration/runs').set(bearer('admin-token')).send({ migrationId: tradesV2.id, rollbackPolicy: 'sometimes' }).expect(400);
    expect(bad.body.issues).toEqual([expect.objectContaining({ path: ['rollbackPolicy'], code: 'invalid_value' })]);
  });
});
