import type { Firestore } from '@google-cloud/firestore';
import type { Migration } from '../functions/src/definitions/types';
import type { ContenderOutcome } from './contender';
import { handUpdate } from './transform';

const FIREWAY_BATCH = 500;

/** A fireway-style script: `collection.get()` of everything, then batches of 500 committed one after another. */
export async function runFireway(db: Firestore, collection: string, migration: Migration): Promise<ContenderOutcome> {
  const started = performance.now();
  const latencies: number[] = [];
  const snapshot = await db.collection(collection).get();
  let migrated = 0;
  for (let start = 0; start < snapshot.docs.length; start += FIREWAY_BATCH) {
    const batch = db.batch();
    let inBatch = 0;
    for (const document of snapshot.docs.slice(start, start + FIREWAY_BATCH)) {
      const update = handUpdate(migration, document.ref.path, document.data());
      if (!update) continue;
      try {
        batch.update(document.ref, update);
        inBatch++;
      } catch {
        // A malformed document whose up() result Firestore refuses.
      }
    }
    if (inBatch === 0) continue;
    const sent = performance.now();
    await batch.commit();
    latencies.push(performance.now() - sent);
    migrated += inBatch;
  }
  return { processed: snapshot.size, migrated, elapsedMs: performance.now() - started, batchLatenciesMs: latencies };
}
