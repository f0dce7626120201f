import { FieldPath, Timestamp } from '@google-cloud/firestore';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { createLogger } from '../../functions/src/cli/log';
import { createRegistry } from '../../functions/src/definitions/registry';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { startRun } from '../../functions/src/engine/runner';
import { WireClient } from '../../functions/src/engine/wire/client';
import { grpcError, Status } from '../../functions/src/engine/wire/status';
import { tradesV2 } from '../../functions/src/migrations/tradeya';
import { prepareRollbackRun, resumeRollback, rollbackBatch, startRollback, type RollbackContext } from '../../functions/src/rollback';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, testWire } from '../support/raw-seed';
import { rawCollections } from '../support/rollback-support';

describeEmulator('rollback: stop, crash and resume', () => {
  const projectId = 'demo-rollback-resume';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '60', ROLLBACK_BATCH_SIZE: '40', MIGRATION_RETRY_DELAY: '5' });
  const log = createLogger({ format: 'json', write: () => undefined, minSeverity: 'ERROR' });
  const lease = { ttlMs: 10_000, renewEveryMs: 3000 };
  const ctx: RollbackContext = { db, wire, config, paths, registry: createRegistry([tradesV2]), lease, holder: 'test-host/1/first', log };
  const caller = { user: 'tester', identity: 'emulator', reason: 'resume test' };
  const seeded = { docs: 240, seed: 5, now: new Date('2026-11-01T10:00:00Z') };

  beforeEach(() => resetProject(projectId));
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function seedAndMigrate(): Promise<{ originals: Map<string, unknown>; legacy: number; runId: string }> {
    const manifest = await seedDemoData(db, seeded);
    const originals = await rawCollections(db, wire, ['trades']);
    const session = await startRun({ db, wire, migration: tradesV2, config, paths, lease, holder: ctx.holder, log }, { user: 'tester', identity: 'emulator', reason: 'migrate' });
    expect((await session.outcome).status).toBe('completed');
    return { originals, legacy: manifest.trades.legacy, runId: session.runId };
  }

  async function expectOriginals(originals: Map<string, unknown>): Promise<void> {
    const after = await rawCollections(db, wire, ['trades']);
    expect(after.size).toBe(originals.size);
    for (const [path, fields] of after) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path) as never) });
  }

  /** The markers of a rollback run: seqs 0..n-1 of the source run, each batch starting where the previous one ended. */
  async function expectContiguousMarkers(rollbackRunId: string, sourceRunId: string, batches: number): Promise<void> {
    const markers = (await db.collection(paths.batches(tradesV2.id, rollbackRunId)).orderBy(FieldPath.documentId()).get()).docs.map((doc) => doc.data());
    expect(markers.map((marker) => marker.seq)).toEqual(Array.from({ length: batches }, (_, i) => i));
    expect(markers.every((marker) => marker.sourceRunId === sourceRunId)).toBe(true);
    markers.forEach((marker, i) => expect(marker.afterBackupId).toBe(i === 0 ? null : markers[i - 1].lastBackupId));
  }

  it('stopped after two batches, then resumed: completes exactly, no batch redone', async () => {
    const { originals, legacy, runId } = await seedAndMigrate();
    const session = await startRollback(ctx, { migrationId: tradesV2.id, force: false, ...caller }, {
      onBatch: (running, totals) => {
        if (totals.batches === 2) running.stop('operator pressed ctrl-c');
      },
    });
    const paused = await session.outcome;
    expect(paused).toMatchObject({ status: 'paused', statusReason: 'operator pressed ctrl-c' });
    // The batches in flight when it stopped (MIGRATION_CONCURRENT_BATCHES) settle too.
    const stoppedAfter = paused.totals!.batches;
    expect(stoppedAfter).toBeGreaterThanOrEqual(2);
    expect(stoppedAfter).toBeLessThan(Math.ceil(legacy / 40));
    expect(paused.totals).toMatchObject({ restored: 40 * stoppedAfter, alreadyRestored: 0 });
    const run = (await db.doc(paths.run(tradesV2.id, session.runId)).get()).data()!;
    expect(run).toMatchObject({ status: 'paused', lease: null, statusReason: 'operator pressed ctrl-c' });
    expect((await db.doc(paths.migration(tradesV2.id)).get()).get('activeRunId')).toBeNull();

    const resumed = await (await resumeRollback(ctx, session.runId, { ...caller, reason: 'continue' }, { sampleAll: true })).outcome;
    expect(resumed).toMatchObject({ status: 'completed', runId: session.runId });
    // Every document restored exactly once: none read again as already restored.
    expect(resumed.totals).toMatchObject({ restored: legacy, alreadyRestored: 0, conflicts: 0, failed: 0, batches: Math.ceil(legacy / 40) });
    expect(resumed.validation).toMatchObject({ ok: true, sampled: legacy });
    await expectContiguousMarkers(session.runId, runId, Math.ceil(legacy / 40));
    await expectOriginals(originals);
    const events = (await new AuditLog(db, paths).forRun(session.runId)).filter((event) => event.action.startsWith('rollback.'));
    expect(events.map((event) => [event.action, event.reason])).toEqual([
      ['rollback.started', 'resume test'],
      ['rollback.paused', 'resume test'],
      ['rollback.resumed', 'continue'],
      ['rollback.completed', 'continue'],
    ]);
  });

  it('a holder that died after two task batches: another process resumes after its lease expired and completes exactly', async () => {
    const { originals, legacy, runId } = await seedAndMigrate();
    const prepared = await prepareRollbackRun({ ...ctx, holder: 'dead-host/1/abc' }, { migrationId: tradesV2.id, force: false, ...caller });
    // Two batches as Cloud Tasks would run them, the second delivered twice.
    const first = await rollbackBatch(ctx, { rollbackRunId: prepared.runId, migrationId: tradesV2.id, sourceRunId: runId, seq: 0, afterBackupId: null, force: false });
    expect(first).toMatchObject({ status: 'committed', done: false, totals: { restored: 40 } });
    const second = await rollbackBatch(ctx, { rollbackRunId: prepared.runId, migrationId: tradesV2.id, sourceRunId: runId, seq: 1, afterBackupId: first.lastBackupId, force: false });
    const duplicate = await rollbackBatch(ctx, { rollbackRunId: prepared.runId, migrationId: tradesV2.id, sourceRunId: runId, seq: 1, afterBackupId: first.lastBackupId, force: false });
    expect(second).toMatchObject({ status: 'committed', totals: { restored: 40 } });
    expect(duplicate).toMatchObject({ status: 'duplicate', lastBackupId: second.lastBackupId, totals: { restored: 40 } });
    // The holder dies: its lease runs out.
    const expired = { holder: 'dead-host/1/abc', expiresAt: Timestamp.fromMillis(Date.now() - 1000) };
    await db.doc(paths.migration(tradesV2.id)).update({ lease: expired });

    const resumed = await (await resumeRollback({ ...ctx, holder: 'test-host/2/second' }, prepared.runId, caller, { sampleAll: true })).outcome;
    expect(resumed).toMatchObject({ status: 'completed' });
    expect(resumed.totals).toMatchObject({ restored: legacy, alreadyRestored: 0, batches: Math.ceil(legacy / 40) });
    await expectContiguousMarkers(prepared.runId, runId, Math.ceil(legacy / 40));
    await expectOriginals(originals);
  });

  it('a restore commit that landed but reported failure is counted as restored, not as a conflict', async () => {
    const { runId } = await seedAndMigrate();
    const prepared = await prepareRollbackRun(ctx, { migrationId: tradesV2.id, force: false, ...caller });
    // The real client, whose first commit lands and then reports a dropped connection (as after a network cut).
    let failures = 0;
    const landedButFailed = Object.create(wire) as WireClient;
    landedButFailed.commit = async (writes, options) => {
      const result = await wire.commit(writes, options);
      if (failures++ === 0) throw grpcError(Status.UNAVAILABLE, 'connection reset after the commit landed');
      return result;
    };
    const result = await rollbackBatch({ ...ctx, wire: landedButFailed }, { rollbackRunId: prepared.runId, migrationId: tradesV2.id, sourceRunId: runId, seq: 0, afterBackupId: null, force: false });
    expect(failures).toBe(1);
    expect(result).toMatchObject({ status: 'committed', totals: { restored: 40, conflicts: 0, alreadyRestored: 0 }, transientRetries: 1 });
    const marker = (await db.doc(`${paths.batches(tradesV2.id, prepared.runId)}/${runId}-00000000`).get()).data()!;
    expect(marker).toMatchObject({ restored: 40, conflicts: 0, alreadyRestored: 0 });
  });

  /** The real client with every commit held back `ms` (a slow backend), so deadlines and checks fall mid-rollback. */
  function slowWire(ms: number): WireClient {
    const slow = Object.create(wire) as WireClient;
    slow.commit = async (writes, options) => {
      await new Promise((resolve) => setTimeout(resolve, ms));
      return wire.commit(writes, options);
    };
    return slow;
  }

  it('stops resumable at ROLLBACK_TIMEOUT with the reason recorded, and a resume finishes the job', async () => {
    const { originals, legacy } = await seedAndMigrate();
    const timed = emulatorConfig({ ROLLBACK_BATCH_SIZE: '40', ROLLBACK_TIMEOUT: '1000', MIGRATION_CONCURRENT_BATCHES: '1' });
    const outcome = await (await startRollback({ ...ctx, config: timed, wire: slowWire(400) }, { migrationId: tradesV2.id, force: false, ...caller })).outcome;
    expect(outcome.status).toBe('paused');
    expect(outcome.statusReason).toMatch(/ROLLBACK_TIMEOUT \(1000 ms\) passed/);
    expect(outcome.totals!.restored).toBeLessThan(legacy);
    expect((await db.doc(paths.run(tradesV2.id, outcome.runId)).get()).get('statusReason')).toMatch(/ROLLBACK_TIMEOUT/);
    const resumed = await (await resumeRollback(ctx, outcome.runId, caller)).outcome;
    expect(resumed.totals).toMatchObject({ restored: legacy, alreadyRestored: 0 });
    await expectOriginals(originals);
  });

  it('notices at ROLLBACK_SAFETY_INTERVAL that another process paused the rollback run, keeps that status and releases the lease', async () => {
    await seedAndMigrate();
    const checked = emulatorConfig({ ROLLBACK_BATCH_SIZE: '40', ROLLBACK_SAFETY_INTERVAL: '1000', MIGRATION_CONCURRENT_BATCHES: '1' });
    let paused = false;
    const session = await startRollback({ ...ctx, config: checked, wire: slowWire(300) }, { migrationId: tradesV2.id, force: false, ...caller }, {
      onBatch: (running) => {
        if (paused) return;
        paused = true;
        void db.doc(paths.run(tradesV2.id, running.runId)).update({ status: 'paused', statusReason: 'paused from the API' });
      },
    });
    const outcome = await session.outcome;
    expect(outcome).toMatchObject({ status: 'paused', statusReason: 'paused from the API' });
    const run = (await db.doc(paths.run(tradesV2.id, session.runId)).get()).data()!;
    expect(run).toMatchObject({ status: 'paused', statusReason: 'paused from the API', lease: null });
    expect((await db.doc(paths.migration(tradesV2.id)).get()).get('activeRunId')).toBeNull();
  });

  it('stops as emergency_stopped when the failure rate passes ROLLBACK_EMERGENCY_THRESHOLD', async () => {
    const { runId } = await seedAndMigrate();
    const strict = emulatorConfig({ ROLLBACK_BATCH_SIZE: '40', ROLLBACK_EMERGENCY_THRESHOLD: '0.1', MIGRATION_CONCURRENT_BATCHES: '1' });
    let deleted = false;
    const session = await startRollback({ ...ctx, config: strict }, { migrationId: tradesV2.id, force: false, ...caller }, {
      onBatch: () => {
        if (deleted) return;
        deleted = true;
        // The before-images not restored yet vanish (the key stream, a snapshot, still lists them): every later document fails.
        void (async () => {
          const rest = await db.collection(paths.backups(tradesV2.id, runId)).orderBy(FieldPath.documentId()).offset(80).get();
          const writer = db.batch();
          rest.docs.forEach((doc) => writer.delete(doc.ref));
          await writer.commit();
        })();
      },
    });
    const outcome = await session.outcome;
    expect(outcome.status).toBe('emergency_stopped');
    expect(outcome.statusReason).toMatch(/ROLLBACK_EMERGENCY_THRESHOLD/);
    expect(outcome.totals!.missingBackups).toBeGreaterThan(0);
    expect((await db.doc(paths.run(tradesV2.id, session.runId)).get()).get('status')).toBe('emergency_stopped');
    const events = (await new AuditLog(db, paths).forRun(session.runId)).filter((event) => event.action.startsWith('rollback.'));
    expect(events.map((event) => event.action)).toEqual(['rollback.started', 'rollback.stopped']);
  });
});
