/**
 * Runtime control through the built CLI: `pause` and `abort`, issued from a SECOND process, stop
 * a running `run --execute` within one batch, with the state preserved; `resume` then completes
 * the run exactly once per document, and `run` without a name finishes every pending migration.
 * Asserted on the documents.
 *
 * "Within one batch": the runner learns of the request through a listener on the run document
 * (delivery lag asserted below one second) and starts no batch once it knows. So the batches
 * committing after the request are those in flight when it committed — at most the pool — plus,
 * per worker, the one it may have started in the lag before the listener delivered it:
 * IN_FLIGHT_BOUND = POOL + WORKERS.
 */
import type { ChildProcess } from 'node:child_process';
import type { QueryDocumentSnapshot, Timestamp } from '@google-cloud/firestore';
import { AuditLog, type StoredAuditEvent } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore } from '../../functions/src/control/runs';
import type { DocData } from '../../functions/src/definitions/types';
import { DemoDataset, demoManifest, seedDemoData } from '../../functions/src/demo/seed-data';
import { conversationsV2 } from '../../functions/src/migrations/tradeya/conversations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { ensureCliBuilt, spawnCli, type CliProcess } from '../support/cli-process';
import { expectDemoTradesMigratedOnce } from '../support/demo-trades';
import { describeEmulator, emulatorHost, resetProject, testFirestore } from '../support/emulator';

// Two CLI runs, a resume and a validation scan per test: minutes on a loaded machine.
jest.setTimeout(300_000);

const POOL = 4;
const WORKERS = 2;
const IN_FLIGHT_BOUND = POOL + WORKERS;

describeEmulator('CLI pause, abort and resume from a second process', () => {
  const projectId = 'demo-cli-control';
  const db = testFirestore(projectId);
  const paths = new ControlPaths();
  const runs = new RunStore(db, paths);
  const audit = new AuditLog(db, paths);
  // Large enough that the run is still going when the second process (about a second to start) acts, on a fast machine too.
  const seeded = { docs: 6000, seed: 17, now: new Date('2026-11-04T07:00:00Z') };
  const manifest = demoManifest(seeded);
  const running = new Set<ChildProcess>();
  const env = {
    FIRESTORE_EMULATOR_HOST: emulatorHost(),
    GCLOUD_PROJECT: projectId,
    MIGRATION_BATCH_SIZE: '25',
    MIGRATION_CONNECTION_POOL_SIZE: String(POOL),
    MIGRATION_CONCURRENT_BATCHES: String(WORKERS),
  };
  const cli = (...args: string[]): CliProcess => spawnCli(args, env, running);
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

  /** Starts `run --execute` and waits until some batches have committed. */
  async function startedRun(): Promise<{ run: CliProcess; runId: string }> {
    const run = cli('run', 'tradeya-trades-v2', '--execute', '--json', '--user', 'ci');
    const runId = (await run.waitForLine((line) => line.type === 'started')).runId as string;
    const markers = db.collection(paths.batches(tradesV2.id, runId));
    while ((await markers.count().get()).data().count < 3) await new Promise((resolve) => setTimeout(resolve, 20));
    return { run, runId };
  }

  /** The control event the second process wrote, and the markers committed after it (server clock, both). */
  async function afterRequest(runId: string, action: 'run.paused' | 'run.aborted') {
    const event = (await audit.forRun(runId)).find((candidate: StoredAuditEvent) => candidate.action === action && candidate.details.via === 'cli')!;
    const markers = (await db.collection(paths.batches(tradesV2.id, runId)).get()).docs.map((doc: QueryDocumentSnapshot) => doc.data());
    const later = markers.filter((marker) => (marker.committedAt as Timestamp).toMillis() > event.recordedAt.toMillis());
    return { event, markers, later };
  }

  /** What the runner logged when it saw the request (its JSON log lines go to stderr under --json). */
  function observedAt(run: CliProcess, status: string): number {
    const lines = run.stderr().split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line) as { message: string; time: string });
    const seen = lines.find((line) => line.message.includes(`was set "${status}" by another process`));
    expect(seen).toBeDefined();
    return Date.parse(seen!.time);
  }

  /** Every trade is as seeded, or migrated exactly (its fields plus what up() derives): nothing half-done. */
  async function expectTradesUntouchedOrMigrated(): Promise<number> {
    const dataset = new DemoDataset(seeded);
    const stored = new Map((await db.collection('trades').get()).docs.map((doc) => [doc.id, doc.data()]));
    let migrated = 0;
    for (let index = 0; index < seeded.docs; index++) {
      const trade = dataset.trade(index);
      const actual = stored.get(trade.id)!;
      if (trade.case.kind === 'legacy' && actual.schemaVersion === '2.0') {
        migrated++;
        const derived = tradesV2.up(structuredClone(trade.data), { path: `trades/${trade.id}`, id: trade.id }) as DocData;
        expect({ id: trade.id, data: actual }).toEqual({ id: trade.id, data: { ...trade.data, ...derived, schemaVersion: '2.0' } });
      } else {
        expect({ id: trade.id, data: actual }).toEqual({ id: trade.id, data: trade.data });
      }
    }
    return migrated;
  }

  it('pause from a second process stops the run within one batch; resume completes it exactly once', async () => {
    const { run, runId } = await startedRun();
    const pause = cli('pause', runId, '--reason', 'maintenance window', '--user', 'alice', '--json');
    expect(await pause.exit).toEqual({ code: 0, signal: null });
    expect(JSON.parse(pause.stdout())).toMatchObject({ runId, status: 'paused', previousStatus: 'running', statusReason: 'paused by alice: maintenance window', released: true });
    expect(await run.exit).toEqual({ code: 0, signal: null });
    expect(summaryOf(run)).toMatchObject({ runId, status: 'paused', statusReason: 'paused by alice: maintenance window' });

    const { event, markers, later } = await afterRequest(runId, 'run.paused');
    expect(event).toMatchObject({ user: 'alice', reason: 'maintenance window', details: { previousStatus: 'running', via: 'cli' } });
    expect(observedAt(run, 'paused') - event.recordedAt.toMillis()).toBeLessThan(1000);
    expect(later.length).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
    expect(markers.length * 25).toBeLessThan(seeded.docs);
    const paused = await runs.get(tradesV2.id, runId);
    expect(paused).toMatchObject({ status: 'paused', statusReason: 'paused by alice: maintenance window', lease: null, finishedAt: null });
    expect(paused.totals!.batches).toBe(markers.length);
    const migratedSoFar = await expectTradesUntouchedOrMigrated();
    expect(migratedSoFar).toBe(markers.reduce((sum, marker) => sum + (marker.migrated as number), 0));
    expect((await db.collection(paths.backups(tradesV2.id, runId)).count().get()).data().count).toBe(migratedSoFar);

    const status = cli('status', runId, '--json');
    expect(await status.exit).toEqual({ code: 0, signal: null });
    expect(JSON.parse(status.stdout())).toMatchObject({ runId, status: 'paused', throttle: { poolSize: POOL, breaker: { threshold: 0.1 } } });

    const resumed = cli('resume', runId, '--json', '--user', 'bob', '--reason', 'window over');
    expect(await resumed.exit).toEqual({ code: 0, signal: null });
    expect(resumed.lines[0]).toMatchObject({ type: 'started', runId, resumed: true });
    expect(summaryOf(resumed)).toMatchObject({ runId, status: 'completed', migrated: manifest.trades.legacy });
    expect(resumed.lines.find((line) => line.type === 'report')).toMatchObject({
      ok: true,
      after: { total: seeded.docs, migrated: manifest.trades.legacy, alreadyAtTarget: manifest.trades.alreadyV2, failed: manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray, remaining: 0 },
    });
    await expectDemoTradesMigratedOnce(db, seeded, [runId]);
    expect((await runs.get(tradesV2.id, runId)).report).toMatchObject({ ok: true, runId });
    const events = await audit.forRun(runId);
    // Starting the run also put the collection in dual-read (compat/mode-policy.ts), once.
    expect(events.filter((e) => e.action === 'mode.changed').map((e) => e.user)).toEqual(['ci']);
    expect(events.filter((e) => e.action.startsWith('run.')).map((e) => [e.action, e.user])).toEqual([
      ['run.started', 'ci'],
      ['run.paused', 'alice'],
      ['run.resumed', 'bob'],
      ['run.completed', 'bob'],
    ]);
  });

  it('abort from a second process stops the run within one batch for good; `run` then finishes every pending migration', async () => {
    const { run, runId } = await startedRun();
    const abort = cli('abort', runId, '--reason', 'wrong window', '--user', 'alice');
    expect(await abort.exit).toEqual({ code: 0, signal: null });
    expect(abort.stdout()).toContain(`Run ${runId} (tradeya-trades-v2) aborted (was running): aborted by alice: wrong window.`);
    expect(await run.exit).toEqual({ code: 1, signal: null });
    expect(summaryOf(run)).toMatchObject({ runId, status: 'aborted', statusReason: 'aborted by alice: wrong window', resumeCommand: null });

    const { event, markers, later } = await afterRequest(runId, 'run.aborted');
    expect(observedAt(run, 'aborted') - event.recordedAt.toMillis()).toBeLessThan(1000);
    expect(later.length).toBeLessThanOrEqual(IN_FLIGHT_BOUND);
    const aborted = await runs.get(tradesV2.id, runId);
    expect(aborted).toMatchObject({ status: 'aborted', lease: null });
    expect(aborted.finishedAt).not.toBeNull();
    expect((await db.doc(paths.migration(tradesV2.id)).get()).data()).toMatchObject({ status: 'failed', activeRunId: null, lease: null });
    const migratedSoFar = await expectTradesUntouchedOrMigrated();
    expect(migratedSoFar).toBe(markers.reduce((sum, marker) => sum + (marker.migrated as number), 0));

    const refused = cli('resume', runId);
    expect(await refused.exit).toEqual({ code: 1, signal: null });
    expect(refused.stderr()).toContain(`Run ${runId} is "aborted"; only "running", "paused", "emergency_stopped", "failed" runs can be resumed.`);

    // Every pending migration in registry order: conversations, then trades (a new run).
    const all = cli('run', '--execute', '--json', '--no-report');
    expect(await all.exit).toEqual({ code: 0, signal: null });
    const summaries = all.lines.filter((line) => line.type === 'summary');
    expect(summaries.map((line) => [line.migrationId, line.status])).toEqual([
      [conversationsV2.id, 'completed'],
      [tradesV2.id, 'completed'],
    ]);
    expect(summaries[1].migrated).toBe(manifest.trades.legacy - migratedSoFar);
    // Each legacy trade migrated exactly once over the two runs: one before-image each, none twice.
    expect(await expectTradesUntouchedOrMigrated()).toBe(manifest.trades.legacy);
    const backupPaths: string[] = [];
    for (const id of [runId, summaries[1].runId as string]) {
      for (const backup of (await db.collection(paths.backups(tradesV2.id, id)).get()).docs) backupPaths.push(backup.data().path as string);
    }
    expect(backupPaths).toHaveLength(manifest.trades.legacy);
    expect(new Set(backupPaths).size).toBe(manifest.trades.legacy);
    expect((await db.collection('conversations').where('schemaVersion', '==', '2.0').count().get()).data().count).toBe(
      manifest.conversations.legacy + manifest.conversations.alreadyV2,
    );
    const nothing = cli('run', '--execute');
    expect(await nothing.exit).toEqual({ code: 0, signal: null });
    expect(nothing.stderr()).toContain('No pending migrations.');
  });
});
