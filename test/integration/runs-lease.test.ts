import { Timestamp } from '@google-cloud/firestore';
import { AuditLog } from '../../functions/src/control/audit';
import { LeaseHeldError, LeaseKeeper, LeaseLostError, LeaseStore, type LeaseSettings } from '../../functions/src/control/lease';
import { ControlPaths } from '../../functions/src/control/paths';
import { RegistryStore } from '../../functions/src/control/registry-store';
import { RunStore, RunTransitionError, newRunDocument } from '../../functions/src/control/runs';
import { createLogger } from '../../functions/src/cli/log';
import { ChecksumMismatchError } from '../../functions/src/definitions/errors';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { resumeRun, startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { WireClient } from '../../functions/src/engine/wire/client';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeEmulator('runs and the migration lease', () => {
  const projectId = 'demo-runs-lease';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  const config = emulatorConfig();
  const short: LeaseSettings = { ttlMs: 1500, renewEveryMs: 500 };
  const runs = new RunStore(db, paths);
  const registry = new RegistryStore(db, paths);
  const ctx: RunnerContext = {
    db,
    wire,
    migration: tradesV2,
    config,
    paths,
    lease: short,
    holder: 'host-b/2/bbb',
    log: createLogger({ format: 'json', write: () => undefined }),
  };
  const caller = { user: 'bob', identity: 'emulator', reason: 'lease test' };

  beforeEach(async () => {
    await resetProject(projectId);
    await seedDemoData(db, { docs: 30, seed: 3, now: new Date('2026-11-01T00:00:00Z') });
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  /** What a live process holds while it runs `runId`: the run document and the lease, claimed together. */
  async function claimAsRunning(runId: string, holder: string, settings: LeaseSettings = short) {
    const leases = new LeaseStore(db, paths, settings);
    return db.runTransaction(async (tx) => {
      const claim = await leases.claimIn(tx, tradesV2.id, runId, holder);
      runs.createIn(tx, {
        ...newRunDocument({ runId, migrationId: tradesV2.id, kind: 'migrate', mode: 'execute', user: 'alice', identity: 'emulator', reason: null, checksum: tradesV2.checksum, config, lease: claim.lease }),
        status: 'running',
        partitionCount: 1,
        partitionMethod: 'whole-target',
      });
      leases.write(tx, claim, tradesV2);
      return claim;
    });
  }

  it('refuses a second run while the lease is live, and lets it take over once the lease has expired', async () => {
    const a = await claimAsRunning('run-a', 'host-a/1/aaa');
    expect(a.takenOverFrom).toBeNull();

    const refused = startRun(ctx, caller);
    await expect(refused).rejects.toThrow(LeaseHeldError);
    await expect(startRun(ctx, caller)).rejects.toThrow(
      new RegExp(`Migration "tradeya-trades-v2" is being run by run run-a \\(holder host-a/1/aaa, lease live until ${a.lease.expiresAt.toDate().toISOString().replace(/\./g, '\\.')}\\)`),
    );
    await expect(resumeRun(ctx, 'run-a', caller)).rejects.toThrow(LeaseHeldError);
    expect((await db.collection(paths.runs(tradesV2.id)).get()).docs.map((doc) => doc.id)).toEqual(['run-a']);
    expect(await runs.get(tradesV2.id, 'run-a')).toMatchObject({ status: 'running', lease: { holder: 'host-a/1/aaa' } });

    await sleep(a.lease.expiresAt.toMillis() - Date.now() + 50);
    const session = await startRun(ctx, caller);
    expect((await session.outcome).status).toBe('completed');

    const abandoned = await runs.get(tradesV2.id, 'run-a');
    expect(abandoned.status).toBe('paused');
    expect(abandoned.lease).toBeNull();
    expect(abandoned.statusReason).toBe(
      `its holder host-a/1/aaa stopped renewing the lease (crashed?); run ${session.runId} took over the migration. Resume it later with --resume to finish its partitions.`,
    );
    const [started] = await new AuditLog(db, paths).forRun(session.runId);
    expect(started).toMatchObject({
      action: 'run.started',
      user: 'bob',
      reason: 'lease test',
      details: { holder: 'host-b/2/bbb', takenOverFrom: { runId: 'run-a', holder: 'host-a/1/aaa', expiredAt: a.lease.expiresAt.toDate().toISOString() } },
    });
    expect(await registry.get(tradesV2.id)).toMatchObject({ status: 'applied', activeRunId: null, lease: null, lastRunId: session.runId, appliedBy: 'bob' });
  });

  it('refuses to resume a run that crashed while planning (marking it failed), and fails such a run when another takes over', async () => {
    const a = await claimAsRunning('run-a', 'host-a/1/aaa');
    await sleep(a.lease.expiresAt.toMillis() - Date.now() + 50);
    // run-a has no partition documents: it died before its plan was written.
    await expect(resumeRun(ctx, 'run-a', caller)).rejects.toThrow(/run-a has 0 partition documents but planned 1: it stopped while planning/);
    expect(await runs.get(tradesV2.id, 'run-a')).toMatchObject({ status: 'failed', lease: null });
    expect(await registry.get(tradesV2.id)).toMatchObject({ status: 'failed', activeRunId: null, lease: null });

    const e = await claimAsRunning('run-e', 'host-e/5/eee');
    await db.doc(paths.run(tradesV2.id, 'run-e')).update({ status: 'planning' });
    await sleep(e.lease.expiresAt.toMillis() - Date.now() + 50);
    const session = await startRun(ctx, caller);
    expect((await session.outcome).status).toBe('completed');
    expect(await runs.get(tradesV2.id, 'run-e')).toMatchObject({
      status: 'failed',
      lease: null,
      statusReason: `its holder host-e/5/eee stopped renewing the lease while planning (crashed?); run ${session.runId} took over the migration.`,
    });
  });

  it('keeps a lease alive by renewing it, and reports it lost once another holder has it', async () => {
    const c = await claimAsRunning('run-c', 'host-c/3/ccc');
    const leases = new LeaseStore(db, paths, short);
    const lost: Error[] = [];
    const keeper = new LeaseKeeper(leases, tradesV2.id, 'run-c', 'host-c/3/ccc', c.lease.expiresAt, (error) => lost.push(error));
    keeper.start();
    await sleep(short.ttlMs + 700);
    // Past the first expiry, the renewed lease still refuses everyone else.
    await expect(claimAsRunning('run-d', 'host-d/4/ddd')).rejects.toThrow(LeaseHeldError);
    const renewed = (await registry.get(tradesV2.id))!.lease!;
    expect(renewed.holder).toBe('host-c/3/ccc');
    expect(renewed.expiresAt.toMillis()).toBeGreaterThan(c.lease.expiresAt.toMillis());
    expect((await runs.get(tradesV2.id, 'run-c')).lease).toEqual(renewed);
    await keeper.stop();
    expect(lost).toEqual([]);

    await sleep(renewed.expiresAt.toMillis() - Date.now() + 50);
    await claimAsRunning('run-d', 'host-d/4/ddd');
    await expect(leases.renew(tradesV2.id, 'run-c', 'host-c/3/ccc')).rejects.toThrow(LeaseLostError);
    const late = new LeaseKeeper(leases, tradesV2.id, 'run-c', 'host-c/3/ccc', renewed.expiresAt, (error) => lost.push(error));
    late.start();
    await sleep(short.renewEveryMs + 300);
    await late.stop();
    expect(lost).toHaveLength(1);
    expect(lost[0]).toBeInstanceOf(LeaseLostError);
    expect(lost[0].message).toBe(
      'Run run-c lost the lease of migration "tradeya-trades-v2": run run-d (holder host-d/4/ddd) holds it now. This process stops working on the migration.',
    );
    // Only the holder can release; a release writes its registry changes with it.
    expect(await leases.release(tradesV2.id, 'run-c', 'host-c/3/ccc')).toBe(false);
    expect(await leases.release(tradesV2.id, 'run-d', 'host-d/4/ddd', { entry: { status: 'failed' } })).toBe(true);
    expect(await registry.get(tradesV2.id)).toMatchObject({ activeRunId: null, lease: null, status: 'failed', lastRunId: 'run-d' });
    expect((await runs.get(tradesV2.id, 'run-d')).lease).toBeNull();
  });

  it('stops working, and records nothing, when another holder takes its lease while it runs', async () => {
    await seedDemoData(db, { docs: 2000, seed: 3, now: new Date('2026-11-01T00:00:00Z') });
    const session = await startRun({ ...ctx, config: { ...config, migration: { ...config.migration, batchSize: 10 } } }, caller);
    while (session.progress().batches < 1) await sleep(20);
    const thief = { holder: 'thief/9/zzz', expiresAt: Timestamp.fromMillis(Date.now() + 60_000) };
    await db.doc(paths.migration(tradesV2.id)).update({ lease: thief });
    const outcome = await session.outcome;
    expect(outcome.status).toBe('lease-lost');
    expect(outcome.error).toBeInstanceOf(LeaseLostError);
    expect(outcome.error!.message).toContain('run ' + session.runId + ' (holder thief/9/zzz) holds it now');
    expect(session.progress().inFlight).toBe(0);
    expect(session.progress().processed).toBeLessThan(2000);
    // The loser wrote no status: the run is the thief's to finish.
    expect(await runs.get(tradesV2.id, session.runId)).toMatchObject({ status: 'running' });
    expect(await registry.get(tradesV2.id)).toMatchObject({ activeRunId: session.runId, lease: thief });
    expect((await new AuditLog(db, paths).forRun(session.runId)).map((event) => event.action)).toEqual(['run.started']);
  });

  it('refuses to run an applied migration whose definition changed, and creates no run', async () => {
    await db.doc(paths.migration(tradesV2.id)).set({
      id: tradesV2.id, version: tradesV2.version, checksum: 'a'.repeat(64), status: 'applied', lastRunId: 'old',
      appliedAt: Timestamp.now(), appliedBy: 'carol', updatedAt: Timestamp.now(), activeRunId: null, lease: null,
    });
    await expect(startRun(ctx, caller)).rejects.toThrow(ChecksumMismatchError);
    await expect(startRun(ctx, caller)).rejects.toThrow(`Migration "tradeya-trades-v2" was applied with checksum ${'a'.repeat(64)}`);
    expect((await db.collection(paths.runs(tradesV2.id)).get()).size).toBe(0);
    expect(await registry.get(tradesV2.id)).toMatchObject({ status: 'applied', checksum: 'a'.repeat(64), appliedBy: 'carol' });
  });

  it('checks every status change against the lifecycle', async () => {
    const session = await startRun(ctx, caller);
    expect((await session.outcome).status).toBe('completed');
    await expect(runs.transition(tradesV2.id, session.runId, 'running')).rejects.toThrow(RunTransitionError);
    expect((await runs.get(tradesV2.id, session.runId)).status).toBe('completed');
    const rolledBack = await runs.transition(tradesV2.id, session.runId, 'rolled_back', { statusReason: 'test' });
    expect(rolledBack).toMatchObject({ status: 'rolled_back', statusReason: 'test' });
    expect(await runs.get(tradesV2.id, session.runId)).toMatchObject({ status: 'rolled_back', statusReason: 'test' });
  });
});
