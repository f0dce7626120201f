import type { Timestamp } from '@google-cloud/firestore';
import { z } from 'zod';
import { ControlPaths } from '../../functions/src/control/paths';
import { defineMigration } from '../../functions/src/definitions/define';
import type { Migration } from '../../functions/src/definitions/types';
import { failureId, migrateBatch, type BatchContext, type BatchResult } from '../../functions/src/engine/batch-core';
import { backupId, readBackup } from '../../functions/src/engine/before-image';
import { WireClient, type CallDeadline } from '../../functions/src/engine/wire/client';
import { rawDocumentFromSnapshot } from '../../functions/src/engine/wire/snapshot';
import type { CommitResult, RawFields, RawWrite } from '../../functions/src/engine/wire/types';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

const RUN_ID = 'run-g1';

/** The wire client with a hook between the batch's read and its commit: where the app's writes land. */
class WireWithAppWriter extends WireClient {
  commits = 0;
  beforeCommit: (commitNumber: number) => Promise<void> = async () => {};

  override async commit(writes: RawWrite[], options?: CallDeadline): Promise<CommitResult> {
    await this.beforeCommit(this.commits++);
    return super.commit(writes, options);
  }
}

const keyOf = (i: number) => `orders/o${String(i).padStart(4, '0')}`;

describeEmulator('batch core: no lost writes (G1)', () => {
  const projectId = 'demo-batch-core-g1';
  const db = testFirestore(projectId);
  const paths = new ControlPaths();
  let wire: WireWithAppWriter;
  let calls: Map<string, number>;

  /** `up()` derives fields from `name`, the field the app writer changes. */
  const migration: Migration = defineMigration({
    id: 'orders-upper',
    version: '1.0',
    description: 'derive nameUpper and nameLength from name',
    target: { collection: 'orders' },
    marker: { field: 'schemaVersion', from: null, to: '2' },
    from: z.looseObject({ name: z.string() }),
    to: z.looseObject({ nameUpper: z.string(), nameLength: z.number(), schemaVersion: z.literal('2') }),
    up: (doc, ctx) => {
      calls.set(ctx.path, (calls.get(ctx.path) ?? 0) + 1);
      const name = doc.name as string;
      return { nameUpper: name.toUpperCase(), nameLength: name.length };
    },
  });

  const context = (maxRetries = 5): BatchContext => ({
    db,
    wire,
    migration,
    config: emulatorConfig({ MIGRATION_RETRY_DELAY: '5', MIGRATION_MAX_RETRIES: String(maxRetries) }),
    paths,
    runId: RUN_ID,
  });

  async function seed(count: number): Promise<string[]> {
    const keys = Array.from({ length: count }, (_, i) => keyOf(i));
    for (let i = 0; i < count; i += 400) {
      const batch = db.batch();
      for (const key of keys.slice(i, i + 400)) batch.set(db.doc(key), { name: `seed ${key}`, other: 1 });
      await batch.commit();
    }
    return keys;
  }

  beforeEach(async () => {
    await resetProject(projectId);
    wire = new WireWithAppWriter({ projectId, emulatorHost: emulatorHost() });
    calls = new Map();
  });
  afterEach(() => wire.close());
  afterAll(() => db.terminate());

  it('re-reads and retries when the app changes source fields between read and commit; values derive from the latest write', async () => {
    const keys = await seed(100);
    const hot = keys.filter((_, i) => i % 10 === 3);
    wire.beforeCommit = async (commitNumber) => {
      if (commitNumber > 1) return;
      await Promise.all(hot.map((key) => db.doc(key).update({ name: `app write ${commitNumber} to ${key}` })));
    };

    const result = await migrateBatch(context(), { partition: 'p0', seq: 0, keys });

    expect(result).toMatchObject({ status: 'committed', migrated: 100, failed: 0, preconditionRetries: 2, transientRetries: 0 });
    const docs = await db.getAll(...keys.map((key) => db.doc(key)));
    for (const doc of docs) {
      const data = doc.data()!;
      if (hot.includes(doc.ref.path)) expect(data.name).toBe(`app write 1 to ${doc.ref.path}`);
      else expect(data.name).toBe(`seed ${doc.ref.path}`);
      expect(data.nameUpper).toBe((data.name as string).toUpperCase());
      expect(data.nameLength).toBe((data.name as string).length);
      expect(data.schemaVersion).toBe('2');
    }
    // Only documents that changed were transformed again; the others kept their first change.
    for (const key of keys) expect(calls.get(key)).toBe(hot.includes(key) ? 3 : 1);
    // The before-image was taken from the version the migration overwrote (the app's last write).
    const backups = await db.getAll(...hot.map((key) => db.doc(`${paths.backups(migration.id, RUN_ID)}/${backupId(key)}`)));
    for (const backup of backups) {
      expect(backup.exists).toBe(true);
      const record = readBackup((rawDocumentFromSnapshot(backup) as { fields: RawFields }).fields);
      expect([...record.image.absent].sort()).toEqual(['nameLength', 'nameUpper', 'schemaVersion']);
    }
  });

  it('re-reads pre-read documents (a whole-document stream) that went stale before the batch ran', async () => {
    const keys = await seed(20);
    const documents = (await db.getAll(...keys.map((key) => db.doc(key)))).map(rawDocumentFromSnapshot);
    const stale = keys.slice(0, 5);
    await Promise.all(stale.map((key) => db.doc(key).update({ name: `changed after the stream read ${key}` })));

    const result = await migrateBatch(context(), { partition: 'p0', seq: 0, keys, documents });

    expect(result).toMatchObject({ status: 'committed', migrated: 20, preconditionRetries: 1 });
    for (const doc of await db.getAll(...keys.map((key) => db.doc(key)))) {
      const expectedName = stale.includes(doc.ref.path) ? `changed after the stream read ${doc.ref.path}` : `seed ${doc.ref.path}`;
      expect(doc.get('name')).toBe(expectedName);
      expect(doc.get('nameUpper')).toBe(expectedName.toUpperCase());
    }
    // Read once (the retry); the first attempt used the documents it was given.
    for (const key of keys) expect(calls.get(key)).toBe(stale.includes(key) ? 2 : 1);
  });

  it('keeps every app write while an app writer hammers a hot 10 % during concurrent batches', async () => {
    const keys = await seed(400);
    const hot = keys.filter((_, i) => i % 10 === 7);
    const history = new Map<string, Array<{ name: string; at: Timestamp }>>();
    let writing = true;
    let written = 0;
    const writer = async (offset: number) => {
      for (let n = offset; writing; n += 4) {
        const key = hot[n % hot.length];
        const name = `app ${n} ${key}`;
        const result = await db.doc(key).update({ name });
        written++;
        const list = history.get(key) ?? [];
        list.push({ name, at: result.writeTime });
        history.set(key, list);
      }
    };
    const writers = [0, 1, 2, 3].map(writer);

    const results: BatchResult[] = [];
    const batches = Array.from({ length: 8 }, (_, seq) => ({ partition: 'p0', seq, keys: keys.slice(seq * 50, seq * 50 + 50) }));
    for (let i = 0; i < batches.length; i += 2) {
      results.push(...(await Promise.all(batches.slice(i, i + 2).map((input) => migrateBatch(context(20), input)))));
    }
    writing = false;
    await Promise.all(writers);

    expect(written).toBeGreaterThan(0);
    expect(results.every((result) => result.status === 'committed')).toBe(true);
    expect(results.reduce((sum, result) => sum + result.migrated, 0)).toBe(400);
    expect(results.reduce((sum, result) => sum + result.preconditionRetries, 0)).toBeGreaterThan(0);

    const docs = await db.getAll(...keys.map((key) => db.doc(key)));
    const backups = await db.getAll(...keys.map((key) => db.doc(`${paths.backups(migration.id, RUN_ID)}/${backupId(key)}`)));
    docs.forEach((doc, i) => {
      const key = doc.ref.path;
      const writes = history.get(key) ?? [];
      // No app write was lost: the document holds the app's last write.
      expect(doc.get('name')).toBe(writes.length > 0 ? writes[writes.length - 1].name : `seed ${key}`);
      // The migrated value derives from the source as it was when the migration committed
      // (the backup's update time is the migration's commit time).
      const migratedAt = backups[i].updateTime!;
      const before = writes.filter((write) => write.at.valueOf() < migratedAt.valueOf());
      const source = before.length > 0 ? before[before.length - 1].name : `seed ${key}`;
      expect(doc.get('nameUpper')).toBe(source.toUpperCase());
    });
  });

  it('records a document that keeps changing past the retry limit as precondition-exhausted and commits the rest', async () => {
    const keys = await seed(20);
    const restless = keys[5];
    let appWrites = 0;
    wire.beforeCommit = async () => {
      await db.doc(restless).update({ name: `restless ${++appWrites}` });
    };

    const result = await migrateBatch(context(2), { partition: 'p0', seq: 0, keys });

    expect(result).toMatchObject({ status: 'committed', migrated: 19, failed: 1, preconditionRetries: 3 });
    const doc = await db.doc(restless).get();
    expect(doc.get('name')).toBe(`restless ${appWrites}`);
    expect(doc.get('schemaVersion')).toBeUndefined();
    expect(doc.get('nameUpper')).toBeUndefined();
    expect((await db.doc(`${paths.backups(migration.id, RUN_ID)}/${backupId(restless)}`).get()).exists).toBe(false);
    const failure = await db.doc(`${paths.failures(migration.id, RUN_ID)}/${failureId(restless)}`).get();
    expect(failure.data()).toMatchObject({
      path: restless,
      errorClass: 'precondition-exhausted',
      severity: 'low',
      attempts: 1,
      migrationId: migration.id,
      runId: RUN_ID,
      partition: 'p0',
      seq: 0,
    });
    for (const key of keys.filter((key) => key !== restless)) expect((await db.doc(key).get()).get('schemaVersion')).toBe('2');
  });
});
