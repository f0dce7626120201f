/**
 * The deployed `healthCheck` (functions/src/index.ts, an `onSchedule` function) run in a
 * firebase-functions-test environment against the Firestore emulator: its wiring — the lazily built services
 * (configuration from the environment, the Firestore client, the control paths), the outlets an
 * emulator gets (no index check, metrics as log lines) and the stall parameter — ends in a stored
 * health snapshot. The health checks themselves are tested in monitor-health and pipeline.
 */
import type { Firestore } from '@google-cloud/firestore';
import functionsTest from 'firebase-functions-test';
import { ControlPaths } from '../../functions/src/control/paths';
import type { StoredHealthSnapshot } from '../../functions/src/monitor/health-run';
import { describeEmulator, resetProject, testFirestore } from '../support/emulator';
import { captureStdout } from '../support/stdout';

describeEmulator('healthCheck (the scheduled function) on the Firestore emulator', () => {
  const projectId = 'demo-health-function';
  // A control collection of its own: the snapshot is found where the function's configuration puts it.
  const controlCollection = 'ops_migrations';
  const paths = new ControlPaths(controlCollection);
  const testEnv = functionsTest({ projectId });
  const env = { ...process.env };
  const db: Firestore = testFirestore(projectId);
  let index: typeof import('../../functions/src/index');
  const stdout = captureStdout();

  beforeAll(async () => {
    await resetProject(projectId);
    // What the Functions runtime would have: the project, the deploy-time params as variables, the run-time settings.
    Object.assign(process.env, {
      GCLOUD_PROJECT: projectId,
      FIREMIGRATE_HEALTH_STALL_MINUTES: '5',
      MIGRATION_CONTROL_COLLECTION: controlCollection,
      MONITOR_SAMPLE_SIZE: '5',
    });
    index = await import('../../functions/src/index');
  });
  afterAll(async () => {
    const { services } = await import('../../functions/src/pipeline/services');
    await services().pipeline.db.terminate();
    await db.terminate();
    testEnv.cleanup();
    process.env = env;
  });

  it('its handler, run with a Cloud Scheduler event, stores a health snapshot under the configured control collection', async () => {
    const startedAt = Date.now();
    // The function's own run() with the event Cloud Scheduler sends (firebase-functions-test 3.5's
    // wrap() treats a v2 schedule as a v1 one and would hand the handler a v1 context instead).
    await index.healthCheck.run({ scheduleTime: new Date().toISOString(), jobName: 'firebase-schedule-healthCheck-us-central1' });

    const snapshots = await db.collection(paths.healthSnapshots()).get();
    expect(snapshots.size).toBe(1);
    const stored = snapshots.docs[0].data() as StoredHealthSnapshot;
    expect(stored.id).toBe(snapshots.docs[0].id);
    expect(stored.checkedAt.toMillis()).toBeGreaterThanOrEqual(startedAt - 1000);
    // An empty database: no migration has a registry entry, nothing runs, nothing is wrong.
    expect({ status: stored.status, score: stored.score, activeRuns: stored.activeRuns, runs: stored.runs, version: stored.version }).toEqual({
      status: 'HEALTHY',
      score: 100,
      activeRuns: 0,
      runs: [],
      version: null,
    });
    const check = (name: string) => stored.checks.find((entry) => entry.name === name);
    expect(check('firestoreReachable')).toMatchObject({ status: 'ok', scope: { migrationId: null, runId: null } });
    // On an emulator the outlets have no Admin API: the index check is not checkable.
    expect(check('indexes')?.status).toBe('not-checkable');
    expect(stored.metrics.score).toBe(100);

    // The function's own log (JSON lines on stdout): the health line names the snapshot, and the metrics went to the log sink.
    const lines = stdout.filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as Record<string, unknown>);
    const health = lines.filter((line) => String(line.message).startsWith('health: HEALTHY (score 100)'));
    expect(health).toHaveLength(1);
    expect(health[0].snapshotId).toBe(stored.id);
    expect(lines.filter((line) => line.message === 'metric firemigrate/score=100 points')).toHaveLength(1);
  });
});
