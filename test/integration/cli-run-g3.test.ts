/**
 * G3 through the built CLI: a run stopped by SIGTERM pauses cleanly and resumes to completion;
 * a run killed with SIGKILL is resumed once its lease expires. Asserted on the documents.
 */
import type { ChildProcess } from 'node:child_process';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore } from '../../functions/src/control/runs';
import { demoManifest, seedDemoData } from '../../functions/src/demo/seed-data';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { ensureCliBuilt, spawnCli, type CliProcess } from '../support/cli-process';
import { expectDemoTradesMigratedOnce } from '../support/demo-trades';
import { describeEmulator, emulatorHost, resetProject, testFirestore } from '../support/emulator';

const running = new Set<ChildProcess>();
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describeEmulator('CLI run: pause on SIGTERM, resume after SIGKILL (G3)', () => {
  const projectId = 'demo-cli-run-g3';
  const db = testFirestore(projectId);
  const paths = new ControlPaths();
  const runs = new RunStore(db, paths);
  const seeded = { docs: 3000, seed: 11, now: new Date('2026-11-02T08:00:00Z') };
  const manifest = demoManifest(seeded);
  const resumeFor = (runId: string) => `firemigrate run tradeya-trades-v2 --execute --resume ${runId}`;

  function cli(args: string[], env: Record<string, string> = {}): CliProcess {
    return spawnCli(args, { FIRESTORE_EMULATOR_HOST: emulatorHost(), GCLOUD_PROJECT: projectId, MIGRATION_BATCH_SIZE: '25', ...env }, running);
  }

  const summaryOf = (run: CliProcess) => run.lines.find((line) => line.type === 'summary')!;

  beforeAll(ensureCliBuilt);
  beforeEach(async () => {
    await resetProject(projectId);
    await seedDemoData(db, seeded);
  });
  afterAll(async () => {
    for (const child of running) child.kill('SIGKILL');
    await db.terminate();
  });

  it('plans without writing, pauses on SIGTERM with the resume command, and the resume completes exactly once', async () => {
    const dry = cli(['run', 'tradeya-trades-v2']);
    expect(await dry.exit).toEqual({ code: 0, signal: null });
    expect((await db.collection(paths.root).get()).size).toBe(0);
    expect((await db.collection('trades').where('schemaVersion', '==', '2.0').count().get()).data().count).toBe(manifest.trades.alreadyV2);

    const first = cli(['run', 'tradeya-trades-v2', '--execute', '--json', '--user', 'ci', '--reason', 'g3 check']);
    const started = await first.waitForLine((line) => line.type === 'started');
    const runId = started.runId as string;
    expect(started).toMatchObject({ migrationId: tradesV2.id, resumed: false, total: seeded.docs });
    await first.waitForLine((line) => line.type === 'progress');
    first.child.kill('SIGTERM');
    expect(await first.exit).toEqual({ code: 0, signal: null });

    const paused = summaryOf(first);
    expect(paused).toMatchObject({ runId, status: 'paused', error: null, resumeCommand: resumeFor(runId) });
    expect(paused.migrated as number).toBeLessThan(manifest.trades.legacy);
    expect(first.stderr()).toContain(`Resume with:\n  ${resumeFor(runId)}\n`);
    const pausedRun = await runs.get(tradesV2.id, runId);
    expect(pausedRun).toMatchObject({ status: 'paused', statusReason: 'received SIGTERM', lease: null, user: 'ci', identity: 'emulator', reason: 'g3 check' });
    expect((await db.doc(paths.migration(tradesV2.id)).get()).data()).toMatchObject({ status: 'running', activeRunId: null, lease: null });

    const status = cli(['status', runId, '--json']);
    expect(await status.exit).toEqual({ code: 0, signal: null });
    expect(JSON.parse(status.stdout())).toMatchObject({ runId, status: 'paused', progress: { migrated: paused.migrated }, failureRecords: paused.failureRecords, lease: null, resumeCommand: resumeFor(runId) });

    const second = cli(['run', 'tradeya-trades-v2', '--execute', '--json', '--resume', runId]);
    expect(await second.exit).toEqual({ code: 0, signal: null });
    expect(second.lines[0]).toMatchObject({ type: 'started', runId, resumed: true });
    expect(summaryOf(second)).toMatchObject({
      runId,
      status: 'completed',
      migrated: manifest.trades.legacy,
      failureRecords: manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray,
      resumeCommand: null,
    });

    await expectDemoTradesMigratedOnce(db, seeded, [runId]);
    const events = await new AuditLog(db, paths).forRun(runId);
    // The run also switched the mode to dual-read once (compat/mode-policy.ts): its own event.
    expect(events.filter((event) => event.action === 'mode.changed')).toHaveLength(1);
    const runEvents = events.filter((event) => event.action.startsWith('run.'));
    expect(runEvents.map((event) => event.action)).toEqual(['run.started', 'run.paused', 'run.resumed', 'run.completed']);
    expect(runEvents[1]).toMatchObject({ user: 'ci', reason: 'g3 check', details: { statusReason: 'received SIGTERM' } });
  });

  it('after SIGKILL, refuses a resume while the lease lives, then resumes and completes exactly once', async () => {
    const ttl = { MIGRATION_LEASE_TTL_MS: '8000' };
    const first = cli(['run', 'tradeya-trades-v2', '--execute', '--json'], ttl);
    const runId = (await first.waitForLine((line) => line.type === 'started')).runId as string;
    await first.waitForLine((line) => line.type === 'progress');
    first.child.kill('SIGKILL');
    expect(await first.exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(first.lines.some((line) => line.type === 'summary')).toBe(false);

    const crashed = await runs.get(tradesV2.id, runId);
    expect(crashed.status).toBe('running');
    expect(crashed.lease).not.toBeNull();
    const early = cli(['run', 'tradeya-trades-v2', '--execute', '--json', '--resume', runId], ttl);
    expect(await early.exit).toEqual({ code: 1, signal: null });
    expect(early.stderr()).toContain(`Migration "tradeya-trades-v2" is being run by run ${runId} (holder ${crashed.lease!.holder}`);

    const expiry = (await runs.get(tradesV2.id, runId)).lease!.expiresAt.toMillis();
    await sleep(Math.max(0, expiry - Date.now()) + 100);
    const resumed = cli(['run', 'tradeya-trades-v2', '--execute', '--json', '--resume', runId], ttl);
    expect(await resumed.exit).toEqual({ code: 0, signal: null });
    expect(summaryOf(resumed)).toMatchObject({ runId, status: 'completed', migrated: manifest.trades.legacy });

    await expectDemoTradesMigratedOnce(db, seeded, [runId]);
    const run = await runs.get(tradesV2.id, runId);
    expect(run).toMatchObject({ status: 'completed', resumes: 1, lease: null });
    const events = (await new AuditLog(db, paths).forRun(runId)).filter((event) => event.action.startsWith('run.'));
    expect(events.map((event) => event.action)).toEqual(['run.started', 'run.resumed', 'run.completed']);
    expect(events[1].details).toMatchObject({ previousStatus: 'running', takenOverFrom: { runId, holder: crashed.lease!.holder } });
  });
});
