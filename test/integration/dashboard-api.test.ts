import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Timestamp } from '@google-cloud/firestore';
import type { Express } from 'express';
import request from 'supertest';
import { createApiApp } from '../../functions/src/api/app';
import type { VerifiedCaller } from '../../functions/src/api/auth';
import { createLogger } from '../../functions/src/cli/log';
import { loadConfig } from '../../functions/src/config';
import { markerId, newPartitionDocument } from '../../functions/src/control/partitions';
import { ControlPaths } from '../../functions/src/control/paths';
import { newRunDocument, type RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import { projectMigrations } from '../../functions/src/migrations';
import { alertStatePath } from '../../functions/src/monitor/monitor-paths';
import type { HealthCheck } from '../../functions/src/monitor/types';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import type { PlanRunTask } from '../../functions/src/transports/task-payloads';
import { StaticTokenVerifierForTests } from '../support/static-token-verifier';
import { describeEmulator, emulatorHost, resetProject, testFirestore } from '../support/emulator';

const TOKENS: Record<string, VerifiedCaller> = {
  'admin-token': { uid: 'u-admin', email: 'admin@example.com', claims: { migrationAdmin: true } },
  'viewer-token': { uid: 'u-viewer', email: 'viewer@example.com', claims: { migrationViewer: true } },
  'plain-token': { uid: 'u-plain', email: null, claims: {} },
};
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const trades = projectMigrations.find((migration) => migration.id === 'tradeya-trades-v2')!;
const at = (iso: string) => Timestamp.fromDate(new Date(iso));

describeEmulator('dashboard API routes (express app on the Firestore emulator)', () => {
  const projectId = 'demo-dashboard-api';
  const db = testFirestore(projectId);
  const config = loadConfig({ FIRESTORE_EMULATOR_HOST: emulatorHost() });
  const paths = new ControlPaths(config.migration.controlCollection);
  const registry = createRegistry(projectMigrations);
  let planQueue: InProcessTaskQueue<PlanRunTask>;
  let app: Express;
  let dashboardDir: string;

  beforeEach(async () => {
    await resetProject(projectId);
    planQueue = new InProcessTaskQueue<PlanRunTask>(async () => undefined, { concurrency: 1, maxAttempts: 1, minBackoffMs: 10, maxBackoffMs: 10 });
    dashboardDir = mkdtempSync(join(tmpdir(), 'dashboard-api-'));
    app = createApiApp({
      db,
      config,
      registry,
      verifier: new StaticTokenVerifierForTests(TOKENS),
      planQueue,
      log: createLogger({ format: 'json', write: () => undefined }),
      dashboardDir,
    });
  });
  afterEach(() => {
    planQueue.close();
    rmSync(dashboardDir, { recursive: true, force: true });
  });
  afterAll(() => db.terminate());

  async function seedRun(runId: string, overrides: Partial<RunDocument>): Promise<RunDocument> {
    const run = {
      ...newRunDocument(
        { runId, migrationId: trades.id, kind: 'migrate', mode: 'execute', user: 'ops@example.com', identity: 'firebase-auth/u-admin', reason: 'r', checksum: trades.checksum, config, lease: null },
        overrides.createdAt ?? Timestamp.now(),
      ),
      ...overrides,
    } as RunDocument;
    await db.doc(paths.migration(trades.id)).set({ id: trades.id, version: trades.version, checksum: trades.checksum, status: 'running', lastRunId: runId, appliedAt: null, appliedBy: null, updatedAt: Timestamp.now(), activeRunId: null, lease: null });
    await db.doc(paths.run(trades.id, runId)).set(run);
    return run;
  }

  describe('every route needs a viewer', () => {
    it.each(['/api/migration/runs', '/api/migration/runs/20261129-000000-aaaaaa/details', '/api/migration/health/history'])('%s: 401 without a token, 403 without a claim', async (path) => {
      const anonymous = await request(app).get(path).expect(401);
      expect(anonymous.body).toMatchObject({ error: 'unauthenticated' });
      const plain = await request(app).get(path).set(bearer('plain-token')).expect(403);
      expect(plain.body).toMatchObject({ error: 'forbidden', requiredClaim: 'migrationViewer' });
    });
  });

  describe('GET /runs', () => {
    it('lists the runs of every migration, newest first, with who started them', async () => {
      await seedRun('20261129-100000-aaaaaa', { createdAt: at('2026-11-29T10:00:00Z'), status: 'completed', finishedAt: at('2026-11-29T10:05:00Z') });
      await seedRun('20261129-110000-bbbbbb', { createdAt: at('2026-11-29T11:00:00Z'), status: 'running', user: 'other@example.com', mode: 'dry-run' });
      const response = await request(app).get('/api/migration/runs').set(bearer('viewer-token')).expect(200);
      expect(response.headers['cache-control']).toBe('no-store');
      expect(response.body).toEqual({
        runs: [
          {
            runId: '20261129-110000-bbbbbb',
            migrationId: trades.id,
            kind: 'migrate',
            mode: 'dry-run',
            status: 'running',
            statusReason: null,
            user: 'other@example.com',
            identity: 'firebase-auth/u-admin',
            reason: 'r',
            createdAt: '2026-11-29T11:00:00.000Z',
            startedAt: null,
            finishedAt: null,
          },
          {
            runId: '20261129-100000-aaaaaa',
            migrationId: trades.id,
            kind: 'migrate',
            mode: 'execute',
            status: 'completed',
            statusReason: null,
            user: 'ops@example.com',
            identity: 'firebase-auth/u-admin',
            reason: 'r',
            createdAt: '2026-11-29T10:00:00.000Z',
            startedAt: null,
            finishedAt: '2026-11-29T10:05:00.000Z',
          },
        ],
      });
      const limited = await request(app).get('/api/migration/runs?limit=1').set(bearer('viewer-token')).expect(200);
      expect(limited.body.runs.map((run: { runId: string }) => run.runId)).toEqual(['20261129-110000-bbbbbb']);
    });

    it.each(['limit=0', 'limit=101', 'limit=two', 'page=2'])('refuses the query %s (400 naming it)', async (query) => {
      const response = await request(app).get(`/api/migration/runs?${query}`).set(bearer('viewer-token')).expect(400);
      expect(response.body).toMatchObject({ error: 'invalid-request', message: 'the query string is invalid' });
      expect(response.body.issues[0].path).toEqual([query.split('=')[0] === 'page' ? [] : 'limit'].flat());
    });
  });

  describe('GET /runs/:id/details', () => {
    const runId = '20261129-120000-cccccc';

    async function seedMarker(partition: string, seq: number, committedAt: string, counters: { migrated: number; skipped?: number; failed?: number; latencyMs: number }) {
      await db.doc(`${paths.batches(trades.id, runId)}/${markerId(partition, seq)}`).create({
        partition,
        seq,
        firstKey: 'trades/a',
        lastKey: 'trades/z',
        migrated: counters.migrated,
        skipped: counters.skipped ?? 0,
        alreadyMigrated: 0,
        failed: counters.failed ?? 0,
        latencyMs: counters.latencyMs,
        rssMb: 100,
        committedAt: at(committedAt),
      });
    }

    it('gives per-partition progress, the throughput series, batch-latency percentiles and the failures', async () => {
      await seedRun(runId, { status: 'running', partitionCount: 2, partitionMethod: 'key-scan' });
      await db.doc(`${paths.partitions(trades.id, runId)}/p0000`).set({ ...newPartitionDocument(0, { startAt: null, endBefore: 'trades/m' }), status: 'exhausted' });
      await db.doc(`${paths.partitions(trades.id, runId)}/p0001`).set({ ...newPartitionDocument(1, { startAt: 'trades/m', endBefore: null }), status: 'running' });
      // p0000: three batches; p0001: one. Latencies 10..40 ms; commits over 20 s.
      await seedMarker('p0000', 0, '2026-11-29T12:00:00Z', { migrated: 100, latencyMs: 10 });
      await seedMarker('p0000', 1, '2026-11-29T12:00:05Z', { migrated: 90, skipped: 5, failed: 5, latencyMs: 20 });
      await seedMarker('p0000', 2, '2026-11-29T12:00:10Z', { migrated: 50, latencyMs: 30 });
      await seedMarker('p0001', 0, '2026-11-29T12:00:20Z', { migrated: 100, latencyMs: 40 });
      for (const [hash, path] of [['b', 'trades/t-2'], ['a', 'trades/t-1']]) {
        await db.doc(`${paths.failures(trades.id, runId)}/${hash}`).set({ path, errorClass: 'invalid-source', severity: 'medium', message: 'creatorId: invalid_type', migrationId: trades.id, runId, partition: 'p0000', seq: 1, attempts: 1, failedAt: at('2026-11-29T12:00:01Z') });
      }

      const response = await request(app).get(`/api/migration/runs/${runId}/details`).set(bearer('viewer-token')).expect(200);
      expect(response.body.run).toMatchObject({ runId, status: 'running', user: 'ops@example.com' });
      expect(response.body.partitions).toEqual([
        { partition: 'p0000', index: 0, status: 'exhausted', startAt: null, endBefore: 'trades/m', epoch: 0, batches: 3, processed: 250, failed: 5, lastCommitAt: '2026-11-29T12:00:10.000Z' },
        { partition: 'p0001', index: 1, status: 'running', startAt: 'trades/m', endBefore: null, epoch: 0, batches: 1, processed: 100, failed: 0, lastCommitAt: '2026-11-29T12:00:20.000Z' },
      ]);
      // 20 s span → 5 s buckets (the minimum); the first marker's documents were handled before the series starts.
      expect(response.body.throughput).toEqual({
        bucketSeconds: 5,
        points: [
          { at: '2026-11-29T12:00:05.000Z', docsPerSecond: 0 },
          { at: '2026-11-29T12:00:10.000Z', docsPerSecond: 20 },
          { at: '2026-11-29T12:00:15.000Z', docsPerSecond: 10 },
          { at: '2026-11-29T12:00:20.000Z', docsPerSecond: 0 },
          { at: '2026-11-29T12:00:25.000Z', docsPerSecond: 20 },
        ],
      });
      expect(response.body.batchLatency).toEqual({ samples: 4, p50: 20, p95: 40, p99: 40, max: 40 });
      expect(response.body.markersRead).toBe(4);
      expect(response.body.markersTruncated).toBe(false);
      expect(response.body.failures).toEqual({
        total: 2,
        listed: [
          { path: 'trades/t-1', errorClass: 'invalid-source', severity: 'medium', message: 'creatorId: invalid_type', attempts: 1, partition: 'p0000', failedAt: '2026-11-29T12:00:01.000Z' },
          { path: 'trades/t-2', errorClass: 'invalid-source', severity: 'medium', message: 'creatorId: invalid_type', attempts: 1, partition: 'p0000', failedAt: '2026-11-29T12:00:01.000Z' },
        ],
      });

      const one = await request(app).get(`/api/migration/runs/${runId}/details?failures=1`).set(bearer('viewer-token')).expect(200);
      expect(one.body.failures.total).toBe(2);
      expect(one.body.failures.listed.map((failure: { path: string }) => failure.path)).toEqual(['trades/t-1']);
    });

    it('a planning run has no partitions, no series and no latency yet', async () => {
      await seedRun(runId, {});
      const response = await request(app).get(`/api/migration/runs/${runId}/details`).set(bearer('viewer-token')).expect(200);
      expect(response.body).toMatchObject({ partitions: [], throughput: { bucketSeconds: null, points: [] }, batchLatency: null, failures: { total: 0, listed: [] }, markersRead: 0 });
    });

    it('404 for an unknown or malformed run id, 400 for a bad failures count', async () => {
      await seedRun(runId, {});
      const unknown = await request(app).get('/api/migration/runs/20261129-000000-ffffff/details').set(bearer('viewer-token')).expect(404);
      expect(unknown.body).toMatchObject({ error: 'not-found', runId: '20261129-000000-ffffff' });
      await request(app).get('/api/migration/runs/not%20an%20id/details').set(bearer('viewer-token')).expect(404);
      const bad = await request(app).get(`/api/migration/runs/${runId}/details?failures=-1`).set(bearer('viewer-token')).expect(400);
      expect(bad.body.issues[0].path).toEqual(['failures']);
    });
  });

  describe('GET /health/history', () => {
    const check = (name: string, status: HealthCheck['status'], action: string | null): HealthCheck => ({
      name,
      dimension: 'performance',
      status,
      value: 1,
      threshold: 0.5,
      unit: 'ratio',
      message: `${name} is ${status}`,
      recommendedAction: action,
      scope: { migrationId: trades.id, runId: null },
    });

    it('gives the score timeline oldest first, the open alerts and the alerts resolved within it', async () => {
      const snapshots = [
        { id: 's1', status: 'DEGRADED', score: 85, checkedAt: at('2026-11-29T12:00:00Z'), checks: [check('errorRate', 'warning', 'look at the failures'), check('batchLatency', 'error', 'lower the batch size')] },
        { id: 's2', status: 'DEGRADED', score: 95, checkedAt: at('2026-11-29T12:01:00Z'), checks: [check('batchLatency', 'warning', 'lower the batch size'), check('errorRate', 'ok', null)] },
        { id: 's3', status: 'HEALTHY', score: 95, checkedAt: at('2026-11-29T12:02:00Z'), checks: [check('batchLatency', 'warning', 'lower the batch size')] },
      ];
      for (const snapshot of snapshots) await db.doc(`${paths.healthSnapshots()}/${snapshot.id}`).set(snapshot);
      const openAlert = {
        key: `${trades.id}/-/batchLatency`,
        severity: 'warning',
        category: 'performance',
        message: 'batchLatency is warning',
        metric: 'batchLatency',
        value: 1,
        threshold: 0.5,
        unit: 'ratio',
        migrationId: trades.id,
        runId: null,
        recommendedActions: ['lower the batch size'],
      };
      await db.doc(`${alertStatePath(paths)}/k1`).set({ alert: openAlert, openedAt: at('2026-11-29T12:00:00Z'), openedBySnapshot: 's1', lastSeenAt: at('2026-11-29T12:02:00Z'), lastSnapshotId: 's3' });

      const response = await request(app).get('/api/migration/health/history').set(bearer('viewer-token')).expect(200);
      expect(response.body.latest).toEqual({ id: 's3', status: 'healthy', score: 95, checkedAt: '2026-11-29T12:02:00.000Z' });
      expect(response.body.timeline).toEqual([
        { id: 's1', status: 'degraded', score: 85, checkedAt: '2026-11-29T12:00:00.000Z' },
        { id: 's2', status: 'degraded', score: 95, checkedAt: '2026-11-29T12:01:00.000Z' },
        { id: 's3', status: 'healthy', score: 95, checkedAt: '2026-11-29T12:02:00.000Z' },
      ]);
      expect(response.body.openAlerts).toEqual([{ ...openAlert, openedAt: '2026-11-29T12:00:00.000Z', lastSeenAt: '2026-11-29T12:02:00.000Z' }]);
      expect(response.body.resolvedAlerts).toEqual([
        {
          key: `${trades.id}/-/errorRate`,
          severity: 'warning',
          category: 'performance',
          message: 'errorRate is warning',
          metric: 'errorRate',
          value: 1,
          threshold: 0.5,
          unit: 'ratio',
          migrationId: trades.id,
          runId: null,
          recommendedActions: ['look at the failures'],
          firstSeenAt: '2026-11-29T12:00:00.000Z',
          lastSeenAt: '2026-11-29T12:00:00.000Z',
          lastSnapshotId: 's1',
        },
      ]);

      const newest = await request(app).get('/api/migration/health/history?limit=2').set(bearer('viewer-token')).expect(200);
      expect(newest.body.timeline.map((point: { id: string }) => point.id)).toEqual(['s2', 's3']);
      expect(newest.body.resolvedAlerts).toEqual([]);
    });

    it('answers an empty history before the first health check, and 400 for a bad limit', async () => {
      const response = await request(app).get('/api/migration/health/history').set(bearer('viewer-token')).expect(200);
      expect(response.body).toEqual({ latest: null, timeline: [], openAlerts: [], resolvedAlerts: [] });
      const bad = await request(app).get('/api/migration/health/history?limit=1000').set(bearer('viewer-token')).expect(400);
      expect(bad.body.issues[0].path).toEqual(['limit']);
    });
  });

  describe('the dashboard page', () => {
    it('serves the built page at …/dashboard/ (redirecting …/dashboard) on both mount paths', async () => {
      mkdirSync(join(dashboardDir, 'assets'));
      writeFileSync(join(dashboardDir, 'index.html'), '<!doctype html><title>dashboard</title>');
      writeFileSync(join(dashboardDir, 'assets', 'index-abc.js'), 'console.log(1)');
      for (const base of ['/api/dashboard', '/dashboard']) {
        const redirect = await request(app).get(`${base}?poll=1000`).expect(301);
        expect(redirect.headers.location).toBe('dashboard/?poll=1000');
        const page = await request(app).get(`${base}/`).expect(200);
        expect(page.text).toBe('<!doctype html><title>dashboard</title>');
        expect(page.headers['cache-control']).toBe('no-cache');
        // Nothing from another origin: scripts and styles from the page's own, requests to the API and Firebase Auth only.
        expect(page.headers['content-security-policy']).toMatch(/(^|; )script-src 'self'(;|$)/);
        expect(page.headers['content-security-policy']).toMatch(/(^|; )style-src 'self'(;|$)/);
        expect(page.headers['content-security-policy']).toMatch(/(^|; )connect-src 'self' (https:\/\/identitytoolkit\.googleapis\.com https:\/\/securetoken\.googleapis\.com|http:\/\/[\d.:]+)(;|$)/);
        const asset = await request(app).get(`${base}/assets/index-abc.js`).expect(200);
        expect(asset.headers['cache-control']).toBe('public, max-age=31536000, immutable');
      }
      const missing = await request(app).get('/api/dashboard/assets/nothing.js').expect(404);
      expect(missing.body).toMatchObject({ error: 'not-found' });
    });

    it('answers 503 naming the build when the page is not built', async () => {
      const response = await request(app).get('/api/dashboard/').expect(503);
      expect(response.body.message).toMatch(/the dashboard is not built .*run `npm run build`/);
    });

    it('gives the web configuration with the Auth emulator beside the functions', async () => {
      const env = { ...process.env };
      try {
        process.env.GCLOUD_PROJECT = 'demo-dashboard-api';
        process.env.FIREBASE_AUTH_EMULATOR_HOST = '127.0.0.1:9099';
        delete process.env.DASHBOARD_FIREBASE_API_KEY;
        const response = await request(app).get('/api/dashboard/config.json').expect(200);
        expect(response.body).toEqual({ projectId: 'demo-dashboard-api', apiKey: 'emulator-api-key', authDomain: 'demo-dashboard-api.firebaseapp.com', authEmulatorUrl: 'http://127.0.0.1:9099' });
        delete process.env.FIREBASE_AUTH_EMULATOR_HOST;
        const refused = await request(app).get('/api/dashboard/config.json').expect(503);
        expect(refused.body.message).toMatch(/^DASHBOARD_FIREBASE_API_KEY is not set/);
        process.env.DASHBOARD_FIREBASE_API_KEY = 'AIza-test';
        const production = await request(app).get('/api/dashboard/config.json').expect(200);
        expect(production.body).toEqual({ projectId: 'demo-dashboard-api', apiKey: 'AIza-test', authDomain: 'demo-dashboard-api.firebaseapp.com', authEmulatorUrl: null });
      } finally {
        process.env = env;
      }
    });
  });
});
