/**
 * G3's final sweep: a document the app creates in the old shape BEHIND a partition's cursor (its
 * key stream has passed that key) is never read by the partitions; the run migrates it in its
 * final sweep, before it reports completed. Asserted on the documents, markers and backups.
 */
import { FieldPath, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore } from '../../functions/src/control/runs';
import { createLogger } from '../../functions/src/cli/log';
import type { DocData } from '../../functions/src/definitions/types';
import { DemoDataset, demoManifest, seedDemoData } from '../../functions/src/demo/seed-data';
import { backupId, readBackup } from '../../functions/src/engine/before-image';
import { startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { WireClient } from '../../functions/src/engine/wire/client';
import { rawDocumentFromSnapshot } from '../../functions/src/engine/wire/snapshot';
import type { RawFields } from '../../functions/src/engine/wire/types';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describeEmulator('final sweep: documents created behind the cursor', () => {
  const projectId = 'demo-final-sweep';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '25', MIGRATION_CONCURRENT_BATCHES: '2', MIGRATION_CONNECTION_POOL_SIZE: '4' });
  const logLines: string[] = [];
  const ctx: RunnerContext = {
    db,
    wire,
    migration: tradesV2,
    config,
    paths,
    lease: { ttlMs: 5000, renewEveryMs: 1500 },
    holder: 'test-host/1/sweeper',
    log: createLogger({ format: 'json', write: (line) => logLines.push(line), minSeverity: 'DEBUG' }),
  };
  const caller = { user: 'tester', identity: 'emulator', reason: 'sweep test' };
  const seeded = { docs: 3000, seed: 5, now: new Date('2026-11-03T09:00:00Z') };

  beforeEach(async () => {
    await resetProject(projectId);
    logLines.length = 0;
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  it('migrates a document created in the old shape behind the cursor before the run completes', async () => {
    await seedDemoData(db, seeded);
    const manifest = demoManifest(seeded);
    const dataset = new DemoDataset(seeded);
    const template = Array.from({ length: seeded.docs }, (_, i) => dataset.trade(i)).find((trade) => trade.case.kind === 'legacy')!;
    const lowestKey = (await db.collection('trades').orderBy(FieldPath.documentId()).limit(1).select().get()).docs[0].ref.path;
    // '-' sorts before every hex digit: this key is below every seeded one, in partition p0000.
    const behind = db.doc('trades/000-created-behind-the-cursor');
    expect(behind.path < lowestKey).toBe(true);

    const session = await startRun(ctx, caller);
    const markers = db.collection(paths.batches(tradesV2.id, session.runId));
    // Once p0000's first batch has committed, its key stream is past the new key for good.
    while (!(await markers.doc('p0000-00000000').get()).exists) await sleep(10);
    await behind.create(template.data);
    const whenCreated = await db.collection(paths.partitions(tradesV2.id, session.runId)).get();
    expect(whenCreated.docs.some((partition) => partition.data().status !== 'exhausted')).toBe(true);

    const outcome = await session.outcome;
    expect(outcome.error).toBeNull();
    expect(outcome.status).toBe('completed');

    // The document is migrated: its fields plus exactly what up() derives, and the marker.
    const derived = tradesV2.up(structuredClone(template.data), { path: behind.path, id: behind.id }) as DocData;
    expect((await behind.get()).data()).toEqual({ ...template.data, ...derived, schemaVersion: '2.0' });

    // … by a batch of the sweep, not of a partition.
    const all = (await markers.get()).docs.map((doc: QueryDocumentSnapshot) => ({ id: doc.id, ...doc.data() }) as DocData & { id: string });
    const covering = all.filter((marker) => (marker.firstKey as string) <= behind.path && behind.path <= (marker.lastKey as string));
    expect(covering.map((marker) => marker.id)).toEqual([expect.stringMatching(/^sweep0-\d{8}$/)]);
    expect(covering[0].migrated).toBe(1);
    const migrated = (prefix: string) => all.filter((marker) => marker.id.startsWith(prefix)).reduce((sum, marker) => sum + (marker.migrated as number), 0);
    expect(migrated('p')).toBe(manifest.trades.legacy);
    expect(migrated('sweep')).toBe(1);

    // One before-image for it: every field the migration wrote was absent before.
    const stored = rawDocumentFromSnapshot(await db.doc(`${paths.backups(tradesV2.id, session.runId)}/${backupId(behind.path)}`).get());
    const backup = readBackup((stored as { fields: RawFields }).fields);
    expect(backup).toMatchObject({ path: behind.path, image: { mode: 'patch' }, runId: session.runId, migrationId: tradesV2.id });
    expect([...backup.image.absent].sort()).toEqual(['participants', 'schemaVersion', 'skillsOffered', 'skillsWanted']);
    expect((await db.collection(paths.backups(tradesV2.id, session.runId)).count().get()).data().count).toBe(manifest.trades.legacy + 1);

    // The sweep re-examined the malformed trades (they fail again) and the new one; one pass sufficed.
    const malformed = manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray;
    expect(outcome.sweep).toMatchObject({ passes: 2, examined: malformed + 1, migrated: 1, failed: malformed });
    const run = await new RunStore(db, paths).get(tradesV2.id, session.runId);
    expect(run).toMatchObject({ status: 'completed', sweep: { passes: 2, examined: malformed + 1, migrated: 1, failed: malformed } });
    expect(run.sweep!.completedAt).not.toBeNull();
    const events = await new AuditLog(db, paths).forRun(session.runId);
    expect(events.map((event) => event.action)).toEqual(['run.started', 'run.completed']);
    expect(events[1].details).toMatchObject({ sweep: { passes: 2, examined: malformed + 1, migrated: 1 } });
    // Every legacy trade was migrated once, the malformed ones failed (one record each, two attempts).
    const failures = (await db.collection(paths.failures(tradesV2.id, session.runId)).get()).docs.map((doc) => doc.data());
    expect(failures).toHaveLength(malformed);
    expect(failures.every((failure) => failure.attempts === 2 && failure.errorClass === 'invalid-source')).toBe(true);
    expect((await db.collection('trades').where('schemaVersion', '==', '2.0').count().get()).data().count).toBe(manifest.trades.legacy + manifest.trades.alreadyV2 + 1);
  });
});
