/**
 * `firemigrate rollback` and `firemigrate backup` through the built CLI against the emulator:
 * the gate (confirmation, reason, user, --accept-inexact) refuses with exit 2 and writes nothing;
 * the assessment writes nothing; --execute restores every document exactly; SIGTERM pauses the
 * rollback resumably and --resume completes it without redoing a batch; on the emulator the
 * managed-backup commands only say what they would do.
 */
import type { ChildProcess } from 'node:child_process';
import { createLogger } from '../../functions/src/cli/log';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore, type RunDocument } from '../../functions/src/control/runs';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { startRun } from '../../functions/src/engine/runner';
import { tradesV2 } from '../../functions/src/migrations/tradeya';
import { ensureCliBuilt, spawnCli, type CliProcess } from '../support/cli-process';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, testWire } from '../support/raw-seed';
import { dumpDatabase, rawCollections } from '../support/rollback-support';

// A build, a migration and several CLI processes per test: minutes on a loaded machine.
jest.setTimeout(300_000);

describeEmulator('CLI rollback and backup (built CLI on the emulator)', () => {
  const projectId = 'demo-cli-rollback';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const running = new Set<ChildProcess>();
  const baseEnv = { GCLOUD_PROJECT: projectId, MIGRATION_RETRY_DELAY: '5' };
  const cli = (args: string[], env: Record<string, string> = {}): CliProcess => spawnCli(args, { ...baseEnv, ...env }, running);
  const confirmed = { ROLLBACK_CONFIRMED: 'true' };

  beforeAll(ensureCliBuilt);
  beforeEach(() => resetProject(projectId));
  afterEach(() => {
    for (const child of running) child.kill('SIGKILL');
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function migrate(docs: number): Promise<{ runId: string; originals: Awaited<ReturnType<typeof rawCollections>>; legacy: number }> {
    const manifest = await seedDemoData(db, { docs, seed: 9, now: new Date('2026-11-01T10:00:00Z') });
    const originals = await rawCollections(db, wire, ['trades']);
    const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '100' });
    const log = createLogger({ format: 'json', write: () => undefined });
    const session = await startRun({ db, wire, migration: tradesV2, config, paths, lease: { ttlMs: 10_000, renewEveryMs: 3000 }, holder: 'test-host/1/migrate', log }, { user: 'tester', identity: 'emulator', reason: 'migrate' });
    const outcome = await session.outcome;
    expect(outcome.status).toBe('completed');
    return { runId: outcome.runId, originals, legacy: manifest.trades.legacy };
  }

  async function expectRestored(originals: Map<string, unknown>): Promise<void> {
    const after = await rawCollections(db, wire, ['trades']);
    expect(after.size).toBe(originals.size);
    for (const [path, fields] of after) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path) as never) });
  }

  it('refuses --execute without ROLLBACK_CONFIRMED, a reason or a user (each named, exit 2) and writes nothing', async () => {
    const { runId } = await migrate(80);
    const before = await dumpDatabase(db, wire);

    const bare = cli(['rollback', tradesV2.id, '--execute']);
    expect((await bare.exit).code).toBe(2);
    expect(bare.stderr()).toContain('Rollback refused; nothing was written:');
    expect(bare.stderr()).toContain('set ROLLBACK_CONFIRMED=true in the environment to confirm it');
    expect(bare.stderr()).toContain('say why: --reason <text>');
    expect(bare.stderr()).toContain('say who answers for it: --user <name>');

    const noUser = cli(['rollback', runId, '--execute', '--reason', 'bad data'], confirmed);
    expect((await noUser.exit).code).toBe(2);
    expect(noUser.stderr()).not.toContain('ROLLBACK_CONFIRMED');
    expect(noUser.stderr()).toContain('--user <name>');

    const noConfirmation = cli(['rollback', runId, '--execute', '--reason', 'bad data', '--user', 'ops'], { ROLLBACK_CONFIRMED: 'false' });
    expect((await noConfirmation.exit).code).toBe(2);
    expect(noConfirmation.stderr()).toContain('ROLLBACK_CONFIRMED=true');

    const inexact = cli(['rollback', tradesV2.id, '--backup-id', 'bk-x', '--execute', '--reason', 'r', '--user', 'ops'], confirmed);
    expect((await inexact.exit).code).toBe(2);
    expect(inexact.stderr()).toContain('backup restoration is not exact');
    expect(inexact.stderr()).toContain('--accept-inexact');

    const both = cli(['rollback', runId, '--resume', runId, '--execute']);
    expect((await both.exit).code).toBe(2);
    expect(both.stderr()).toContain('give either <target> or --resume, not both');

    expect(await dumpDatabase(db, wire)).toEqual(before);
  });

  it('prints the assessment (text and --json) and writes nothing; --execute restores every document and prints the validation', async () => {
    const { runId, originals, legacy } = await migrate(120);
    const before = await dumpDatabase(db, wire);

    const text = cli(['rollback', tradesV2.id]);
    expect((await text.exit).code).toBe(0);
    expect(text.stdout()).toContain(`Rollback assessment of "${tradesV2.id}" (every executed run)`);
    expect(text.stdout()).toContain('Strategy: restore — every run in scope (1) stored before-images');
    expect(text.stdout()).toContain('Ready: yes');
    expect(text.stdout()).toContain(`Nothing was written. To roll back: ROLLBACK_CONFIRMED=true firemigrate rollback ${tradesV2.id} --execute`);

    const json = cli(['rollback', runId, '--json']);
    expect((await json.exit).code).toBe(0);
    const assessment = JSON.parse(json.stdout());
    expect(assessment).toMatchObject({ migrationId: tradesV2.id, scope: { runId }, documents: { total: legacy, toRestore: legacy, conflicts: 0 }, ready: true });
    expect(await dumpDatabase(db, wire)).toEqual(before);

    const executed = cli(['rollback', runId, '--execute', '--reason', 'bad skills', '--user', 'ops', '--json'], { ...confirmed, ROLLBACK_BATCH_SIZE: '30' });
    const { code } = await executed.exit;
    expect({ code, stderr: executed.stderr() }).toMatchObject({ code: 0 });
    const summary = executed.lines.find((line) => line.type === 'summary')!;
    expect(summary).toMatchObject({ status: 'completed', strategy: 'restore', totals: { restored: legacy, conflicts: 0, failed: 0 }, validation: { ok: true }, resumeCommand: null });
    expect(executed.lines[0]).toMatchObject({ type: 'started', migrationId: tradesV2.id, strategy: 'restore' });
    await expectRestored(originals);
    const rollbackRun = (await new RunStore(db, paths).get(tradesV2.id, summary.runId as string)) as RunDocument;
    expect(rollbackRun).toMatchObject({ kind: 'rollback', status: 'completed', user: 'ops', identity: 'emulator', reason: 'bad skills' });
    expect((await new RunStore(db, paths).get(tradesV2.id, runId)).status).toBe('rolled_back');
  });

  it('SIGTERM pauses the rollback (exit 0, resumable); --resume completes it without redoing a batch', async () => {
    const { originals, legacy } = await migrate(1500);
    const env = { ...confirmed, ROLLBACK_BATCH_SIZE: '5' };
    const first = cli(['rollback', tradesV2.id, '--execute', '--reason', 'bad skills', '--user', 'ops', '--json'], env);
    const started = await first.waitForLine((line) => line.type === 'started');
    const rollbackRunId = started.runId as string;
    const markers = db.collection(paths.batches(tradesV2.id, rollbackRunId));
    while ((await markers.count().get()).data().count < 5) await new Promise((resolve) => setTimeout(resolve, 50));
    first.child.kill('SIGTERM');
    const { code } = await first.exit;
    expect({ code, stderr: first.stderr() }).toMatchObject({ code: 0 });
    const paused = first.lines.find((line) => line.type === 'summary')!;
    expect(paused).toMatchObject({ runId: rollbackRunId, status: 'paused', statusReason: 'received SIGTERM', resumeCommand: expect.stringContaining(`firemigrate rollback --resume ${rollbackRunId} --execute`) });
    const restoredBefore = (paused.totals as { restored: number }).restored;
    expect(restoredBefore).toBeGreaterThan(0);
    expect(restoredBefore).toBeLessThan(legacy);
    expect((await new RunStore(db, paths).get(tradesV2.id, rollbackRunId)).status).toBe('paused');

    const resumed = cli(['rollback', '--resume', rollbackRunId, '--execute', '--reason', 'continue', '--user', 'ops', '--json'], env);
    expect((await resumed.exit).code).toBe(0);
    const summary = resumed.lines.find((line) => line.type === 'summary')!;
    // Exact totals over both sessions: every document restored once, none found already restored (no batch redone).
    expect(summary).toMatchObject({ runId: rollbackRunId, status: 'completed', totals: { restored: legacy, alreadyRestored: 0, conflicts: 0, failed: 0 }, validation: { ok: true } });
    await expectRestored(originals);
  });

  it('backup and backup restoration on the emulator: say what they would do (NOT exact), do nothing (Firestore Admin API absent on the emulator)', async () => {
    await migrate(40);
    const before = await dumpDatabase(db, wire);

    const backup = cli(['backup', '--collections', 'trades', 'users', '--bucket', 'gs://my-backups', '--prefix', 'pre-v2', '--json']);
    expect((await backup.exit).code).toBe(0);
    const planned = JSON.parse(backup.stdout());
    expect(planned).toMatchObject({
      executed: false,
      database: { projectId, databaseId: '(default)' },
      collectionIds: ['trades', 'users'],
      outputUriPrefix: expect.stringMatching(/^gs:\/\/my-backups\/pre-v2\/bk-\d{8}-\d{6}-[0-9a-f]{6}$/),
      why: expect.stringContaining('the Firestore emulator has no Admin API'),
    });
    const noBucket = cli(['backup']);
    expect((await noBucket.exit).code).toBe(2);
    expect(noBucket.stderr()).toContain('pass --bucket <gs://bucket> or set FIREMIGRATE_BACKUP_BUCKET');
    const badBucket = cli(['backup', '--bucket', 'gs://My_Bucket/sub']);
    expect((await badBucket.exit).code).toBe(2);
    expect(badBucket.stderr()).toContain('--bucket "gs://My_Bucket/sub" is not a Cloud Storage bucket name');

    const plan = cli(['rollback', tradesV2.id, '--backup-id', 'bk-20261101-000000-abcdef']);
    expect((await plan.exit).code).toBe(0);
    expect(plan.stdout()).toContain('Backup restoration from backup bk-20261101-000000-abcdef (NOT recorded in the control collection)');
    expect(plan.stdout()).toContain('import trades into');
    expect(plan.stdout()).toContain('NOT EXACT: backup restoration imports a managed export');

    const execute = cli(['rollback', tradesV2.id, '--backup-id', 'bk-20261101-000000-abcdef', '--accept-inexact', '--execute', '--reason', 'r', '--user', 'ops'], confirmed);
    expect((await execute.exit).code).toBe(0);
    expect(execute.stdout()).toContain('Nothing done: the Firestore emulator has no Admin API');
    expect(await dumpDatabase(db, wire)).toEqual(before);
  });
});
