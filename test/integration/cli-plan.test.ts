import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Timestamp } from '@google-cloud/firestore';
import { demoManifest, seedDemoData, type DemoManifest } from '../../functions/src/demo/seed-data';
import { CLI, ROOT, ensureCliBuilt } from '../support/cli-process';
import { describeEmulator, emulatorHost, resetProject, testFirestore } from '../support/emulator';


interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built CLI with a clean environment: only what the test gives it. */
function runCli(args: string[], options: { env?: Record<string, string | undefined>; cwd?: string } = {}): Promise<CliResult> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', METADATA_SERVER_DETECTION: 'none' };
  for (const [key, value] of Object.entries(options.env ?? {})) if (value !== undefined) env[key] = value;
  return new Promise((resolve) => {
    execFile(process.execPath, [CLI, ...args], { env, cwd: options.cwd ?? ROOT, timeout: 90_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

describeEmulator('firemigrate CLI: plan, list, validate, seed-demo', () => {
  const projectId = 'demo-cli-plan';
  const db = testFirestore(projectId);
  const onEmulator = () => ({ FIRESTORE_EMULATOR_HOST: emulatorHost() });
  let manifest: DemoManifest;

  beforeAll(async () => {
    ensureCliBuilt();
    await resetProject(projectId);
    manifest = await seedDemoData(db, { docs: 300, seed: 11 });
  }, 300_000);
  afterAll(() => db.terminate());

  it('plan --json prints the plan as JSON with the counts of the seeded cases', async () => {
    const result = await runCli(['plan', 'tradeya-trades-v2', '--json', '--project', projectId], { env: onEmulator() });
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.migrationId).toBe('tradeya-trades-v2');
    expect(report.counts).toEqual({
      total: manifest.trades.total,
      migrate: manifest.trades.legacy,
      alreadyAtTarget: manifest.trades.alreadyV2,
      skipped: 0,
      fail: manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray,
    });
    expect(report.failures.map((f: { errorClass: string; count: number }) => [f.errorClass, f.count])).toEqual([['invalid-source', report.counts.fail]]);
    expect(report.showValues).toBe(false);
    expect(report.samples).toHaveLength(3);
    for (const sample of report.samples) for (const change of sample.changes) expect(change.after).toBeUndefined();
    expect(report.estimate.reads).toBe(manifest.trades.total);
    expect(report.estimate.writes.total).toBe(
      report.counts.migrate * 2 + Math.ceil(report.counts.migrate / report.estimate.documentsPerBatch) + report.counts.fail,
    );
    expect((await db.collection('_migrations').limit(1).get()).empty).toBe(true);
  });

  it('plan --show-values --sample 1 shows values; the human report is a readable text', async () => {
    const shown = await runCli(['plan', 'tradeya-conversations-v2', '--json', '--show-values', '--sample', '1', '--project', projectId], { env: onEmulator() });
    expect(shown.code).toBe(0);
    const report = JSON.parse(shown.stdout);
    expect(report.samples).toHaveLength(1);
    const source = (await db.doc(report.samples[0].path).get()).data()!;
    const ids = report.samples[0].changes.find((c: { path: string[] }) => c.path.join('.') === 'participantIds');
    expect(ids.afterType).toBe('array<string>');
    for (const participant of source.participants) expect(ids.after).toContain(participant.id ?? participant.userId);

    const human = await runCli(['plan', 'tradeya-conversations-v2', '--project', projectId], { env: onEmulator() });
    expect(human.code).toBe(0);
    expect(human.stdout).toContain('Plan for tradeya-conversations-v2 (version 2.0) — dry run, nothing was written');
    expect(human.stdout).toMatch(new RegExp(`would migrate\\s+${manifest.conversations.legacy.toLocaleString('en-US')}\\s`));
    expect(human.stdout).toContain('+ participantIds: array<string>');
    expect(human.stdout).toContain('Production estimate');
  });

  it('finds the project in GCLOUD_PROJECT, and refuses to guess one without an emulator', async () => {
    const fromEnv = await runCli(['plan', 'tradeya-trades-v2', '--json'], { env: { ...onEmulator(), GCLOUD_PROJECT: projectId } });
    expect(fromEnv.code).toBe(0);
    expect(JSON.parse(fromEnv.stdout).counts.total).toBe(manifest.trades.total);

    const none = await runCli(['plan', 'tradeya-trades-v2', '--json']);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('--project');
    expect(none.stderr).toContain('FIRESTORE_EMULATOR_HOST');
    expect(none.stdout).toBe('');
  });

  it('exits 2 naming the variable when the configuration is bad, and on usage errors', async () => {
    const bad = await runCli(['plan', 'tradeya-trades-v2', '--json', '--project', projectId], { env: { ...onEmulator(), MIGRATION_BATCH_SIZE: 'abc' } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('MIGRATION_BATCH_SIZE');
    expect(bad.stderr).toContain('abc');
    expect(bad.stdout).toBe('');

    const unknown = await runCli(['plan', 'no-such-migration', '--project', projectId], { env: onEmulator() });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no-such-migration');
    expect(unknown.stderr).toContain('tradeya-trades-v2');

    const option = await runCli(['plan', 'tradeya-trades-v2', '--no-such-flag'], { env: onEmulator() });
    expect(option.code).toBe(2);
    expect(option.stderr).toContain('--no-such-flag');

    const sample = await runCli(['plan', 'tradeya-trades-v2', '--sample', 'many'], { env: onEmulator() });
    expect(sample.code).toBe(2);

    const version = await runCli(['--version']);
    expect(version).toEqual({ code: 0, stdout: '0.1.0\n', stderr: '' });
  });

  it('--env <name> loads .env.<name> from the working directory; variables already set win', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'firemigrate-env-'));
    try {
      writeFileSync(join(dir, '.env.staging'), 'MIGRATION_BATCH_SIZE=40\nMIGRATION_QUOTA_SAFETY=0.5\n');
      const fromFile = await runCli(['plan', 'tradeya-trades-v2', '--json', '--env', 'staging', '--project', projectId], { env: onEmulator(), cwd: dir });
      expect(fromFile.code).toBe(0);
      const estimate = JSON.parse(fromFile.stdout).estimate;
      expect([estimate.documentsPerBatch, estimate.quotaSafety]).toEqual([40, 0.5]);

      const overridden = await runCli(['plan', 'tradeya-trades-v2', '--json', '--env', 'staging', '--project', projectId], {
        env: { ...onEmulator(), MIGRATION_BATCH_SIZE: '60' },
        cwd: dir,
      });
      expect(JSON.parse(overridden.stdout).estimate.documentsPerBatch).toBe(60);

      const missingFile = await runCli(['plan', 'tradeya-trades-v2', '--json', '--env', 'production', '--project', projectId], { env: onEmulator(), cwd: dir });
      expect(missingFile.code).toBe(0);
      expect(JSON.parse(missingFile.stdout).estimate.documentsPerBatch).toBe(100);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('with registry entries', () => {
    afterEach(() => db.recursiveDelete(db.collection('_migrations')));

    it('list shows pending migrations, then the applied one with when, by whom and a checksum mismatch', async () => {
      const pending = await runCli(['list', '--json', '--project', projectId], { env: onEmulator() });
      expect(pending.code).toBe(0);
      const before = JSON.parse(pending.stdout).migrations;
      expect(before.map((m: { id: string; status: string; checksumMismatch: boolean }) => [m.id, m.status, m.checksumMismatch])).toEqual([
        ['tradeya-conversations-v2', 'pending', false],
        ['tradeya-trades-v2', 'pending', false],
      ]);
      for (const migration of before) expect(migration.checksum).toMatch(/^[0-9a-f]{64}$/);

      const appliedAt = Timestamp.fromDate(new Date('2026-11-01T10:00:00Z'));
      await db.doc('_migrations/tradeya-trades-v2').set({
        id: 'tradeya-trades-v2',
        version: '2.0',
        checksum: 'f'.repeat(64),
        status: 'applied',
        lastRunId: 'run-1',
        appliedAt,
        appliedBy: 'ops-team',
        updatedAt: appliedAt,
        activeRunId: null,
        lease: null,
      });
      const applied = await runCli(['list', '--json', '--project', projectId], { env: onEmulator() });
      const trades = JSON.parse(applied.stdout).migrations.find((m: { id: string }) => m.id === 'tradeya-trades-v2');
      expect(trades).toMatchObject({
        status: 'applied',
        appliedAt: '2026-11-01T10:00:00.000Z',
        appliedBy: 'ops-team',
        lastRunId: 'run-1',
        recordedChecksum: 'f'.repeat(64),
        checksumMismatch: true,
        defined: true,
      });
      const table = await runCli(['list', '--project', projectId], { env: onEmulator() });
      expect(table.stdout).toMatch(/tradeya-trades-v2\s+2\.0\s+applied\s+2026-11-01T10:00:00\.000Z\s+ops-team\s+\w{12} MISMATCH \(recorded ffffffffffff\)/);
      expect(table.stdout).toContain('! tradeya-trades-v2: the definition changed');
    });

    it('validate reports each check, writes nothing that stays, and fails on an applied checksum mismatch', async () => {
      const ok = await runCli(['validate', '--json', '--project', projectId, '--user', 'alice'], { env: onEmulator() });
      expect(ok.code).toBe(0);
      const report = JSON.parse(ok.stdout);
      expect(report.checks.map((c: { name: string; status: string }) => [c.name, c.status])).toEqual([
        ['configuration', 'pass'],
        ['definitions', 'pass'],
        ['project', 'pass'],
        ['registry entries and checksums', 'pass'],
        ['target queries', 'pass'],
        ['control collection writable', 'pass'],
      ]);
      expect(report.checks[2].detail).toContain('caller emulator (--user alice)');
      expect((await db.collection('_migrations').get()).empty).toBe(true);
      expect(await db.collection('_migrations/_control/probes').listDocuments()).toEqual([]);

      const checksum = JSON.parse((await runCli(['list', '--json', '--project', projectId], { env: onEmulator() })).stdout).migrations[1].checksum;
      await db.doc('_migrations/tradeya-trades-v2').set({ id: 'tradeya-trades-v2', version: '2.0', checksum, status: 'applied', lastRunId: 'r', appliedAt: Timestamp.now(), appliedBy: 'ops', updatedAt: Timestamp.now(), activeRunId: null, lease: null });
      const matching = await runCli(['plan', 'tradeya-trades-v2', '--validate-only', '--json', '--project', projectId], { env: onEmulator() });
      expect(matching.code).toBe(0);
      expect(JSON.parse(matching.stdout).checks[3].detail).toBe('tradeya-trades-v2: applied');

      await db.doc('_migrations/tradeya-trades-v2').update({ checksum: '0'.repeat(64) });
      const mismatch = await runCli(['plan', 'tradeya-trades-v2', '--validate-only', '--project', projectId], { env: onEmulator() });
      expect(mismatch.code).toBe(1);
      expect(mismatch.stdout).toContain('[FAIL] registry entries and checksums: tradeya-trades-v2: CHECKSUM MISMATCH');
      expect(mismatch.stdout).toContain('[ok  ] control collection writable');
      expect(mismatch.stdout).toContain('Not ready');

      const badConfig = await runCli(['validate', '--json', '--project', projectId], { env: { ...onEmulator(), MIGRATION_QUOTA_SAFETY: '7' } });
      expect(badConfig.code).toBe(2);
      const checks = JSON.parse(badConfig.stdout).checks;
      expect(checks[0]).toMatchObject({ name: 'configuration', status: 'fail' });
      expect(checks[0].detail).toContain('MIGRATION_QUOTA_SAFETY');
      expect(checks.slice(1).every((c: { status: string }) => c.status === 'not-run')).toBe(true);
    });
  });

  it('seed-demo writes the manifest it reports on the emulator, and refuses without one', async () => {
    const refused = await runCli(['seed-demo', '--docs', '20', '--project', 'demo-cli-plan-seed']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain('FIRESTORE_EMULATOR_HOST');

    await resetProject('demo-cli-plan-seed');
    const seeded = await runCli(['seed-demo', '--docs', '40', '--seed', '3', '--json', '--project', 'demo-cli-plan-seed'], { env: onEmulator() });
    expect(seeded.code).toBe(0);
    const printed: DemoManifest = JSON.parse(seeded.stdout);
    expect(printed).toEqual(demoManifest({ docs: 40, seed: 3, now: new Date(printed.now) }));
    const other = testFirestore('demo-cli-plan-seed');
    try {
      expect((await other.collection('trades').count().get()).data().count).toBe(40);
      expect((await other.collection('conversations').count().get()).data().count).toBe(20);
      expect((await other.collection('users').count().get()).data().count).toBe(printed.users.total);
    } finally {
      await other.terminate();
      await resetProject('demo-cli-plan-seed');
    }
  });
});
