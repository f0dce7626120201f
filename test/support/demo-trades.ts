import type { Firestore, QueryDocumentSnapshot } from '@google-cloud/firestore';
import { ControlPaths } from '../../functions/src/control/paths';
import { DemoDataset, type DemoSeedOptions } from '../../functions/src/demo/seed-data';
import type { DocData } from '../../functions/src/definitions/types';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';

const paths = new ControlPaths();

async function readCollection(db: Firestore, path: string): Promise<Map<string, DocData>> {
  const byId = new Map<string, DocData>();
  for await (const snapshot of db.collection(path).stream() as AsyncIterable<QueryDocumentSnapshot>) {
    byId.set(snapshot.id, snapshot.data());
  }
  return byId;
}

/**
 * Asserts, document by document, that the runs `runIds` of tradeya-trades-v2 migrated every
 * legacy demo trade exactly once and touched nothing else:
 * - each legacy trade holds its seeded fields plus exactly what `up()` derives from them, and
 *   the marker; already-v2 and malformed trades are as seeded;
 * - one before-image per legacy trade over all the runs (none missing, none twice), none for
 *   the others; the markers' `migrated` sum to the number of legacy trades;
 * - one failure record per malformed trade (invalid-source), and no other.
 */
export async function expectDemoTradesMigratedOnce(db: Firestore, seeded: DemoSeedOptions & { now: Date }, runIds: readonly string[]): Promise<void> {
  const dataset = new DemoDataset(seeded);
  const stored = await readCollection(db, 'trades');
  expect(stored.size).toBe(seeded.docs);
  const legacy: string[] = [];
  const malformed: string[] = [];
  for (let index = 0; index < seeded.docs; index++) {
    const trade = dataset.trade(index);
    const path = `trades/${trade.id}`;
    const actual = stored.get(trade.id);
    if (trade.case.kind === 'legacy') {
      legacy.push(path);
      const derived = tradesV2.up(structuredClone(trade.data), { path, id: trade.id }) as DocData;
      expect({ path, data: actual }).toEqual({ path, data: { ...trade.data, ...derived, schemaVersion: '2.0' } });
    } else {
      if (trade.case.kind !== 'alreadyV2') malformed.push(path);
      expect({ path, data: actual }).toEqual({ path, data: trade.data });
    }
  }

  const backupPaths: string[] = [];
  const failures: Array<{ path: string; errorClass: string }> = [];
  let migratedByMarkers = 0;
  for (const runId of runIds) {
    for (const backup of (await readCollection(db, paths.backups(tradesV2.id, runId))).values()) backupPaths.push(backup.path as string);
    for (const failure of (await readCollection(db, paths.failures(tradesV2.id, runId))).values()) {
      failures.push({ path: failure.path as string, errorClass: failure.errorClass as string });
    }
    for (const marker of (await readCollection(db, paths.batches(tradesV2.id, runId))).values()) migratedByMarkers += marker.migrated as number;
  }
  expect(backupPaths.length).toBe(legacy.length);
  expect(backupPaths.sort()).toEqual(legacy.sort());
  expect(migratedByMarkers).toBe(legacy.length);
  expect(failures.sort((a, b) => (a.path < b.path ? -1 : 1))).toEqual(malformed.sort().map((path) => ({ path, errorClass: 'invalid-source' })));
}
