import { z } from 'zod';
import { ControlPaths } from '../../functions/src/control/paths';
import { defineMigration } from '../../functions/src/definitions/define';
import { replaceDocument, skip } from '../../functions/src/definitions/results';
import type { Migration, MigrationDefinition } from '../../functions/src/definitions/types';
import { batchMarkerId, failureId, migrateBatch, type BatchContext } from '../../functions/src/engine/batch-core';
import { backupId, imageHash, readBackup } from '../../functions/src/engine/before-image';
import { WireClient, type CallDeadline } from '../../functions/src/engine/wire/client';
import { rawDocumentFromSnapshot } from '../../functions/src/engine/wire/snapshot';
import { grpcError, Status } from '../../functions/src/engine/wire/status';
import type { CommitResult, RawWrite } from '../../functions/src/engine/wire/types';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { bigFields, readRaw, readRawFields, seedRaw } from '../support/raw-seed';

const RUN_ID = 'run-g2';
const SECRET = 'secret-value-4711';

/** Makes chosen commits ambiguous: the commit lands, then the caller sees an error. */
class AmbiguousWire extends WireClient {
  /** Commit calls made, landed or not. */
  commits = 0;
  /** For commit number n: the error to throw after it landed, or undefined to behave. */
  failAfterLanding: (commitNumber: number) => Error | undefined = () => undefined;
  /** Holds commits until this many are in flight, so concurrent deliveries all commit from the same read. */
  barrier = 0;
  private waiting: Array<() => void> = [];
  /** Replays a landed commit once, as the client's own automatic retry would, and reports that replay's error. */
  replayLanded = false;

  override async commit(writes: RawWrite[], options?: CallDeadline): Promise<CommitResult> {
    const commitNumber = this.commits++;
    if (this.barrier > 0) {
      await new Promise<void>((resolve) => {
        this.waiting.push(resolve);
        if (this.waiting.length === this.barrier) this.waiting.splice(0).forEach((release) => release());
      });
    }
    const result = await super.commit(writes, options);
    const error = this.failAfterLanding(commitNumber);
    if (error) throw error;
    if (this.replayLanded) {
      this.replayLanded = false;
      await super.commit(writes, options); // fails: the marker exists and the documents moved on
    }
    return result;
  }
}

describeEmulator('batch core: committed at most once (G2)', () => {
  const projectId = 'demo-batch-core-g2';
  const db = testFirestore(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_RETRY_DELAY: '5' });
  let wire: AmbiguousWire;
  /** Every up() call: its stamp → the document it was called for. Stamps are never reused. */
  let stamps: Map<number, string>;
  let counter: number;

  function migrationWith(up: MigrationDefinition['up'], from: z.ZodType = z.looseObject({ name: z.string() })): Migration {
    return defineMigration({
      id: 'stamp',
      version: '1.0',
      description: 'a non-idempotent transform',
      target: { collection: 'items' },
      marker: { field: 'schemaVersion', from: null, to: '2' },
      from,
      to: z.looseObject({ stamp: z.number(), schemaVersion: z.literal('2') }),
      up,
    });
  }
  /** Not idempotent: every call returns a new stamp. */
  const stampMigration = migrationWith((_doc, ctx) => {
    const stamp = ++counter;
    stamps.set(stamp, ctx.path);
    return { stamp };
  });
  const context = (m: Migration = stampMigration): BatchContext => ({ db, wire, migration: m, config, paths, runId: RUN_ID });
  const backupPath = (key: string) => `${paths.backups(stampMigration.id, RUN_ID)}/${backupId(key)}`;
  const markerPath = (partition: string, seq: number) => `${paths.batches(stampMigration.id, RUN_ID)}/${batchMarkerId(partition, seq)}`;

  async function seed(count: number): Promise<string[]> {
    const keys = Array.from({ length: count }, (_, i) => `items/i${String(i).padStart(3, '0')}`);
    const batch = db.batch();
    for (const key of keys) batch.set(db.doc(key), { name: key });
    await batch.commit();
    return keys;
  }

  /** Each document holds the stamp of exactly one up() call made for it, and one backup that matches it. */
  async function expectLandedOnce(keys: string[]): Promise<void> {
    const docs = await readRaw(wire, keys);
    const seen = new Set<number>();
    for (const key of keys) {
      const doc = docs.get(key)!;
      if (!doc.exists) throw new Error(`${key} vanished`);
      const stamp = Number(doc.fields.stamp.integerValue);
      expect(stamps.get(stamp)).toBe(key);
      expect(seen.has(stamp)).toBe(false);
      seen.add(stamp);
      const backup = readBackup(await readRawFields(wire, backupPath(key)));
      // The backup was written by the same commit as the stamp it describes.
      expect(imageHash(doc.fields, backup.image)).toBe(backup.afterHash);
    }
    const backups = await db.collection(paths.backups(stampMigration.id, RUN_ID)).get();
    expect(backups.size).toBe(keys.length);
  }

  beforeEach(async () => {
    await resetProject(projectId);
    wire = new AmbiguousWire({ projectId, emulatorHost: emulatorHost() });
    stamps = new Map();
    counter = 0;
  });
  afterEach(() => wire.close());
  afterAll(() => db.terminate());

  it('writes the batch marker with its counters in the same commit', async () => {
    const keys = await seed(5);
    const result = await migrateBatch(context(), { partition: 'p0', seq: 7, keys: [...keys, 'items/gone'] });
    expect(result).toMatchObject({ status: 'committed', migrated: 5, skipped: 1, alreadyMigrated: 0, failed: 0, firstKey: keys[0], lastKey: 'items/gone', deferredKeys: [] });
    const marker = await db.doc(markerPath('p0', 7)).get();
    expect(marker.id).toBe('p0-00000007');
    expect(marker.data()).toMatchObject({ partition: 'p0', seq: 7, firstKey: keys[0], lastKey: 'items/gone', migrated: 5, skipped: 1, alreadyMigrated: 0, failed: 0, deferred: 0 });
    expect(marker.get('latencyMs')).toBeGreaterThanOrEqual(0);
    expect(marker.get('rssMb')).toBeGreaterThan(0);
    // Server time of the commit request (REQUEST_TIME): at most the commit time, and close to it.
    const committedAt = marker.get('committedAt').toMillis();
    expect(committedAt).toBeLessThanOrEqual(marker.updateTime!.toMillis());
    expect(committedAt).toBeGreaterThan(marker.updateTime!.toMillis() - 5_000);
    const doc = await db.doc(keys[0]).get();
    expect(doc.updateTime!.isEqual(marker.updateTime!)).toBe(true);
  });

  it('commits a batch delivered twice once: the second delivery is a duplicate, writes nothing and calls up() not at all', async () => {
    const keys = await seed(10);
    const first = await migrateBatch(context(), { partition: 'p0', seq: 0, keys });
    const before = await readRaw(wire, [...keys, ...keys.map(backupPath)]);
    const callsAfterFirst = counter;

    const second = await migrateBatch(context(), { partition: 'p0', seq: 0, keys });

    expect(first).toMatchObject({ status: 'committed', migrated: 10 });
    expect(second).toMatchObject({ status: 'duplicate', migrated: 10, skipped: 0, failed: 0, firstKey: keys[0], lastKey: keys[9] });
    expect(counter).toBe(callsAfterFirst);
    const after = await readRaw(wire, [...keys, ...keys.map(backupPath)]);
    for (const [path, doc] of before) expect(after.get(path)).toEqual(doc);
    await expectLandedOnce(keys);
  });

  it('settles a duplicate delivery that brings its own (stale) documents at the commit, writing nothing', async () => {
    const keys = await seed(10);
    const documents = (await db.getAll(...keys.map((key) => db.doc(key)))).map(rawDocumentFromSnapshot);
    const first = await migrateBatch(context(), { partition: 'p0', seq: 0, keys, documents });
    const before = await readRaw(wire, [...keys, ...keys.map(backupPath)]);

    const second = await migrateBatch(context(), { partition: 'p0', seq: 0, keys, documents });

    expect(first).toMatchObject({ status: 'committed', migrated: 10 });
    expect(second).toMatchObject({ status: 'duplicate', migrated: 10 });
    const after = await readRaw(wire, [...keys, ...keys.map(backupPath)]);
    for (const [path, doc] of before) expect(after.get(path)).toEqual(doc);
    await expectLandedOnce(keys);
  });

  it('commits a batch delivered three times concurrently once', async () => {
    const keys = await seed(30);
    const results = await Promise.all([0, 1, 2].map(() => migrateBatch(context(), { partition: 'p1', seq: 3, keys })));
    expect(results.filter((result) => result.status === 'committed')).toHaveLength(1);
    expect(results.filter((result) => result.status === 'duplicate')).toHaveLength(2);
    for (const result of results) expect(result).toMatchObject({ migrated: 30, failed: 0 });
    await expectLandedOnce(keys);
  });

  it('commits a batch of only failure records, delivered concurrently from the same read, once (the marker is created, never overwritten)', async () => {
    const keys = await seed(4);
    const m = migrationWith(() => {
      throw new Error('always fails');
    });
    wire.barrier = 3;
    const results = await Promise.all([0, 1, 2].map(() => migrateBatch(context(m), { partition: 'p0', seq: 0, keys })));
    expect(wire.commits).toBe(3);
    expect(results.map((result) => result.status).sort()).toEqual(['committed', 'duplicate', 'duplicate']);
    for (const result of results) expect(result).toMatchObject({ failed: 4, migrated: 0 });
    for (const key of keys) {
      const record = await db.doc(`${paths.failures(m.id, RUN_ID)}/${failureId(key)}`).get();
      expect(record.get('attempts')).toBe(1);
    }
  });

  it('settles an ambiguous commit (landed, but the caller saw UNAVAILABLE) by its marker: retried, landed once', async () => {
    const keys = await seed(20);
    wire.failAfterLanding = (n) => (n === 0 ? grpcError(Status.UNAVAILABLE, 'connection reset after the commit was sent') : undefined);

    const result = await migrateBatch(context(), { partition: 'p0', seq: 0, keys });

    expect(result).toMatchObject({ status: 'committed', migrated: 20, transientRetries: 1 });
    expect(wire.commits).toBe(1);
    expect(counter).toBe(20);
    await expectLandedOnce(keys);
  });

  it('settles a commit whose automatic replay failed (the first attempt had landed) by its marker', async () => {
    const all = await seed(25);
    const keys = all.slice(0, 20);
    const more = all.slice(20);
    wire.failAfterLanding = (n) => (n === 0 ? grpcError(Status.DEADLINE_EXCEEDED, 'deadline passed while the commit landed') : undefined);
    const timedOut = await migrateBatch(context(), { partition: 'p0', seq: 0, keys });
    expect(timedOut).toMatchObject({ status: 'committed', migrated: 20, transientRetries: 1 });

    wire.replayLanded = true;
    let replayError: unknown;
    const original = wire.commit.bind(wire);
    wire.commit = async (writes, options) => {
      try {
        return await original(writes, options);
      } catch (error) {
        replayError = error;
        throw error;
      }
    };
    const replayed = await migrateBatch(context(), { partition: 'p0', seq: 1, keys: more });
    expect([Status.FAILED_PRECONDITION, Status.ALREADY_EXISTS]).toContain((replayError as { code?: number }).code);
    expect(replayed).toMatchObject({ status: 'committed', migrated: 5 });
    await expectLandedOnce([...keys, ...more]);
  });

  it('records bad documents as failure records without their contents, and commits the rest', async () => {
    const keys = await seed(6);
    await db.doc('items/invalid-source').set({ name: 12345, secret: SECRET });
    await db.doc('items/throws').set({ name: 'boom', secret: SECRET });
    await db.doc('items/invalid-result').set({ name: 'bad', secret: SECRET });
    await db.doc('items/skipped').set({ name: 'skip me' });
    await db.doc('items/done').set({ name: 'done', stamp: 1, schemaVersion: '2' });
    const m = migrationWith((doc) => {
      if (doc.name === 'boom') throw new Error(`cannot handle ${String(doc.secret)}`);
      if (doc.name === 'bad') return { stamp: String(doc.secret) };
      if (doc.name === 'skip me') return skip('not for this migration');
      return { stamp: ++counter };
    });
    const all = [...keys, 'items/invalid-source', 'items/throws', 'items/invalid-result', 'items/skipped', 'items/done'];

    const result = await migrateBatch(context(m), { partition: 'p0', seq: 0, keys: all });

    expect(result).toMatchObject({ status: 'committed', migrated: 6, failed: 3, skipped: 1, alreadyMigrated: 1 });
    for (const key of keys) expect((await db.doc(key).get()).get('schemaVersion')).toBe('2');
    const expected = { 'items/invalid-source': ['invalid-source', 'medium'], 'items/throws': ['transform-error', 'high'], 'items/invalid-result': ['invalid-result', 'high'] };
    for (const [key, [errorClass, severity]] of Object.entries(expected)) {
      const record = await db.doc(`${paths.failures(m.id, RUN_ID)}/${failureId(key)}`).get();
      expect(record.data()).toMatchObject({ path: key, errorClass, severity, attempts: 1, runId: RUN_ID, partition: 'p0', seq: 0 });
      expect(Object.keys(record.data()!).sort()).toEqual(['attempts', 'errorClass', 'failedAt', 'message', 'migrationId', 'partition', 'path', 'runId', 'seq', 'severity']);
      expect(record.get('message')).not.toContain(SECRET);
      expect(record.get('message')).not.toContain('12345');
      const doc = await db.doc(key).get();
      expect(doc.get('schemaVersion')).toBeUndefined();
      expect(doc.get('stamp')).toBeUndefined();
    }
    expect((await db.doc('items/skipped').get()).get('schemaVersion')).toBeUndefined();
    const failures = await db.collection(paths.failures(m.id, RUN_ID)).get();
    expect(failures.size).toBe(3);
  });

  it('commits the prefix that fits the commit byte limit and defers the rest; a duplicate delivery reports the same split', async () => {
    // Four documents near 1 MiB replaced whole: each needs its update plus a ~1 MiB image, and
    // three fill the emulator's commit budget (its gRPC messages stop at 4 MiB).
    const big = Object.fromEntries(['items/big0', 'items/big1', 'items/big2', 'items/big3'].map((key) => [key, bigFields(1_040_000)]));
    await seedRaw(wire, big);
    const keys = Object.keys(big);
    const m = migrationWith(() => replaceDocument({ stamp: ++counter }), z.looseObject({}));

    const first = await migrateBatch(context(m), { partition: 'p0', seq: 0, keys });
    expect(first).toMatchObject({ status: 'committed', migrated: 3, lastKey: 'items/big2', deferredKeys: ['items/big3'] });
    const marker = await db.doc(`${paths.batches(m.id, RUN_ID)}/${batchMarkerId('p0', 0)}`).get();
    expect(marker.get('lastKey')).toBe(first.lastKey);
    expect(marker.get('deferred')).toBe(1);
    for (const key of first.deferredKeys) expect((await db.doc(key).get()).get('schemaVersion')).toBeUndefined();

    const again = await migrateBatch(context(m), { partition: 'p0', seq: 0, keys });
    expect(again).toMatchObject({ status: 'duplicate', lastKey: first.lastKey, deferredKeys: first.deferredKeys });

    const rest = await migrateBatch(context(m), { partition: 'p0', seq: 1, keys: first.deferredKeys });
    expect(rest).toMatchObject({ status: 'committed', migrated: 1, deferredKeys: [] });
    for (const key of keys) expect((await db.doc(key).get()).get('schemaVersion')).toBe('2');
  });
});
