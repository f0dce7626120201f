import { FieldPath, type Firestore } from '@google-cloud/firestore';
import type { KeyRange } from '../../functions/src/control/partitions';
import type { MigrationTarget } from '../../functions/src/definitions/types';
import { defineMigration } from '../../functions/src/definitions/define';
import { streamKeys } from '../../functions/src/engine/key-reader';
import { desiredPartitionCount, isUnimplemented, splitEvery } from '../../functions/src/engine/partitioner';
import { surveyTarget } from '../../functions/src/engine/target-survey';
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

async function write(db: Firestore, paths: string[], data: Record<string, unknown> = { n: 1 }): Promise<void> {
  const writer = db.bulkWriter({ throttling: false });
  for (const path of paths) void writer.set(db.doc(path), data);
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
  // Every 7th item, and one nested item, already carry the target marker (v: '2').
  const atTargetPaths = [...itemPaths.filter((_, i) => i % 7 === 0), nestedPaths[0]];

  beforeAll(async () => {
    await resetProject(projectId);
    await write(db, [...itemPaths, ...nestedPaths, 'other/o1']);
    await write(db, atTargetPaths, { n: 1, v: '2' });
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

  it.each([1, 2, 3])('surveys a collection in ONE marker scan (%i workers): the total, the documents at target, and ranges covering every key exactly once', async (workers) => {
    const target = { collection: 'items' };
    const survey = await surveyTarget(db, wire, migrationOn(target), { workers, ...reader });
    expect(survey.total).toBe(itemPaths.length);
    expect(survey.atTarget).toBe(itemPaths.filter((_, i) => i % 7 === 0).length);
    // 1237 documents: ⌈1237 / 1000⌉ = 2 ranges at most, found by the scan (the emulator has no PartitionQuery).
    const desired = desiredPartitionCount(itemPaths.length, workers);
    expect(survey.method).toBe(desired === 1 ? 'whole-target' : 'key-scan');
    expect(survey.ranges).toHaveLength(desired);
    const perRange = await keysPerRange(db, wire, target, survey.ranges);
    const all = perRange.flat();
    expect(all).toHaveLength(itemPaths.length);
    expect(new Set(all).size).toBe(itemPaths.length);
    expect([...all].sort()).toEqual([...itemPaths].sort());
    const every = splitEvery(itemPaths.length, desired);
    for (const keys of perRange) {
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.length).toBeLessThanOrEqual(every + 64);
    }
    // Ranges follow each other in key order: no overlap at the boundaries.
    for (let i = 1; i < perRange.length; i++) expect(perRange[i][0] > perRange[i - 1][perRange[i - 1].length - 1]).toBe(true);
  });

  it('surveys a collection-group target from the group, subcollections included, each key once', async () => {
    const target = { collectionGroup: 'items' };
    const total = itemPaths.length + nestedPaths.length;
    const survey = await surveyTarget(db, wire, migrationOn(target), { workers: 1, ...reader });
    expect(survey.total).toBe(total);
    expect(survey.atTarget).toBe(atTargetPaths.length);
    // 1241 documents, one worker: ⌈1241 / 1000⌉ = 2 ranges.
    expect(survey.method).toBe('key-scan');
    expect(survey.ranges).toHaveLength(2);
    const all = (await keysPerRange(db, wire, target, survey.ranges)).flat();
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
