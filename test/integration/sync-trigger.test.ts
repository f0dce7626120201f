import { FieldValue, Timestamp, type DocumentSnapshot } from '@google-cloud/firestore';
import { CLEANUP_MARKER_FIELD } from '../../functions/src/cleanup/cleanup-migration';
import { modeForMigrateRun } from '../../functions/src/compat/mode-policy';
import { setMode } from '../../functions/src/compat/modes';
import { handleSyncWrite, syncPartition, syncRunId, SYNC_USER, type SyncContext } from '../../functions/src/compat/sync-trigger';
import { ControlPaths, MODE_DOCUMENT_PATH } from '../../functions/src/control/paths';
import type { RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import { batchMarkerId, failureId } from '../../functions/src/engine/batch-core';
import { backupId, readBackup, type BackupRecord } from '../../functions/src/engine/before-image';
import { canonicalValue } from '../../functions/src/engine/wire/canonical';
import type { RunLog } from '../../functions/src/engine/runner';
import { WireClient } from '../../functions/src/engine/wire/client';
import { projectMigrations } from '../../functions/src/migrations';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import { startRollback, type RollbackContext } from '../../functions/src/rollback';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, readRawFields, str } from '../support/raw-seed';

const quiet: RunLog = { debug: () => undefined, info: () => undefined, warning: () => undefined, error: () => undefined };

const CREATED = Timestamp.fromMillis(Date.UTC(2026, 10, 1, 9, 30));
const legacyTrade = {
  title: 'Guitar lessons for a logo',
  status: 'open',
  creatorId: 'alice',
  participantId: null,
  offeredSkills: ['guitar', { name: 'Web Design & UX', level: ' Expert' }],
  requestedSkills: [{ id: 'logo', name: 'Logo design', category: 'design' }],
  createdAt: CREATED,
  appField: { keep: true },
};
const upgradedFields = {
  skillsOffered: [
    { id: 'guitar', name: 'guitar', level: 'intermediate' },
    { id: 'web-design-ux', name: 'Web Design & UX', level: 'expert' },
  ],
  skillsWanted: [{ id: 'logo', name: 'Logo design', level: 'intermediate', category: 'design' }],
  participants: { creator: 'alice', participant: null },
  schemaVersion: '2.0',
};

describeEmulator('dual-read sync trigger: legacy writes brought to the new shape through the batch applier', () => {
  const projectId = 'demo-sync-trigger';
  const db = testFirestore(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_RETRY_DELAY: '5' });
  const wire = WireClient.forFirestore(db);
  const ctx: SyncContext = { db, wire, config, paths, registry: createRegistry(projectMigrations), log: quiet };
  const caller = { user: 'ops', identity: 'emulator' };

  beforeEach(() => resetProject(projectId));
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  const read = (path: string) => db.doc(path).get();
  /** A write event as firebase-functions delivers it: the document before (not existing for a create) and after the write. */
  const event = (id: string, after: DocumentSnapshot, before?: DocumentSnapshot) => ({ id, document: after.ref.path, before, after });
  /** Every document under the control collection and the mode document: what the trigger may have written. */
  async function controlDocuments(): Promise<string[]> {
    const found: string[] = [];
    const walk = async (collections: FirebaseFirestore.CollectionReference[]) => {
      for (const collection of collections) {
        for (const ref of await collection.listDocuments()) {
          if ((await ref.get()).exists) found.push(ref.path);
          await walk(await ref.listCollections());
        }
      }
    };
    await walk([db.collection(paths.root), db.collection(MODE_DOCUMENT_PATH.split('/')[0])]);
    return found.sort();
  }
  async function backupOf(runId: string, path: string): Promise<BackupRecord | null> {
    const [backup] = await wire.batchGet([`${paths.backups(tradesV2.id, runId)}/${backupId(path)}`]);
    return backup.exists ? readBackup(backup.fields) : null;
  }
  /** An old client's update of `path` and the event it raises: the document before and after it. */
  async function legacyWrite(path: string, id: string, changes: Record<string, unknown>) {
    const before = await read(path);
    await db.doc(path).update(changes);
    return event(id, await read(path), before);
  }
  async function dualRead(): Promise<string> {
    await modeForMigrateRun(db, paths, { migration: tradesV2, runId: 'run-main', ...caller });
    const mode = (await read(MODE_DOCUMENT_PATH)).data()!;
    return syncRunId({ changedAt: mode.changedAt as Timestamp });
  }

  it('upgrades a document a legacy client creates, with its before-image, in the sync run; the next event (its own write) writes nothing', async () => {
    const runId = await dualRead();
    await db.doc('trades/t1').set(legacyTrade);
    const created = await read('trades/t1');

    const outcome = await handleSyncWrite(ctx, event('event-1', created));
    expect(outcome).toMatchObject({ action: 'applied', migrationId: tradesV2.id, runId, batch: { status: 'committed', migrated: 1, failed: 0 } });

    const upgraded = await read('trades/t1');
    const data = upgraded.data()!;
    // Field by field: the legacy fields and the app's own field untouched, the v2 fields derived from them.
    expect(Object.keys(data).sort()).toEqual([...Object.keys(legacyTrade), ...Object.keys(upgradedFields)].sort());
    for (const [field, value] of Object.entries(legacyTrade)) expect([field, data[field]]).toEqual([field, value]);
    for (const [field, value] of Object.entries(upgradedFields)) expect([field, data[field]]).toEqual([field, value]);

    // The before-image: the new fields were absent, nothing else changed.
    const [backup] = await wire.batchGet([`${paths.backups(tradesV2.id, runId)}/${backupId('trades/t1')}`]);
    expect(backup.exists).toBe(true);
    const record = readBackup(backup.exists ? backup.fields : {});
    expect(record).toMatchObject({ path: 'trades/t1', migrationId: tradesV2.id, runId });
    expect(record.image.mode).toBe('patch');
    expect(record.image.values).toEqual({});
    expect([...record.image.absent].sort()).toEqual(['participants', 'schemaVersion', 'skillsOffered', 'skillsWanted']);
    expect(record.beforeUpdateTime).toEqual({ seconds: String(created.updateTime!.seconds), nanos: created.updateTime!.nanoseconds });

    // The sync run: an executed migrate run, so the rollback engine covers its before-images.
    const run = (await read(paths.run(tradesV2.id, runId))).data() as RunDocument & { sync: boolean };
    expect(run).toMatchObject({ runId, migrationId: tradesV2.id, kind: 'migrate', mode: 'execute', status: 'completed', user: SYNC_USER, sync: true, checksum: tradesV2.checksum });
    const marker = (await read(`${paths.batches(tradesV2.id, runId)}/${batchMarkerId(syncPartition('event-1'), 0)}`)).data();
    expect(marker).toMatchObject({ migrated: 1, firstKey: 'trades/t1', lastKey: 'trades/t1' });

    // The event the trigger's own write raises: already at the target version, nothing written.
    const controlBefore = await controlDocuments();
    const echo = await handleSyncWrite(ctx, event('event-2', upgraded, created));
    expect(echo).toEqual({ action: 'already-at-target', migrationId: tradesV2.id });
    expect((await read('trades/t1')).updateTime!.isEqual(upgraded.updateTime!)).toBe(true);
    expect(await controlDocuments()).toEqual(controlBefore);
  });

  it('a redelivered event is a no-op: its batch marker exists', async () => {
    const runId = await dualRead();
    await db.doc('trades/t2').set(legacyTrade);
    const created = await read('trades/t2');
    await handleSyncWrite(ctx, event('event-r', created));
    const afterFirst = await read('trades/t2');
    const controlBefore = await controlDocuments();

    const again = await handleSyncWrite(ctx, event('event-r', created));
    expect(again).toMatchObject({ action: 'applied', runId, batch: { status: 'duplicate', migrated: 1 } });
    expect((await read('trades/t2')).updateTime!.isEqual(afterFirst.updateTime!)).toBe(true);
    expect(await controlDocuments()).toEqual(controlBefore);
  });

  it('an edit of an already-migrated document that changes no legacy field writes nothing', async () => {
    await dualRead();
    await db.doc('trades/t3').set({ ...legacyTrade, ...upgradedFields });
    const migrated = await read('trades/t3');
    await db.doc('trades/t3').update({ title: 'Guitar lessons for two logos' });
    const edited = await read('trades/t3');
    const controlBefore = await controlDocuments();

    expect(await handleSyncWrite(ctx, event('event-e', edited, migrated))).toEqual({ action: 'already-at-target', migrationId: tradesV2.id });
    expect((await read('trades/t3')).updateTime!.isEqual(edited.updateTime!)).toBe(true);
    expect(await controlDocuments()).toEqual(controlBefore);
  });

  it('a legacy edit of a migrated trade: the new-shape fields derived again from the edited legacy fields, the stale ones in the before-image; its own write and a redelivery write nothing', async () => {
    const runId = await dualRead();
    await db.doc('trades/m1').set({ ...legacyTrade, ...upgradedFields });
    const migratedRaw = await readRawFields(wire, 'trades/m1');
    const edit = await legacyWrite('trades/m1', 'edit-1', { participantId: 'bob' });

    const outcome = await handleSyncWrite(ctx, edit);
    expect(outcome).toMatchObject({ action: 'applied', migrationId: tradesV2.id, runId, upgrade: 'legacy-edit', batch: { status: 'committed', migrated: 1, failed: 0 } });
    const rederived = await read('trades/m1');
    const data = rederived.data()!;
    const expected = { ...legacyTrade, ...upgradedFields, participantId: 'bob', participants: { creator: 'alice', participant: 'bob' } };
    expect(Object.keys(data).sort()).toEqual(Object.keys(expected).sort());
    for (const [field, value] of Object.entries(expected)) expect([field, data[field]]).toEqual([field, value]);

    // The before-image: the fields written (the one the edit affects, and the marker) as the edit left them, raw.
    const record = (await backupOf(runId, 'trades/m1'))!;
    expect(record).toMatchObject({ path: 'trades/m1', migrationId: tradesV2.id, runId });
    expect(record.image.mode).toBe('patch');
    expect(record.image.absent).toEqual([]);
    expect(Object.keys(record.image.values).sort()).toEqual(['participants', 'schemaVersion']);
    for (const [field, value] of Object.entries(record.image.values)) expect([field, canonicalValue(value)]).toEqual([field, canonicalValue(migratedRaw[field])]);
    expect(record.beforeUpdateTime).toEqual({ seconds: String(edit.after.updateTime!.seconds), nanos: edit.after.updateTime!.nanoseconds });

    // The event of the trigger's own write (no legacy field changed), then a redelivery of the edit's.
    const controlBefore = await controlDocuments();
    expect(await handleSyncWrite(ctx, event('edit-2', rederived, edit.after))).toEqual({ action: 'already-at-target', migrationId: tradesV2.id });
    expect(await handleSyncWrite(ctx, edit)).toMatchObject({ action: 'applied', upgrade: 'legacy-edit', batch: { status: 'duplicate', migrated: 1 } });
    expect((await read('trades/m1')).updateTime!.isEqual(rederived.updateTime!)).toBe(true);
    expect(await controlDocuments()).toEqual(controlBefore);
  });

  it('the cleanup removing the legacy fields (the trigger stays on while it runs) is no legacy edit: nothing written', async () => {
    await dualRead();
    await db.doc('trades/m7').set({ ...legacyTrade, ...upgradedFields });
    const controlBefore = await controlDocuments();
    const removeLegacy = Object.fromEntries(tradesV2.legacyFields!.map((field) => [field, FieldValue.delete()]));
    const cleaned = await legacyWrite('trades/m7', 'cleanup-1', { ...removeLegacy, [CLEANUP_MARKER_FIELD]: tradesV2.marker.to });

    expect(await handleSyncWrite(ctx, cleaned)).toEqual({ action: 'already-at-target', migrationId: tradesV2.id });
    const stored = await read('trades/m7');
    expect(stored.updateTime!.isEqual(cleaned.after.updateTime!)).toBe(true);
    for (const field of tradesV2.legacyFields!) expect([field, stored.get(field)]).toEqual([field, undefined]);
    expect(await controlDocuments()).toEqual(controlBefore);
  });

  it('leaves a write of both shapes as written, whether its two shapes agree or not', async () => {
    await dualRead();
    await db.doc('trades/m2').set({ ...legacyTrade, ...upgradedFields });
    const controlBefore = await controlDocuments();

    const agreeing = await legacyWrite('trades/m2', 'both-1', { participantId: 'bob', 'participants.participant': 'bob' });
    expect(await handleSyncWrite(ctx, agreeing)).toEqual({ action: 'not-rederived', migrationId: tradesV2.id, why: 'new-shape-also-written' });
    const disagreeing = await legacyWrite('trades/m2', 'both-2', { participantId: 'carol', 'participants.participant': 'dave' });
    expect(await handleSyncWrite(ctx, disagreeing)).toEqual({ action: 'not-rederived', migrationId: tradesV2.id, why: 'new-shape-also-written' });

    const stored = await read('trades/m2');
    expect(stored.updateTime!.isEqual(disagreeing.after.updateTime!)).toBe(true);
    expect(stored.get('participantId')).toBe('carol');
    expect(stored.get('participants')).toEqual({ creator: 'alice', participant: 'dave' });
    expect(await controlDocuments()).toEqual(controlBefore);
  });

  it('derives again only the new-shape fields the edit affects: a new client\'s value elsewhere stands, an edit v2 does not see writes nothing', async () => {
    const runId = await dualRead();
    await db.doc('trades/m6').set({ ...legacyTrade, ...upgradedFields });
    // A new client writes the new shape only: nothing for the trigger to do.
    const newClient = await legacyWrite('trades/m6', 'new-client', { 'participants.participant': 'dave' });
    expect(await handleSyncWrite(ctx, newClient)).toEqual({ action: 'already-at-target', migrationId: tradesV2.id });
    const controlBefore = await controlDocuments();

    // A legacy skill's key v2 does not carry over: derived again, nothing changes.
    const unseen = await legacyWrite('trades/m6', 'unseen', { offeredSkills: ['guitar', { name: 'Web Design & UX', level: ' Expert', note: 'weekends only' }] });
    expect(await handleSyncWrite(ctx, unseen)).toEqual({ action: 'not-rederived', migrationId: tradesV2.id, why: 'new-shape-in-step' });
    expect((await read('trades/m6')).updateTime!.isEqual(unseen.after.updateTime!)).toBe(true);
    expect(await controlDocuments()).toEqual(controlBefore);

    // A legacy edit of the requested skills: skillsWanted derived again, participants left to the new client.
    const wanted = await legacyWrite('trades/m6', 'wanted', { requestedSkills: [{ id: 'logo', name: 'Logo design', category: 'design', level: 'Advanced' }] });
    expect(await handleSyncWrite(ctx, wanted)).toMatchObject({ action: 'applied', upgrade: 'legacy-edit', batch: { status: 'committed', migrated: 1 } });
    const data = (await read('trades/m6')).data()!;
    const expected = {
      ...legacyTrade,
      ...upgradedFields,
      offeredSkills: ['guitar', { name: 'Web Design & UX', level: ' Expert', note: 'weekends only' }],
      requestedSkills: [{ id: 'logo', name: 'Logo design', category: 'design', level: 'Advanced' }],
      skillsWanted: [{ id: 'logo', name: 'Logo design', level: 'advanced', category: 'design' }],
      participants: { creator: 'alice', participant: 'dave' },
    };
    expect(Object.keys(data).sort()).toEqual(Object.keys(expected).sort());
    for (const [field, value] of Object.entries(expected)) expect([field, data[field]]).toEqual([field, value]);
    // The before-image holds exactly the fields written: the one derived again, and the marker.
    const image = (await backupOf(runId, 'trades/m6'))!.image;
    expect(Object.keys(image.values).sort()).toEqual(['schemaVersion', 'skillsWanted']);
  });

  it('a write since the edit: a newer new-shape value wins over the re-derive, an unrelated edit does not stop it', async () => {
    const runId = await dualRead();
    await db.doc('trades/m3').set({ ...legacyTrade, ...upgradedFields });
    await db.doc('trades/m4').set({ ...legacyTrade, ...upgradedFields });
    const overtaken = await legacyWrite('trades/m3', 'late-1', { participantId: 'bob' });
    await db.doc('trades/m3').update({ 'participants.participant': 'carol' });
    const newer = await read('trades/m3');
    const stillStale = await legacyWrite('trades/m4', 'late-2', { participantId: 'bob' });
    await db.doc('trades/m4').update({ title: 'Guitar lessons, any weekday' });

    expect(await handleSyncWrite(ctx, overtaken)).toMatchObject({ action: 'applied', upgrade: 'legacy-edit', batch: { migrated: 0, alreadyMigrated: 1 } });
    expect((await read('trades/m3')).updateTime!.isEqual(newer.updateTime!)).toBe(true);
    expect((await read('trades/m3')).get('participants')).toEqual({ creator: 'alice', participant: 'carol' });
    expect(await backupOf(runId, 'trades/m3')).toBeNull();

    expect(await handleSyncWrite(ctx, stillStale)).toMatchObject({ action: 'applied', upgrade: 'legacy-edit', batch: { migrated: 1 } });
    const m4 = (await read('trades/m4')).data()!;
    expect(m4.participants).toEqual({ creator: 'alice', participant: 'bob' });
    expect(m4.participantId).toBe('bob');
    expect(m4.title).toBe('Guitar lessons, any weekday');
  });

  it('the rollback of the sync run gives back exactly what it found, however often it wrote a document', async () => {
    const runId = await dualRead();
    // m5: migrated before dual-read began; n5: created in the legacy shape during it.
    await db.doc('trades/m5').set({ ...legacyTrade, ...upgradedFields });
    const m5Migrated = await readRawFields(wire, 'trades/m5');
    await db.doc('trades/n5').set(legacyTrade);
    const n5Created = await readRawFields(wire, 'trades/n5');
    expect(await handleSyncWrite(ctx, event('n5-create', await read('trades/n5')))).toMatchObject({ upgrade: 'legacy-shape', batch: { migrated: 1 } });
    for (const [path, id, changes] of [
      ['trades/n5', 'n5-edit-1', { participantId: 'carol' }],
      ['trades/n5', 'n5-edit-2', { creatorId: 'dave' }],
      ['trades/m5', 'm5-edit-1', { participantId: 'bob' }],
      ['trades/m5', 'm5-edit-2', { participantId: 'erin' }],
    ] as const) {
      expect([id, await handleSyncWrite(ctx, await legacyWrite(path, id, changes))]).toMatchObject([id, { upgrade: 'legacy-edit', batch: { migrated: 1 } }]);
    }
    expect((await read('trades/n5')).get('participants')).toEqual({ creator: 'dave', participant: 'carol' });
    expect((await read('trades/m5')).get('participants')).toEqual({ creator: 'alice', participant: 'erin' });
    // n5's image is still the one from before the run's first write: the v2 fields absent.
    expect([...(await backupOf(runId, 'trades/n5'))!.image.absent].sort()).toEqual(['participants', 'schemaVersion', 'skillsOffered', 'skillsWanted']);

    const rollbackCtx: RollbackContext = { db, wire, config, paths, registry: createRegistry(projectMigrations), lease: { ttlMs: 10_000, renewEveryMs: 3000 }, holder: 'test-host/1/rollback', log: quiet };
    const session = await startRollback(rollbackCtx, { migrationId: tradesV2.id, runId, force: false, reason: 'undo the sync run', ...caller }, { sampleAll: true });
    const outcome = await session.outcome;
    expect(outcome).toMatchObject({ status: 'completed', strategy: 'restore', error: null });
    expect(outcome.totals).toMatchObject({ restored: 2, alreadyRestored: 0, conflicts: 0, failed: 0, missingBackups: 0 });
    // Value level: the legacy clients' edits kept, every field the trigger wrote as it was before the run.
    expect(canonical(await readRawFields(wire, 'trades/n5'))).toBe(canonical({ ...n5Created, participantId: str('carol'), creatorId: str('dave') }));
    expect(canonical(await readRawFields(wire, 'trades/m5'))).toBe(canonical({ ...m5Migrated, participantId: str('erin') }));
  });

  it('does nothing in mode normal or maintenance, for a collection not listed, or for a migration the mode does not name', async () => {
    await db.doc('trades/t4').set(legacyTrade);
    await db.doc('conversations/c4').set({ participants: [{ id: 'alice' }, { userId: 'bob' }], createdAt: CREATED });
    const trade = await read('trades/t4');
    const conversation = await read('conversations/c4');

    expect(await handleSyncWrite(ctx, event('n1', trade))).toEqual({ action: 'ignored', why: 'not-dual-read' });
    await setMode(db, { mode: 'maintenance', collections: ['trades'], user: 'ops' });
    expect(await handleSyncWrite(ctx, event('n2', trade))).toEqual({ action: 'ignored', why: 'not-dual-read' });
    // dual-read for trades, sync on for the trades migration only.
    await setMode(db, { mode: 'dual-read', collections: ['trades'], migrations: [tradesV2.id], user: 'ops' });
    expect(await handleSyncWrite(ctx, event('n3', conversation))).toEqual({ action: 'ignored', why: 'collection-not-listed' });
    // dual-read by hand without naming a migration: the trigger is off.
    await setMode(db, { mode: 'dual-read', collections: ['trades', 'conversations'], migrations: [tradesV2.id], user: 'ops' });
    expect(await handleSyncWrite(ctx, event('n4', conversation))).toEqual({ action: 'ignored', why: 'no-migration' });
    await setMode(db, { mode: 'dual-read', collections: ['trades'], user: 'ops' });
    expect(await handleSyncWrite(ctx, event('n5', trade))).toEqual({ action: 'ignored', why: 'no-migration' });

    expect((await read('trades/t4')).updateTime!.isEqual(trade.updateTime!)).toBe(true);
    expect((await read('conversations/c4')).updateTime!.isEqual(conversation.updateTime!)).toBe(true);
    // Only the mode document and its audit events: no run, no marker, no before-image.
    expect((await controlDocuments()).filter((path) => path.includes('/runs/'))).toEqual([]);
    expect(conversationsV2.target).toEqual({ collection: 'conversations' });
  });

  it('ignores deletes, and records a document it cannot migrate as a failure of the sync run without touching it', async () => {
    const runId = await dualRead();
    await db.doc('trades/t5').set(legacyTrade);
    const kept = await read('trades/t5');
    await db.doc('trades/t5').delete();
    expect(await handleSyncWrite(ctx, { id: 'd1', document: 'trades/t5', after: await read('trades/t5') })).toEqual({ action: 'ignored', why: 'deleted' });
    expect(kept.exists).toBe(true);

    const { creatorId: _creator, ...withoutCreator } = legacyTrade;
    await db.doc('trades/bad').set(withoutCreator);
    const bad = await read('trades/bad');
    const outcome = await handleSyncWrite(ctx, event('f1', bad));
    expect(outcome).toMatchObject({ action: 'applied', batch: { status: 'committed', migrated: 0, failed: 1 } });
    expect((await read('trades/bad')).updateTime!.isEqual(bad.updateTime!)).toBe(true);
    const failure = (await read(`${paths.failures(tradesV2.id, runId)}/${failureId('trades/bad')}`)).data();
    expect(failure).toMatchObject({ path: 'trades/bad', errorClass: 'invalid-source', runId, attempts: 1 });
    expect(failure!.message).toContain('creatorId');
  });

  it('stays out of the way of a rollback: while one holds the migration, and once it is rolled back', async () => {
    await dualRead();
    await db.doc('trades/r1').set(legacyTrade);
    const restored = await read('trades/r1');
    const entry = db.doc(paths.migration(tradesV2.id));
    const lease = { holder: 'cli/rollback', expiresAt: Timestamp.fromMillis(Date.now() + 60_000) };
    await db.doc(paths.run(tradesV2.id, 'rb-1')).set({ runId: 'rb-1', migrationId: tradesV2.id, kind: 'rollback', mode: 'execute', status: 'running' });
    await entry.set({ id: tradesV2.id, status: 'running', activeRunId: 'rb-1', lease });
    expect(await handleSyncWrite(ctx, event('rb-e1', restored))).toEqual({ action: 'ignored', why: 'rollback-running' });
    await entry.set({ id: tradesV2.id, status: 'rolled_back', activeRunId: null, lease: null });
    expect(await handleSyncWrite(ctx, event('rb-e2', restored))).toEqual({ action: 'ignored', why: 'rolled-back' });
    expect((await read('trades/r1')).updateTime!.isEqual(restored.updateTime!)).toBe(true);

    // A migrate run holding the lease does not stop the trigger.
    await db.doc(paths.run(tradesV2.id, 'run-main')).set({ runId: 'run-main', migrationId: tradesV2.id, kind: 'migrate', mode: 'execute', status: 'running' });
    await entry.set({ id: tradesV2.id, status: 'running', activeRunId: 'run-main', lease });
    expect(await handleSyncWrite(ctx, event('rb-e3', restored))).toMatchObject({ action: 'applied', batch: { migrated: 1 } });
  });
});
