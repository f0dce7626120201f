import { FieldPath } from '@google-cloud/firestore';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RegistryStore } from '../../functions/src/control/registry-store';
import { RunStore } from '../../functions/src/control/runs';
import { createLogger } from '../../functions/src/cli/log';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { Migration } from '../../functions/src/definitions/types';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import { assessRollback, startRollback, type RollbackContext } from '../../functions/src/rollback';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, dbl, int, map, readRawFields, str, testWire, ts } from '../support/raw-seed';
import { dumpDatabase, rawCollections } from '../support/rollback-support';

describeEmulator('rollback: restore from before-images (G4)', () => {
  const projectId = 'demo-rollback-restore';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '60', ROLLBACK_BATCH_SIZE: '40', MIGRATION_RETRY_DELAY: '5' });
  const log = createLogger({ format: 'json', write: (line) => { if (process.env.ROLLBACK_TEST_LOG) process.stderr.write(`${Date.now() % 1000000} ${line}\n`); }, minSeverity: 'INFO' });
  const lease = { ttlMs: 10_000, renewEveryMs: 3000 };
  const registry = createRegistry([tradesV2, conversationsV2]);
  const ctx: RollbackContext = { db, wire, config, paths, registry, lease, holder: 'test-host/1/rollback', log };
  const caller = { user: 'tester', identity: 'emulator', reason: 'rollback test' };
  const seeded = { docs: 240, seed: 11, now: new Date('2026-11-01T10:00:00Z') };

  beforeEach(() => resetProject(projectId));
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function migrate(migration: Migration): Promise<string> {
    const runCtx: RunnerContext = { db, wire, migration, config, paths, lease, holder: ctx.holder, log };
    const session = await startRun(runCtx, { user: 'tester', identity: 'emulator', reason: 'migrate' });
    const outcome = await session.outcome;
    expect(outcome.status).toBe('completed');
    return outcome.runId;
  }

  /** Awkward raw values on some legacy trades: the rollback must give them back bit for bit. */
  async function addAwkwardValues(): Promise<string[]> {
    const keys = (await db.collection('trades').where('creatorId', '!=', null).orderBy('creatorId').limit(5).get()).docs.map((doc) => doc.ref.path);
    await wire.commit(keys.map((key) => ({
      update: {
        name: wire.documentName(key),
        fields: {
          doubleOne: dbl(1.0),
          int64Big: int('9007199254740993'),
          'a.b': str('literal dotted name'),
          micros: ts(1700000000, 123456000),
          nested: map({ inner: map({ doubleOne: dbl(1.0) }) }),
        },
      },
      updateMask: { fieldPaths: ['doubleOne', 'int64Big', '`a.b`', 'micros', 'nested'] },
    })));
    return keys;
  }

  it('gives back every document exactly, leaves conflicts alone (force restores them), keeps unrelated app changes, and finds everything restored the second time', async () => {
    const manifest = await seedDemoData(db, seeded);
    const awkward = await addAwkwardValues();
    const originals = await rawCollections(db, wire, ['trades', 'conversations', 'users']);
    const tradesRun = await migrate(tradesV2);
    const conversationsRun = await migrate(conversationsV2);
    const migrated = await rawCollections(db, wire, ['trades', 'conversations']);

    // Which documents the migrations changed (the legacy ones) and which they left (already v2, malformed).
    const changedTrades = [...migrated].filter(([path, fields]) => path.startsWith('trades/') && canonical(fields) !== canonical(originals.get(path)!)).map(([path]) => path);
    expect(changedTrades).toHaveLength(manifest.trades.legacy);
    expect(changedTrades).toEqual(expect.arrayContaining(awkward));

    // After the migration the app edits: one trade's migrated field (a conflict), one conversation's other field (not one).
    const conflicted = changedTrades[3];
    await db.doc(conflicted).update({ skillsOffered: [{ id: 'app', name: 'App edit', level: 'expert' }] });
    const changedConversations = [...migrated].filter(([path, fields]) => path.startsWith('conversations/') && canonical(fields) !== canonical(originals.get(path)!)).map(([path]) => path);
    expect(changedConversations).toHaveLength(manifest.conversations.legacy);
    const chatty = changedConversations[0];
    await db.doc(chatty).update({ lastMessage: 'a new message after the migration' });

    // The assessment writes nothing and predicts what the rollback does.
    const before = await dumpDatabase(db, wire);
    const assessment = await assessRollback(ctx, { migrationId: tradesV2.id });
    expect(await dumpDatabase(db, wire)).toEqual(before);
    expect(assessment.strategy).toMatchObject({ chosen: 'restore', overridden: false });
    expect(assessment.runs).toEqual([{ runId: tradesRun, status: 'completed', backups: manifest.trades.legacy }]);
    expect(assessment.documents).toEqual({ total: manifest.trades.legacy, toRestore: manifest.trades.legacy - 1, alreadyRestored: 0, conflicts: 1, missingDocuments: 0, missingBackups: 0 });
    expect(assessment.conflicts).toEqual([{ path: conflicted, runId: tradesRun, reason: expect.any(String) }]);
    expect(assessment.impact.map((item) => item.name)).toEqual((tradesV2.impactQueries ?? []).map((query) => query.name));
    expect(assessment.impact.every((item) => typeof item.count === 'number')).toBe(true);
    expect(assessment.readiness.every((check) => check.ok)).toBe(true);
    expect(assessment.estimatedDurationMs).toEqual(expect.any(Number));
    expect(assessment.ready).toBe(true);

    // Reason and user are required.
    await expect(startRollback(ctx, { migrationId: tradesV2.id, force: false, reason: ' ', user: 'tester', identity: 'emulator' })).rejects.toThrow(/needs a reason/);
    await expect(startRollback(ctx, { migrationId: tradesV2.id, force: false, reason: 'why', user: '', identity: 'emulator' })).rejects.toThrow(/needs a user/);

    const session = await startRollback(ctx, { migrationId: tradesV2.id, force: false, ...caller }, { sampleAll: true });
    const outcome = await session.outcome;
    expect(outcome).toMatchObject({ status: 'completed', strategy: 'restore', error: null });
    expect(outcome.totals).toMatchObject({ restored: manifest.trades.legacy - 1, alreadyRestored: 0, conflicts: 1, forced: 0, failed: 0, missingDocuments: 0, missingBackups: 0 });
    expect(outcome.validation).toMatchObject({ ok: true, sampled: manifest.trades.legacy - 1, equal: manifest.trades.legacy - 1, mismatches: [] });
    expect(outcome.validation!.fromSchema).toMatchObject({ checked: manifest.trades.legacy - 1, passed: manifest.trades.legacy - 1 });
    expect(outcome.validation!.probes.length).toBe((tradesV2.probes ?? []).length);

    const afterTrades = await rawCollections(db, wire, ['trades']);
    for (const [path, fields] of afterTrades) {
      if (path === conflicted) continue;
      // Field by field on raw values: changed documents are back, untouched ones (v2 already, malformed) were never written.
      expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path)!) });
    }
    const awkwardBack = await readRawFields(wire, awkward[0]);
    expect(awkwardBack.doubleOne).toMatchObject({ doubleValue: 1, valueType: 'doubleValue' });
    expect(awkwardBack.int64Big).toMatchObject({ integerValue: '9007199254740993' });
    expect(awkwardBack['a.b']).toMatchObject({ stringValue: 'literal dotted name' });
    expect(awkwardBack.micros.timestampValue).toMatchObject({ nanos: 123456000 });
    expect(awkwardBack).not.toHaveProperty('schemaVersion');
    expect(awkwardBack).not.toHaveProperty('skillsOffered');
    // The conflict is untouched: still the app's edit and the migration's other fields.
    expect(canonical(afterTrades.get(conflicted)!)).not.toBe(canonical(originals.get(conflicted)!));
    expect((await db.doc(conflicted).get()).get('skillsOffered')).toEqual([{ id: 'app', name: 'App edit', level: 'expert' }]);

    // Runs, registry, run document and audit trail.
    const runs = new RunStore(db, paths);
    expect((await runs.get(tradesV2.id, tradesRun)).status).toBe('rolled_back');
    expect((await new RegistryStore(db, paths).get(tradesV2.id))?.status).toBe('rolled_back');
    const rollbackRun = (await runs.get(tradesV2.id, outcome.runId)) as unknown as Record<string, unknown> & { rollback: Record<string, unknown> };
    expect(rollbackRun).toMatchObject({ kind: 'rollback', mode: 'execute', status: 'completed', user: 'tester', identity: 'emulator', reason: 'rollback test', lease: null });
    expect(rollbackRun.rollback).toMatchObject({ strategy: 'restore', force: false, sourceRuns: [tradesRun], rollbackTotals: { conflicts: 1 }, validation: { ok: true } });
    const events = await new AuditLog(db, paths).forRun(outcome.runId);
    expect(events.map((event) => event.action)).toEqual(['rollback.started', 'mode.changed', 'mode.changed', 'rollback.completed']);
    expect(events[0]).toMatchObject({ user: 'tester', identity: 'emulator', reason: 'rollback test' });

    // The conversation with a new message is restored with the message kept.
    const conversations = await startRollback(ctx, { migrationId: conversationsV2.id, force: false, ...caller }, { sampleAll: true });
    const conversationsOutcome = await conversations.outcome;
    expect(conversationsOutcome.totals).toMatchObject({ restored: manifest.conversations.legacy, conflicts: 0 });
    expect((await runs.get(conversationsV2.id, conversationsRun)).status).toBe('rolled_back');
    const afterConversations = await rawCollections(db, wire, ['conversations']);
    for (const [path, fields] of afterConversations) {
      if (path === chatty) {
        const { lastMessage, ...rest } = fields;
        const { lastMessage: _original, ...originalRest } = originals.get(path)!;
        expect(lastMessage).toMatchObject({ stringValue: 'a new message after the migration' });
        expect(canonical(rest)).toBe(canonical(originalRest));
      } else {
        expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path)!) });
      }
    }

    // Again: everything restored except the conflict, still a conflict; forced, it comes back too.
    const again = await (await startRollback(ctx, { migrationId: tradesV2.id, force: false, ...caller }, { sampleAll: true })).outcome;
    expect(again.totals).toMatchObject({ restored: 0, alreadyRestored: manifest.trades.legacy - 1, conflicts: 1 });
    const forced = await (await startRollback(ctx, { migrationId: tradesV2.id, force: true, ...caller }, { sampleAll: true })).outcome;
    expect(forced.totals).toMatchObject({ restored: 1, forced: 1, alreadyRestored: manifest.trades.legacy - 1, conflicts: 0 });
    expect(forced.validation).toMatchObject({ ok: true, sampled: manifest.trades.legacy });
    const final = await rawCollections(db, wire, ['trades']);
    for (const [path, fields] of final) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path)!) });
    const third = await (await startRollback(ctx, { migrationId: tradesV2.id, force: false, ...caller })).outcome;
    expect(third.totals).toMatchObject({ restored: 0, alreadyRestored: manifest.trades.legacy, conflicts: 0 });
  });

  it('rolls back two runs of one migration (newest first) to the originals, and judges a document both runs migrated correctly', async () => {
    const manifest = await seedDemoData(db, seeded);
    const originals = await rawCollections(db, wire, ['trades']);
    const first = await migrate(tradesV2);
    // Between the runs: a legacy client creates new trades, and rewrites a migrated one in the old shape.
    const firstRunTrades = [...(await rawCollections(db, wire, ['trades']))].filter(([path, fields]) => canonical(fields) !== canonical(originals.get(path)!)).map(([path]) => path);
    const rewritten = firstRunTrades[0];
    const legacyWrite = { ...(await db.doc(rewritten).get()).data() };
    for (const field of ['skillsOffered', 'skillsWanted', 'participants', 'schemaVersion']) delete legacyWrite[field];
    legacyWrite.title = 'rewritten by a legacy client';
    await db.doc(rewritten).set(legacyWrite);
    for (let i = 0; i < 7; i++) {
      const legacy = { ...(await db.doc(firstRunTrades[i + 1]).get()).data() };
      for (const field of ['skillsOffered', 'skillsWanted', 'participants', 'schemaVersion']) delete legacy[field];
      await db.collection('trades').doc(`late-${i}`).set({ ...legacy, title: `late ${i}` });
    }
    const beforeSecond = await rawCollections(db, wire, ['trades']);
    const second = await migrate(tradesV2);

    const assessment = await assessRollback(ctx, { migrationId: tradesV2.id });
    expect(assessment.runs.map((run) => run.runId)).toEqual([second, first]);
    expect(assessment.runs.map((run) => run.backups)).toEqual([8, manifest.trades.legacy]);
    // The rewritten trade: restored by the second run's image; the first run's image then finds it restored.
    expect(assessment.documents).toMatchObject({ total: manifest.trades.legacy + 8, toRestore: manifest.trades.legacy + 7, alreadyRestored: 1, conflicts: 0 });

    const outcome = await (await startRollback(ctx, { migrationId: tradesV2.id, force: false, ...caller }, { sampleAll: true })).outcome;
    expect(outcome).toMatchObject({ status: 'completed' });
    expect(outcome.totals).toMatchObject({ restored: manifest.trades.legacy + 7, alreadyRestored: 1, conflicts: 0, failed: 0 });
    expect(outcome.validation).toMatchObject({ ok: true, mismatches: [] });
    const after = await rawCollections(db, wire, ['trades']);
    expect(after.size).toBe(originals.size + 7);
    for (const [path, fields] of after) {
      // Each document holds its state before the run that first changed it; the rewritten one, the app's legacy write.
      const expected = path.startsWith('trades/late-') || path === rewritten ? beforeSecond.get(path)! : originals.get(path)!;
      expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(expected) });
    }
    expect((await readRawFields(wire, rewritten)).title).toMatchObject({ stringValue: 'rewritten by a legacy client' });
    const runs = new RunStore(db, paths);
    expect((await runs.get(tradesV2.id, first)).status).toBe('rolled_back');
    expect((await runs.get(tradesV2.id, second)).status).toBe('rolled_back');
    const markers = await db.collection(paths.batches(tradesV2.id, outcome.runId)).orderBy(FieldPath.documentId()).get();
    // Newest run first: its single batch is committed before the first run's batches (commit times).
    const secondMarker = markers.docs.find((doc) => doc.id.startsWith(second))!;
    const firstMarkers = markers.docs.filter((doc) => doc.id.startsWith(first));
    expect(firstMarkers.length).toBe(Math.ceil(manifest.trades.legacy / 40));
    expect(firstMarkers.every((doc) => doc.updateTime.toMillis() >= secondMarker.updateTime.toMillis())).toBe(true);
  });

  it('rolls back a run stopped part-way (as by SIGTERM): exactly the documents it changed', async () => {
    await seedDemoData(db, seeded);
    const originals = await rawCollections(db, wire, ['trades']);
    const session = await startRun({ db, wire, migration: tradesV2, config, paths, lease, holder: ctx.holder, log }, { user: 'tester', identity: 'emulator', reason: 'migrate' });
    while (session.progress().migrated === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    session.stop('SIGTERM');
    const stopped = await session.outcome;
    expect(stopped.status).toBe('paused');
    const changed = [...(await rawCollections(db, wire, ['trades']))].filter(([path, fields]) => canonical(fields) !== canonical(originals.get(path)!)).length;
    expect(changed).toBe(stopped.totals!.migrated);

    const outcome = await (await startRollback(ctx, { migrationId: tradesV2.id, runId: session.runId, force: false, ...caller }, { sampleAll: true })).outcome;
    expect(outcome).toMatchObject({ status: 'completed' });
    expect(outcome.totals).toMatchObject({ restored: changed, alreadyRestored: 0, conflicts: 0 });
    for (const [path, fields] of await rawCollections(db, wire, ['trades'])) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path)!) });
    expect((await new RunStore(db, paths).get(tradesV2.id, session.runId)).status).toBe('rolled_back');
  });

  it('restores 10,000 migrated trades exactly: every document equals its original at the Firestore value level', async () => {
    // Bigger batches than the other tests: the figure under test is exactness at size, not batching.
    const sized = emulatorConfig({ MIGRATION_BATCH_SIZE: '200', ROLLBACK_BATCH_SIZE: '200' });
    const manifest = await seedDemoData(db, { ...seeded, docs: 10_000 });
    const awkward = await addAwkwardValues();
    const originals = await rawCollections(db, wire, ['trades']);
    const session = await startRun({ db, wire, migration: tradesV2, config: sized, paths, lease, holder: ctx.holder, log }, { user: 'tester', identity: 'emulator', reason: 'migrate 10k' });
    expect((await session.outcome).status).toBe('completed');
    const migrated = await rawCollections(db, wire, ['trades']);
    const changed = [...migrated].filter(([path, fields]) => canonical(fields) !== canonical(originals.get(path)!)).map(([path]) => path);
    expect(changed).toHaveLength(manifest.trades.legacy);
    expect(changed).toEqual(expect.arrayContaining(awkward));

    const rollback = await startRollback({ ...ctx, config: sized }, { migrationId: tradesV2.id, force: false, reason: 'restore 10k', user: 'tester', identity: 'emulator' }, { sampleAll: true });
    const outcome = await rollback.outcome;
    expect(outcome).toMatchObject({
      status: 'completed',
      totals: { restored: manifest.trades.legacy, alreadyRestored: 0, conflicts: 0, failed: 0, missingDocuments: 0, missingBackups: 0 },
      validation: { ok: true, sampled: manifest.trades.legacy, mismatches: [] },
    });
    const restored = await rawCollections(db, wire, ['trades']);
    expect([...restored.keys()]).toEqual([...originals.keys()]);
    const differing = [...originals].filter(([path, fields]) => canonical(restored.get(path)!) !== canonical(fields)).map(([path]) => path);
    expect(differing).toEqual([]);
  }, 300_000);
});
