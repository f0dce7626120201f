import { Timestamp } from '@google-cloud/firestore';
import { CLEANUP_MARKER_FIELD, cleanupMigrationFor, cleanupMigrationId, withCleanupMigrations } from '../../functions/src/cleanup/cleanup-migration';
import { main } from '../../functions/src/cli/main';
import { readInNewShape } from '../../functions/src/compat/reader';
import { getMode } from '../../functions/src/compat/modes';
import { handleSyncWrite } from '../../functions/src/compat/sync-trigger';
import { leaseSettings, newLeaseHolder } from '../../functions/src/control/lease';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { DocData } from '../../functions/src/definitions/types';
import { WireClient } from '../../functions/src/engine/wire/client';
import { projectMigrations } from '../../functions/src/migrations';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import { startRollback } from '../../functions/src/rollback';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, readRaw } from '../support/raw-seed';

jest.setTimeout(120_000);

const paths = new ControlPaths();
const LEGACY = ['offeredSkills', 'requestedSkills', 'creatorId', 'participantId'];
const at = (n: number) => Timestamp.fromMillis(Date.UTC(2026, 9, 1) + n * 60_000);

/** Legacy trades of several shapes, and one a new client wrote in v2 without any legacy field. */
const trades: Record<string, DocData> = {
  'trades/a': { title: 'a', status: 'open', creatorId: 'alice', offeredSkills: ['guitar'], requestedSkills: [], createdAt: at(1) },
  'trades/b': {
    title: 'b',
    status: 'active',
    creatorId: 'bob',
    participantId: 'carol',
    offeredSkills: [{ name: 'Web Design & UX', level: 'Expert', category: 'design', note: 'kept in the legacy array only' }],
    requestedSkills: ['cooking', { id: 'sql', name: 'SQL' }],
    createdAt: at(2),
    updatedAt: at(3),
    appOwn: { nested: [1, 2.5, 'x'] },
  },
  'trades/c': { title: 'c', status: 'completed', creatorId: 'dave', participantId: null, offeredSkills: [], requestedSkills: ['x'], createdAt: at(4) },
  'trades/new-client': {
    title: 'written by a v2 client',
    status: 'open',
    skillsOffered: [{ id: 'go', name: 'Go', level: 'expert' }],
    skillsWanted: [],
    participants: { creator: 'erin', participant: null },
    schemaVersion: '2.0',
    createdAt: at(5),
  },
};

describeEmulator('cleanup (contract): legacy fields removed as a run of its own; before-images kept for the retention period', () => {
  const projectId = 'demo-cleanup';
  const db = testFirestore(projectId);
  const config = emulatorConfig({ MIGRATION_RETRY_DELAY: '5' });
  const wire = WireClient.forFirestore(db);
  let stdout: string;
  let stderr: string;

  beforeEach(async () => {
    await resetProject(projectId);
    for (const [path, data] of Object.entries(trades)) await db.doc(path).set(data);
    stdout = '';
    stderr = '';
    jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += chunk.toString();
      return true;
    });
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += chunk.toString();
      return true;
    });
  });
  afterEach(() => {
    jest.restoreAllMocks();
    process.exitCode = undefined;
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  const cli = (...args: string[]) => main(['node', 'firemigrate', '--project', projectId, '--user', 'ops', ...args]);
  const snapshotOf = async () => new Map((await db.collection('trades').get()).docs.map((doc) => [doc.ref.path, { data: doc.data(), updateTime: doc.updateTime.toMillis() }]));
  const backupCount = async (migrationId: string, runId: string) => (await db.collection(paths.backups(migrationId, runId)).count().get()).data().count;
  const runsOf = async (migrationId: string) => (await db.collection(paths.runs(migrationId)).get()).docs.map((doc) => doc.data() as RunDocument);

  async function migrate(): Promise<string> {
    expect(await cli('run', tradesV2.id, '--execute', '--no-report', '--json')).toBe(0);
    const [run] = await runsOf(tradesV2.id);
    expect(run.status).toBe('completed');
    return run.runId;
  }

  it('is refused for a migration that declares no legacy fields, or that has not been applied', async () => {
    expect(() => cleanupMigrationFor(conversationsV2)).toThrow('declares no legacyFields');
    expect(await cli('cleanup', conversationsV2.id)).toBe(2);
    expect(stderr).toContain('declares no legacyFields');
    stderr = '';
    expect(await cli('cleanup', tradesV2.id, '--execute', '--force')).toBe(1);
    expect(stderr).toContain('is not run yet');
    expect(await runsOf(cleanupMigrationId(tradesV2.id))).toEqual([]);
  });

  it('dry run writes nothing; --execute is refused while a rollback is possible; --force removes exactly the legacy fields', async () => {
    const migrateRun = await migrate();
    const migrated = await snapshotOf();
    const mode = await getMode(db);
    expect(mode).toMatchObject({ mode: 'dual-read', collections: ['trades'] });

    stdout = '';
    expect(await cli('cleanup', tradesV2.id, '--json')).toBe(0);
    const dry = JSON.parse(stdout);
    expect(dry.refusal).toContain('can still be rolled back');
    expect(dry.plan.counts).toMatchObject({ total: 4 });
    expect(await snapshotOf()).toEqual(migrated);

    expect(await cli('cleanup', tradesV2.id, '--execute')).toBe(1);
    expect(stderr).toContain(`run ${migrateRun}`);
    expect(await snapshotOf()).toEqual(migrated);
    expect(await runsOf(cleanupMigrationId(tradesV2.id))).toEqual([]);

    expect(await cli('cleanup', tradesV2.id, '--execute', '--force', '--reason', 'old clients retired')).toBe(0);
    const cleaned = await snapshotOf();
    for (const [path, before] of migrated) {
      const after = cleaned.get(path)!.data;
      const legacyPresent = LEGACY.filter((field) => field in before.data);
      expect([path, Object.keys(after).sort()]).toEqual([path, [...Object.keys(before.data).filter((field) => !LEGACY.includes(field)), CLEANUP_MARKER_FIELD].sort()]);
      for (const [field, value] of Object.entries(before.data)) if (!LEGACY.includes(field)) expect([path, field, after[field]]).toEqual([path, field, value]);
      expect(after[CLEANUP_MARKER_FIELD]).toBe('2.0');
      expect(after.schemaVersion).toBe('2.0');
      // The compatibility reader still reads it in the new shape.
      expect(readInNewShape(tradesV2, after, { path, id: path.split('/')[1] })).toEqual({ shape: 'new', data: after });
      if (path !== 'trades/new-client') expect(legacyPresent.length).toBeGreaterThan(0);
    }

    const [cleanupRun] = await runsOf(cleanupMigrationId(tradesV2.id));
    expect(cleanupRun).toMatchObject({ kind: 'migrate', mode: 'execute', status: 'completed', user: 'ops', reason: 'old clients retired' });
    // Its own before-images: the three documents that lost legacy fields (the new client's only gained the marker).
    expect(await backupCount(cleanupRun.migrationId, cleanupRun.runId)).toBe(4);
    // Nothing past retention: the migration's own before-images stay.
    expect(await backupCount(tradesV2.id, migrateRun)).toBe(3);
    expect(await getMode(db)).toMatchObject({ mode: 'normal', runId: cleanupRun.runId });
  });

  it('after the retention period: allowed without --force, and deletes only the before-images past it', async () => {
    const oldRun = await migrate();
    // A run whose last write was 40 days ago: its batch markers say when it committed.
    const markers = await db.collection(paths.batches(tradesV2.id, oldRun)).get();
    for (const marker of markers.docs) await marker.ref.update({ committedAt: Timestamp.fromMillis(Date.now() - 40 * 86_400_000) });

    expect(await cli('cleanup', tradesV2.id, '--execute', '--retention-days', '30')).toBe(0);
    expect(await backupCount(tradesV2.id, oldRun)).toBe(0);
    expect((await db.doc(paths.run(tradesV2.id, oldRun)).get()).get('beforeImagesPurgedAt')).toBeInstanceOf(Timestamp);
    const [cleanupRun] = await runsOf(cleanupMigrationId(tradesV2.id));
    expect(await backupCount(cleanupRun.migrationId, cleanupRun.runId)).toBe(4);
    const purged = await db.collection(paths.audit()).where('action', '==', 'before-images.purged').get();
    expect(purged.docs.map((doc) => doc.data())).toEqual([expect.objectContaining({ migrationId: tradesV2.id, runId: oldRun, user: 'ops', details: expect.objectContaining({ beforeImages: 3, retentionDays: 30 }) })]);
  });

  it('a fresh before-image of the sync trigger still blocks the cleanup', async () => {
    const oldRun = await migrate();
    for (const marker of (await db.collection(paths.batches(tradesV2.id, oldRun)).get()).docs) {
      await marker.ref.update({ committedAt: Timestamp.fromMillis(Date.now() - 40 * 86_400_000) });
    }
    await db.doc('trades/late').set({ title: 'late legacy write', status: 'open', creatorId: 'zoe', offeredSkills: [], requestedSkills: [], createdAt: at(9) });
    const outcome = await handleSyncWrite(
      { db, wire, config, paths, registry: createRegistry(projectMigrations), log: { debug() {}, info() {}, warning() {}, error() {} } },
      { id: 'late-1', document: 'trades/late', after: await db.doc('trades/late').get() },
    );
    expect(outcome.action).toBe('applied');

    expect(await cli('cleanup', tradesV2.id, '--execute')).toBe(1);
    expect(stderr).toMatch(/run sync-\d+ \(1 before-images\)/);
    expect(await backupCount(tradesV2.id, oldRun)).toBe(3);
  });

  it('the rollback of a cleanup gives back the documents exactly', async () => {
    await migrate();
    const keys = Object.keys(trades);
    const raw = async () => new Map([...(await readRaw(wire, keys))].map(([path, doc]) => [path, doc.exists ? canonical(doc.fields) : null]));
    const beforeCleanup = await raw();
    expect(await cli('cleanup', tradesV2.id, '--execute', '--force')).toBe(0);
    expect([...(await raw()).values()].every((text, i) => text !== [...beforeCleanup.values()][i])).toBe(true);

    const session = await startRollback(
      {
        db,
        wire,
        config,
        paths,
        registry: withCleanupMigrations(createRegistry(projectMigrations)),
        lease: leaseSettings(config),
        holder: newLeaseHolder(),
        log: { debug() {}, info() {}, warning() {}, error() {} },
      },
      { migrationId: cleanupMigrationId(tradesV2.id), force: false, reason: 'cleanup too early', user: 'ops', identity: 'emulator' },
    );
    const outcome = await session.outcome;
    expect({ status: outcome.status, error: outcome.error?.message ?? null }).toEqual({ status: 'completed', error: null });
    expect(await raw()).toEqual(beforeCleanup);
  });
});
