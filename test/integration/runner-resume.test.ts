import { FieldPath, Timestamp } from '@google-cloud/firestore';
import { AuditLog } from '../../functions/src/control/audit';
import { PartitionStore, newPartitionDocument, type PartitionDocument } from '../../functions/src/control/partitions';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RegistryEntry } from '../../functions/src/control/registry-store';
import { RunStore, newRunDocument, type RunDocument } from '../../functions/src/control/runs';
import { createLogger } from '../../functions/src/cli/log';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { migrateBatch } from '../../functions/src/engine/batch-core';
import { documentsPerCommit } from '../../functions/src/engine/batch-size';
import { ResumeRefusedError, resumeRun, startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { WireClient } from '../../functions/src/engine/wire/client';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { expectDemoTradesMigratedOnce } from '../support/demo-trades';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

describeEmulator('runner: resume after a crash and after a stop', () => {
  const projectId = 'demo-runner-resume';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '40', MIGRATION_CONCURRENT_BATCHES: '3', MIGRATION_CONNECTION_POOL_SIZE: '6' });
  const perBatch = documentsPerCommit(config.migration);
  const logLines: string[] = [];
  const ctx: RunnerContext = {
    db,
    wire,
    migration: tradesV2,
    config,
    paths,
    lease: { ttlMs: 3000, renewEveryMs: 1000 },
    holder: 'test-host/1/resumer',
    log: createLogger({ format: 'json', write: (line) => logLines.push(line), minSeverity: 'DEBUG' }),
  };
  const caller = { user: 'tester', identity: 'emulator', reason: 'resume test' };
  const seeded = { docs: 600, seed: 7, now: new Date('2026-11-01T10:00:00Z') };
  const runs = new RunStore(db, paths);
  const partitions = new PartitionStore(db, paths);

  beforeEach(async () => {
    await resetProject(projectId);
    logLines.length = 0;
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function tradeKeys(): Promise<string[]> {
    const snapshot = await db.collection('trades').select().orderBy(FieldPath.documentId()).get();
    return snapshot.docs.map((doc) => doc.ref.path);
  }

  /** A run left `running` by a process that died: its lease expired a second ago. */
  async function seedCrashedRun(runId: string, parts: PartitionDocument[]): Promise<void> {
    const now = Timestamp.now();
    const lease = { holder: 'dead-host/1/abc', expiresAt: Timestamp.fromMillis(now.toMillis() - 1000) };
    const run: RunDocument = {
      ...newRunDocument({ runId, migrationId: tradesV2.id, kind: 'migrate', mode: 'execute', user: 'ops', identity: 'emulator', reason: null, checksum: tradesV2.checksum, config, lease }),
      status: 'running',
      partitionCount: parts.length,
      partitionMethod: 'key-scan',
      startedAt: now,
    };
    const entry: RegistryEntry = {
      id: tradesV2.id, version: tradesV2.version, checksum: tradesV2.checksum, status: 'running', lastRunId: runId,
      appliedAt: null, appliedBy: null, updatedAt: now, activeRunId: runId, lease,
    };
    await db.doc(paths.run(tradesV2.id, runId)).set(run);
    await db.doc(paths.migration(tradesV2.id)).set(entry);
    await partitions.createAll(tradesV2.id, runId, parts);
  }

  const batchContext = (runId: string) => ({ db, wire, migration: tradesV2, config, paths, runId });

  it('after out-of-order commits (seq 0..3 and 5 landed, 4 not) migrates every document exactly once', async () => {
    await seedDemoData(db, seeded);
    const keys = await tradeKeys();
    expect(perBatch).toBe(40);
    const runId = 'crashed-run';
    const split = keys[300];
    // p0000 crashed before it ever reserved seqs; p0001 had reserved seqs up to 64.
    const p0 = { ...newPartitionDocument(0, { startAt: null, endBefore: split }), status: 'running' as const };
    const p1 = { ...newPartitionDocument(1, { startAt: split, endBefore: null }), status: 'running' as const, nextSeq: 64 };
    await seedCrashedRun(runId, [p0, p1]);
    const batchOf = (offset: number, seq: number) => keys.slice(offset + seq * perBatch, offset + (seq + 1) * perBatch);
    for (const seq of [0, 1, 2, 3, 5]) {
      const result = await migrateBatch(batchContext(runId), { partition: 'p0000', seq, keys: batchOf(0, seq) });
      expect(result.status).toBe('committed');
    }
    // p0001: seq 1 landed, seq 0 did not.
    await migrateBatch(batchContext(runId), { partition: 'p0001', seq: 1, keys: batchOf(300, 1) });

    const session = await resumeRun(ctx, runId, caller);
    expect(session.resumed).toBe(true);
    const outcome = await session.outcome;
    expect(outcome.error).toBeNull();
    expect(outcome.status).toBe('completed');

    await expectDemoTradesMigratedOnce(db, seeded, [runId]);

    const [after0, after1] = await partitions.list(tradesV2.id, runId);
    expect(after0).toMatchObject({ partition: 'p0000', status: 'exhausted', epoch: 1, resumeFromSeq: 6, cursor: keys[4 * perBatch - 1] });
    expect(after1).toMatchObject({ partition: 'p0001', status: 'exhausted', epoch: 1, resumeFromSeq: 64, cursor: null });

    // The new epoch read on after seq 3's last key; seq 5's documents came back already migrated.
    const markers = db.collection(paths.batches(tradesV2.id, runId));
    const p0Markers = (await markers.where(FieldPath.documentId(), '>=', 'p0000-').where(FieldPath.documentId(), '<', 'p0001-').get()).docs.map((doc) => doc.id);
    expect(p0Markers).toEqual(['p0000-00000000', 'p0000-00000001', 'p0000-00000002', 'p0000-00000003', 'p0000-00000005', 'p0000-00000006', 'p0000-00000007', 'p0000-00000008', 'p0000-00000009']);
    const seq6 = (await markers.doc('p0000-00000006').get()).data()!;
    expect(seq6).toMatchObject({ firstKey: keys[160], lastKey: keys[199] });
    const seq7 = (await markers.doc('p0000-00000007').get()).data()!;
    expect(seq7).toMatchObject({ firstKey: keys[200], lastKey: keys[239], migrated: 0 });
    expect(seq7.alreadyMigrated + seq7.failed + seq7.skipped).toBe(40);
    expect((await markers.doc('p0001-00000064').get()).data()).toMatchObject({ firstKey: keys[300], lastKey: keys[339] });

    const run = await runs.get(tradesV2.id, runId);
    expect(run).toMatchObject({ status: 'completed', resumes: 1, lease: null, statusReason: null });
    expect(run.finishedAt).not.toBeNull();
    const entry = (await db.doc(paths.migration(tradesV2.id)).get()).data()!;
    expect(entry).toMatchObject({ status: 'applied', activeRunId: null, lease: null, appliedBy: 'tester', checksum: tradesV2.checksum, lastRunId: runId });

    const events = await new AuditLog(db, paths).forRun(runId);
    expect(events.map((event) => event.action)).toEqual(['run.resumed', 'run.completed']);
    expect(events[0]).toMatchObject({
      user: 'tester',
      identity: 'emulator',
      reason: 'resume test',
      details: { previousStatus: 'running', takenOverFrom: { runId, holder: 'dead-host/1/abc' }, holder: 'test-host/1/resumer' },
    });
    expect(logLines.some((line) => JSON.parse(line).message.includes('partition p0000: 1 batches had committed after a gap'))).toBe(true);
  });

  it('pauses on stop with the batches in flight settled, and the resumed run completes exactly once', async () => {
    await seedDemoData(db, { ...seeded, docs: 2400 });
    const small = { ...ctx, config: { ...config, migration: { ...config.migration, batchSize: 20, checkpointInterval: 100 } } };
    const session = await startRun(small, caller);
    // Every 100 documents the live counters are summarised into the run document.
    let checkpointed = (await runs.get(tradesV2.id, session.runId)).totals!;
    let ended: { status: string; statusReason?: string | null } | undefined;
    void session.outcome.then((outcome) => (ended = outcome));
    while (checkpointed.batches === 0) {
      // A run that ended before its first checkpoint would leave this loop waiting forever: say how it ended.
      if (ended) throw new Error(`the run ended before its first checkpoint: ${ended.status} (${ended.statusReason ?? 'no reason'})`);
      await new Promise((resolve) => setTimeout(resolve, 20));
      checkpointed = (await runs.get(tradesV2.id, session.runId)).totals!;
    }
    expect(checkpointed.migrated + checkpointed.alreadyMigrated + checkpointed.failed + checkpointed.skipped).toBeGreaterThanOrEqual(100);
    expect(checkpointed.targetDocuments).toBe(2400);
    session.stop('test stop');
    const paused = await session.outcome;
    expect(paused.status).toBe('paused');
    expect(session.progress().inFlight).toBe(0);
    const pausedRun = await runs.get(tradesV2.id, session.runId);
    expect(pausedRun).toMatchObject({ status: 'paused', statusReason: 'test stop', lease: null, finishedAt: null });
    expect(pausedRun.totals!.migrated).toBe(paused.totals!.migrated);
    expect(paused.totals!.migrated).toBeLessThan(2400 * 0.93);
    const entry = (await db.doc(paths.migration(tradesV2.id)).get()).data()!;
    expect(entry).toMatchObject({ status: 'running', activeRunId: null, lease: null });
    expect((await partitions.list(tradesV2.id, session.runId)).some((partition) => partition.status !== 'exhausted')).toBe(true);

    const resumed = await resumeRun(small, session.runId, caller);
    const done = await resumed.outcome;
    expect(done.status).toBe('completed');
    await expectDemoTradesMigratedOnce(db, { ...seeded, docs: 2400 }, [session.runId]);
    const events = await new AuditLog(db, paths).forRun(session.runId);
    expect(events.map((event) => event.action)).toEqual(['run.started', 'run.paused', 'run.resumed', 'run.completed']);
    expect(events[1]).toMatchObject({ details: { statusReason: 'test stop' } });
  });

  it('refuses to resume a completed run, or one started with another definition', async () => {
    await seedDemoData(db, { ...seeded, docs: 50 });
    const session = await startRun(ctx, caller);
    expect((await session.outcome).status).toBe('completed');
    await expect(resumeRun(ctx, session.runId, caller)).rejects.toThrow(ResumeRefusedError);
    await expect(resumeRun(ctx, session.runId, caller)).rejects.toThrow(/is "completed"; only "running", "paused", "emergency_stopped", "failed" runs can be resumed \(it is finished\)/);

    await seedCrashedRun('edited-run', [newPartitionDocument(0, { startAt: null, endBefore: null })]);
    await db.doc(paths.run(tradesV2.id, 'edited-run')).update({ checksum: 'f'.repeat(64) });
    await expect(resumeRun(ctx, 'edited-run', caller)).rejects.toThrow(
      `Run edited-run was started with definition checksum ${'f'.repeat(64)}, but "${tradesV2.id}" now has checksum ${tradesV2.checksum}`,
    );
    await expect(resumeRun(ctx, 'no-such-run', caller)).rejects.toThrow(/Run no-such-run of migration "tradeya-trades-v2" does not exist/);
  });
});
