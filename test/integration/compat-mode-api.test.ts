import request from 'supertest';
import { createApiApp } from '../../functions/src/api/app';
import { createLogger } from '../../functions/src/cli/log';
import { ControlPaths, MODE_DOCUMENT_PATH } from '../../functions/src/control/paths';
import { createRegistry } from '../../functions/src/definitions/registry';
import { projectMigrations } from '../../functions/src/migrations';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import type { PlanRunTask } from '../../functions/src/transports/task-payloads';
import { StaticTokenVerifierForTests } from '../support/static-token-verifier';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

describeEmulator('HTTP API: the migration mode (GET viewer, PUT admin) and /status', () => {
  const projectId = 'demo-mode-api';
  const db = testFirestore(projectId);
  const config = emulatorConfig();
  const paths = new ControlPaths(config.migration.controlCollection);
  const planQueue = new InProcessTaskQueue<PlanRunTask>(async () => undefined, { concurrency: 1, maxAttempts: 1, minBackoffMs: 10, maxBackoffMs: 10 });
  const app = createApiApp({
    db,
    config,
    registry: createRegistry(projectMigrations),
    verifier: new StaticTokenVerifierForTests({
      admin: { uid: 'u-admin', email: 'admin@example.com', claims: { migrationAdmin: true } },
      viewer: { uid: 'u-viewer', email: 'viewer@example.com', claims: { migrationViewer: true } },
    }),
    planQueue,
    log: createLogger({ format: 'json', write: () => undefined }),
  });
  const as = (token: string) => ({ Authorization: `Bearer ${token}` });

  beforeEach(() => resetProject(projectId));
  afterAll(async () => {
    await planQueue.close();
    await db.terminate();
  });

  it('an admin sets dual-read for a migration (its collection, the sync trigger on); viewers read it, also in /status', async () => {
    const set = await request(app)
      .put('/api/migration/mode')
      .set(as('admin'))
      .send({ mode: 'dual-read', migrationId: 'tradeya-trades-v2', reason: 'expand' })
      .expect(200);
    expect(set.body.previous.mode).toBe('normal');
    expect(set.body.current).toMatchObject({ mode: 'dual-read', collections: ['trades'], migrations: ['tradeya-trades-v2'], changedBy: 'admin@example.com', reason: 'expand' });
    expect((await db.doc(MODE_DOCUMENT_PATH).get()).data()).toMatchObject({ mode: 'dual-read', collections: ['trades'], migrations: ['tradeya-trades-v2'] });
    const [event] = (await db.collection(paths.audit()).get()).docs.map((doc) => doc.data());
    expect(event).toMatchObject({ action: 'mode.changed', user: 'admin@example.com', reason: 'expand' });

    const read = await request(app).get('/api/migration/mode').set(as('viewer')).expect(200);
    expect(read.body).toEqual(set.body.current);
    const status = await request(app).get('/api/migration/status').set(as('viewer')).expect(200);
    expect(status.body.mode).toEqual(set.body.current);
  });

  it('refuses viewers, unknown migrations and changes the mode rules refuse, writing nothing', async () => {
    await request(app).put('/api/migration/mode').set(as('viewer')).send({ mode: 'normal' }).expect(403);
    const unknown = await request(app).put('/api/migration/mode').set(as('admin')).send({ mode: 'dual-read', migrationId: 'nope' }).expect(400);
    expect(unknown.body.message).toContain('unknown migration "nope"');
    const bare = await request(app).put('/api/migration/mode').set(as('admin')).send({ mode: 'maintenance' }).expect(400);
    expect(bare.body.message).toContain('needs the collections');
    await request(app).put('/api/migration/mode').set(as('admin')).send({ mode: 'frozen' }).expect(400);
    expect((await db.doc(MODE_DOCUMENT_PATH).get()).exists).toBe(false);
    expect((await db.collection(paths.audit()).get()).size).toBe(0);
  });
});
