import { FieldPath, type Firestore } from '@google-cloud/firestore';
import type { KeyRange } from '../../functions/src/control/partitions';
import type { MigrationTarget } from '../../functions/src/definitions/types';
import { defineMigration } from '../../functions/src/definitions/define';
import { streamKeys } from '../../functions/src/engine/key-reader';
import { isUnimplemented, planPartitions, scanSplitPoints, splitEvery } from '../../functions/src/engine/partitioner';
import { partitionKeyQuery } from '../../functions/src/engine/runner';
import { WireClient } from '../../functions/src/engine/wire/client';
import { z } from 'zod';
import { describeEmulator, emulatorHost, resetProject, testFirestore } from '../support/emulator';

const reader = { maxRetries: 3, retryDelayMs: 100 };

function migrationOn(target: MigrationTarget) {
  return defineMigration({
    id: 'partition-probe',
    version: '1.0',
    description: 'reads keys only',
    target,
    marker: { field: 'v', from: null, to: '2' },
    from: z.object({}).passthrough(),
    to: z.object({}).passthrough(),
    up: () => ({}),
  });
}

/** Every key of each range, read the way the runner reads a partition. */
async function keysPerRange(db: Firestore, wire: WireClient, target: MigrationTarget, ranges: KeyRange[]): Promise<string[][]> {
  const migration = migrationOn(target);
  const result: string[][] = [];
  for (const range of ranges) {
    const keys: string[] = [];
    for await (const key of streamKeys(db, wire, partitionKeyQuery(db, migration, { ...range, cursor: null }), reader)) keys.push(key);
    result.push(keys);
  }
  return result;
}

async function write(db: Firestore, paths: string[]): Promise<void> {
  const writer = db.bulkWriter({ throttling: false });
  for (const path of paths) void writer.set(db.doc(path), { n: 1 });
  await writer.close();
}

describeEmulator('partitioner on the emulator', () => {
  const projectId = 'demo-partitioner';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  // Ids spread over the key space, with prefixes that sort between each other (a, a0, a00, b…).
  const ids = Array.from({ length: 1237 }, (_, i) => `${(i * 7919) % 1237}`.padStart(i % 3, 'a') + (i % 5 === 0 ? '-x' : ''));
  const itemPaths = ids.map((id) => `items/${id}`);
  // Same collection id elsewhere: the group target sees them, the collection target must not.
  const nestedPaths = ['users/u1/items/n1', 'users/u2/items/n2', 'items/a-b/items/deep', 'zeta/z/items/last'];

  beforeAll(async () => {
    await resetProject(projectId);
    await write(db, [...itemPaths, ...nestedPaths, 'other/o1']);
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  it('is refused with UNIMPLEMENTED by the emulator (PartitionQuery), which the detection recognises', async () => {
    let thrown: unknown;
    try {
      for await (const partition of db.collectionGroup('items').getPartitions(4)) void partition;
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeDefined();
    expect((thrown as { code?: number }).code).toBe(12);
    expect(isUnimplemented(thrown)).toBe(true);
  });

  it.each([2, 3, 4, 7, 12])('falls back to a key scan whose %i ranges cover every key of the collection exactly once', async (desired) => {
    const target = { collection: 'items' };
    const every = splitEvery(itemPaths.length, desired);
    const points = await scanSplitPoints(db, wire, target, every, reader);
    expect(points).toHaveLength(Math.ceil(itemPaths.length / every) - 1);
    const plan = await planPartitions(db, wire, target, { total: itemPaths.length, workers: 3, ...reader });
    expect(plan.method).toBe('key-scan');
    const ranges = [{ startAt: null, endBefore: points[0] ?? null }, ...points.map((startAt, i) => ({ startAt, endBefore: points[i + 1] ?? null }))];
    const perRange = await keysPerRange(db, wire, target, ranges);
    const all = perRange.flat();
    expect(all).toHaveLength(itemPaths.length);
    expect(new Set(all).size).toBe(itemPaths.length);
    expect([...all].sort()).toEqual([...itemPaths].sort());
    for (const keys of perRange) {
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.length).toBeLessThanOrEqual(every);
    }
    // Ranges follow each other in key order: no overlap at the boundaries.
    for (let i = 1; i < perRange.length; i++) expect(perRange[i][0] > perRange[i - 1][perRange[i - 1].length - 1]).toBe(true);
  });

  it('plans a collection-group target from the group, subcollections included, each key once', async () => {
    const target = { collectionGroup: 'items' };
    const total = itemPaths.length + nestedPaths.length;
    const plan = await planPartitions(db, wire, target, { total, workers: 1, ...reader });
    // 1241 documents, one worker: ⌈1241 / 1000⌉ = 2 ranges, found by the scan (the emulator has no PartitionQuery).
    expect(plan.method).toBe('key-scan');
    expect(plan.ranges).toHaveLength(2);
    const all = (await keysPerRange(db, wire, target, plan.ranges)).flat();
    expect(all).toHaveLength(total);
    expect([...all].sort()).toEqual([...itemPaths, ...nestedPaths].sort());
  });

  it('reads the keys of a range in key order, continuing after a cursor and stopping before the next range', async () => {
    const target = { collection: 'items' };
    const sorted = (await db.collection('items').select().orderBy(FieldPath.documentId()).get()).docs.map((doc) => doc.ref.path);
    const migration = migrationOn(target);
    const range = { startAt: sorted[100], endBefore: sorted[200], cursor: sorted[149] };
    const keys: string[] = [];
    for await (const key of streamKeys(db, wire, partitionKeyQuery(db, migration, range), reader)) keys.push(key);
    expect(keys).toEqual(sorted.slice(150, 200));
  });

  it('restarts its stream after the last key without losing or repeating one, and stops cleanly when left early', async () => {
    const keys: string[] = [];
    const query = db.collection('items').select().orderBy(FieldPath.documentId());
    // A restart after every key read for 1 ms or more: many streams, one sequence.
    for await (const key of streamKeys(db, wire, query, { ...reader, restartEveryMs: 1 })) {
      keys.push(key);
      if (keys.length === 60) break;
    }
    const sorted = (await query.limit(60).get()).docs.map((doc) => doc.ref.path);
    expect(keys).toEqual(sorted);
  });
});
