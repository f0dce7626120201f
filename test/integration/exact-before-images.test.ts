import { FieldValue, GeoPoint, Timestamp, VectorValue, DocumentReference } from '@google-cloud/firestore';
import { z } from 'zod';
import { ControlPaths } from '../../functions/src/control/paths';
import { defineMigration } from '../../functions/src/definitions/define';
import { patchPaths, replaceDocument } from '../../functions/src/definitions/results';
import type { DocData, Migration, MigrationDefinition } from '../../functions/src/definitions/types';
import { migrateBatch, type BatchContext } from '../../functions/src/engine/batch-core';
import { BACKUP_CHUNKS_COLLECTION, backupId, readBackup } from '../../functions/src/engine/before-image';
import { readBackups, restoreDocuments, type RestoreTarget } from '../../functions/src/engine/restore';
import { Backoff } from '../../functions/src/engine/retry';
import type { RawFields, RawTimestamp } from '../../functions/src/engine/wire/types';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { bigFields, canonical, exoticFields, readRaw, readRawFields, seedRaw, testWire } from '../support/raw-seed';

const RUN_ID = 'run-exact';
const COLLECTION = 'things';
const FULL = `${COLLECTION}/full`;
const SPARSE = `${COLLECTION}/sparse`;
const BIG = `${COLLECTION}/big`;
const KEYS = [BIG, FULL, SPARSE];

function migration(id: string, up: MigrationDefinition['up']): Migration {
  return defineMigration({
    id,
    version: '1.0',
    description: `test migration ${id}`,
    target: { collection: COLLECTION },
    marker: { field: 'schemaVersion', from: null, to: '2' },
    from: z.looseObject({}),
    to: z.looseObject({ schemaVersion: z.literal('2') }),
    up,
  });
}

describeEmulator('exact before-images (G4)', () => {
  const projectId = 'demo-exact-before-images';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_RETRY_DELAY: '5' });
  const seeded = (): Record<string, RawFields> => ({
    [FULL]: exoticFields(wire),
    [SPARSE]: { flag: { booleanValue: true }, doubleOne: { doubleValue: 1 } },
    // Near the 1 MiB document limit: its whole-document image cannot sit inside one backup document.
    [BIG]: bigFields(1_040_000),
  });
  let originals: Map<string, RawFields>;
  let seededAt: Map<string, RawTimestamp>;

  beforeEach(async () => {
    await resetProject(projectId);
    await seedRaw(wire, seeded());
    // What Firestore stored (a nanosecond timestamp is kept to the microsecond): the reference point.
    const stored = await readRaw(wire, KEYS);
    originals = new Map(KEYS.map((key) => [key, (stored.get(key) as { fields: RawFields }).fields]));
    seededAt = new Map(KEYS.map((key) => [key, (stored.get(key) as { updateTime: RawTimestamp }).updateTime]));
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  const context = (m: Migration): BatchContext => ({ db, wire, migration: m, config, paths, runId: RUN_ID });
  const backupPath = (m: Migration, key: string) => `${paths.backups(m.id, RUN_ID)}/${backupId(key)}`;
  const targets = (m: Migration): RestoreTarget[] => KEYS.map((path) => ({ path, backupPath: backupPath(m, path) }));
  const restoreOptions = { maxRetries: 3, retryDelayMs: 5, timeoutMs: 30_000 };

  /** Migrates every document, checks each changed and backed up in the same commit, restores, and compares raw. */
  async function migrateAndRestore(m: Migration, checkMigrated: (key: string, fields: RawFields) => void): Promise<void> {
    const result = await migrateBatch(context(m), { partition: 'p0', seq: 0, keys: KEYS });
    expect(result).toMatchObject({ status: 'committed', migrated: 3, failed: 0, skipped: 0, deferredKeys: [] });

    const migrated = await readRaw(wire, KEYS);
    const backups = await readRaw(wire, KEYS.map((key) => backupPath(m, key)));
    const records = await readBackups(wire, targets(m), new Backoff({ baseDelayMs: 5, maxRetries: 3 }), () => undefined, { timeoutMs: 30_000 });
    for (const key of KEYS) {
      const document = migrated.get(key)!;
      const backup = backups.get(backupPath(m, key))!;
      if (!document.exists || !backup.exists) throw new Error(`${key} or its backup is missing`);
      expect(document.fields.schemaVersion).toMatchObject({ stringValue: '2' });
      expect(canonical(document.fields)).not.toBe(canonical(originals.get(key)!));
      checkMigrated(key, document.fields);
      // Same commit: the backup's update time is the migrated write's.
      expect(backup.updateTime).toEqual(document.updateTime);
      expect(backup.fields.path).toMatchObject({ stringValue: key });
      expect(records.get(key)!.beforeUpdateTime).toEqual(seededAt.get(key));
    }

    const restored = await restoreDocuments(wire, targets(m), restoreOptions);
    expect([...restored.outcomes.values()]).toEqual(['restored', 'restored', 'restored']);
    const after = await readRaw(wire, KEYS);
    for (const key of KEYS) {
      const document = after.get(key)!;
      if (!document.exists) throw new Error(`${key} vanished`);
      expect(canonical(document.fields)).toBe(canonical(originals.get(key)!));
    }
    // The traps, spelled out on the restored document.
    const full = (after.get(FULL) as { fields: RawFields }).fields;
    expect(full.doubleOne).toMatchObject({ doubleValue: 1, valueType: 'doubleValue' });
    expect(full.doubleZero).toMatchObject({ doubleValue: 0, valueType: 'doubleValue' });
    expect(full.int64Big).toMatchObject({ integerValue: '9007199254740993' });
    expect(full.int64Min).toMatchObject({ integerValue: '-9223372036854775808' });
    expect(full['a.b']).toMatchObject({ stringValue: 'literal dotted name' });
    expect(full.timestampMicros.timestampValue).toMatchObject({ nanos: 123456000 });
    expect(full.timestampNanos.timestampValue).toMatchObject({ nanos: 123456000 });
    expect(full).not.toHaveProperty('schemaVersion');

    // A second restore finds nothing to do.
    const again = await restoreDocuments(wire, targets(m), restoreOptions);
    expect([...again.outcomes.values()]).toEqual(['already-restored', 'already-restored', 'already-restored']);
  }

  it('stores the seeded traps as Firestore keeps them (the reference the other tests compare with)', () => {
    const full = originals.get(FULL)!;
    expect(full.doubleOne).toMatchObject({ doubleValue: 1, valueType: 'doubleValue' });
    expect(full.int64Big).toMatchObject({ integerValue: '9007199254740993', valueType: 'integerValue' });
    expect(full.timestampNanos.timestampValue).toMatchObject({ nanos: 123456000 });
    expect(Object.keys(full)).toContain('a.b');
    expect(Buffer.byteLength(originals.get(BIG)!.blob.stringValue!)).toBeGreaterThan(1_000_000);
  });

  it('hands up() the values the Node SDK would, with int64 beyond 2^53 as bigint', async () => {
    const seen: DocData[] = [];
    const m = migration('observe-types', (doc, ctx) => {
      if (ctx.path === FULL) seen.push(doc);
      return { observed: true };
    });
    await migrateBatch(context(m), { partition: 'p0', seq: 0, keys: KEYS });
    const doc = seen[0];
    expect(doc.doubleOne).toBe(1);
    expect(doc.doubleFraction).toBe(2.5);
    expect(doc.smallInt).toBe(42);
    expect(doc.int64Big).toBe(9007199254740993n);
    expect(doc.int64Min).toBe(-9223372036854775808n);
    expect(doc['a.b']).toBe('literal dotted name');
    expect(doc.timestampMicros).toBeInstanceOf(Timestamp);
    expect((doc.timestampMicros as Timestamp).nanoseconds).toBe(123456000);
    expect(doc.vector).toBeInstanceOf(VectorValue);
    expect((doc.vector as VectorValue).toArray()).toEqual([1, 2.5, -3]);
    expect(Buffer.isBuffer(doc.bytes)).toBe(true);
    expect([...(doc.bytes as Buffer)]).toEqual([0, 1, 2, 254, 255]);
    expect(doc.geo).toBeInstanceOf(GeoPoint);
    expect(doc.reference).toBeInstanceOf(DocumentReference);
    expect((doc.reference as DocumentReference).path).toBe('users/u1');
    expect(doc.nullField).toBeNull();
    expect(doc.nested).toEqual({ inner: { doubleOne: 1, deep: { int64Big: 9007199254740993n, 'x.y': 'dotted inside' } }, list: [1, 1, 's'] });
  });

  it('restores top-level fields overwritten, deleted and added by a plain-object result, for every value type', async () => {
    const m = migration('top-level', (doc) => {
      const result: DocData = { added: 'new field' };
      for (const key of Object.keys(doc)) result[key] = key === 'doubleZero' || key === 'blob' ? FieldValue.delete() : `changed ${key}`;
      return result;
    });
    await migrateAndRestore(m, (key, fields) => {
      expect(fields.added).toMatchObject({ stringValue: 'new field' });
      if (key === FULL) {
        expect(fields['a.b']).toMatchObject({ stringValue: 'changed a.b' });
        expect(fields).not.toHaveProperty('a');
        expect(fields['with`tick']).toMatchObject({ stringValue: 'changed with`tick' });
        expect(fields.doubleOne).toMatchObject({ stringValue: 'changed doubleOne' });
        expect(fields).not.toHaveProperty('doubleZero');
      }
      if (key === BIG) expect(fields).not.toHaveProperty('blob');
    });
  });

  it('restores nested paths: set, created under an absent parent, replacing a non-map parent, and deleted', async () => {
    const m = migration('nested', () =>
      patchPaths([
        [['nested', 'inner', 'doubleOne'], 'changed'],
        [['nested', 'inner', 'deep', 'x.y'], FieldValue.delete()],
        [['nested', 'inner', 'deep', 'int64Big'], FieldValue.delete()],
        [['a', 'b'], 'created under absent a'],
        [['fresh', 'deeper', 'leaf'], 9007199254740993n],
        [['flag', 'sub'], 'flag was a boolean'],
        [['arrayOfMaps'], [{ id: 'replaced' }]],
      ]),
    );
    await migrateAndRestore(m, (key, fields) => {
      expect(fields.a).toMatchObject({ mapValue: { fields: { b: { stringValue: 'created under absent a' } } } });
      expect(fields.fresh.mapValue?.fields?.deeper.mapValue?.fields?.leaf).toMatchObject({ integerValue: '9007199254740993' });
      expect(fields.flag).toMatchObject({ mapValue: { fields: { sub: { stringValue: 'flag was a boolean' } } } });
      if (key === FULL) {
        const inner = fields.nested.mapValue!.fields!.inner.mapValue!.fields!;
        expect(inner.doubleOne).toMatchObject({ stringValue: 'changed' });
        expect(inner.deep.mapValue?.fields ?? {}).toEqual({});
        // The literal field "a.b" is a different field from the path a → b.
        expect(fields['a.b']).toMatchObject({ stringValue: 'literal dotted name' });
      }
    });
    // Restoring `a.b` into documents that had no `a` left no empty map behind.
    const restored = await readRaw(wire, KEYS);
    for (const key of KEYS) {
      const fields = (restored.get(key) as { fields: RawFields }).fields;
      expect(fields).not.toHaveProperty('a');
      expect(fields).not.toHaveProperty('fresh');
    }
    // The image recorded the absent paths at their highest missing ancestor.
    const backup = readBackup(await readRawFields(wire, backupPath(m, SPARSE)));
    expect(backup.image.mode).toBe('patch');
    expect(backup.image.absent.sort()).toEqual(['a', 'arrayOfMaps', 'fresh', 'nested', 'schemaVersion']);
    expect(Object.keys(backup.image.values)).toEqual(['flag']);
  });

  it('restores a replaced document whole, including one near 1 MiB whose image is split into chunks', async () => {
    const m = migration('replace', (doc) => replaceDocument({ replaced: true, keptDouble: doc.doubleOne ?? null }));
    await migrateAndRestore(m, (_key, fields) => {
      expect(Object.keys(fields).sort()).toEqual(['keptDouble', 'replaced', 'schemaVersion']);
    });
    const bigBackup = await readRawFields(wire, backupPath(m, BIG));
    const records = await readBackups(wire, targets(m), new Backoff({ baseDelayMs: 5, maxRetries: 3 }), () => undefined, { timeoutMs: 30_000 });
    expect(records.get(BIG)!.image.mode).toBe('replace');
    expect(Number(bigBackup.chunks.integerValue)).toBe(2);
    expect(bigBackup).not.toHaveProperty('image');
    const chunks = await db.collection(`${backupPath(m, BIG)}/${BACKUP_CHUNKS_COLLECTION}`).get();
    expect(chunks.size).toBe(2);
    const fullBackup = await readRawFields(wire, backupPath(m, FULL));
    expect(fullBackup).not.toHaveProperty('chunks');
    expect(fullBackup.image.bytesValue!.length).toBeGreaterThan(0);
  });

  it('restores a patched field near 1 MiB (a chunked patch image)', async () => {
    const m = migration('patch-big', (doc) => (typeof doc.blob === 'string' ? { blob: 'short now' } : { touched: true }));
    await migrateAndRestore(m, (key, fields) => {
      if (key === BIG) expect(fields.blob).toMatchObject({ stringValue: 'short now' });
    });
    const bigBackup = await readRawFields(wire, backupPath(m, BIG));
    expect(Number(bigBackup.chunks.integerValue)).toBe(2);
  });

  it('leaves a document alone when its migrated fields changed after the migration (a conflict), unless forced', async () => {
    const m = migration('conflict', () => ({ status: 'migrated' }));
    await migrateBatch(context(m), { partition: 'p0', seq: 0, keys: KEYS });
    await db.doc(SPARSE).update({ status: 'edited by the app' });
    await db.doc(FULL).update({ unrelated: 'the app touched another field' });
    const result = await restoreDocuments(wire, targets(m), restoreOptions);
    expect(result.outcomes.get(SPARSE)).toBe('conflict');
    expect(result.outcomes.get(FULL)).toBe('restored');
    expect((await readRawFields(wire, SPARSE)).status).toMatchObject({ stringValue: 'edited by the app' });
    const full = await readRawFields(wire, FULL);
    expect(full).not.toHaveProperty('status');
    expect(full.unrelated).toMatchObject({ stringValue: 'the app touched another field' });

    const forced = await restoreDocuments(wire, [{ path: SPARSE, backupPath: backupPath(m, SPARSE) }], { ...restoreOptions, force: true });
    expect(forced.outcomes.get(SPARSE)).toBe('restored');
    expect(canonical(await readRawFields(wire, SPARSE))).toBe(canonical(originals.get(SPARSE)!));
  });
});
