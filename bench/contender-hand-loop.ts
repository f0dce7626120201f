import type { Firestore, QueryDocumentSnapshot, WriteBatch } from '@google-cloud/firestore';
import type { Migration } from '../functions/src/definitions/types';
import type { ContenderOutcome } from './contender';
import { handUpdate } from './transform';

/** Commits in flight: the figure DESIGN.md's prototypes used. */
export const HAND_LOOP_IN_FLIGHT = 8;
/** Documents per WriteBatch; the fastest of 250 and 500 measured here (see bench/README). */
export const HAND_LOOP_BATCH = 500;

/**
 * The best hand-written loop: ONE streaming query (`for await` over `query.stream()`: the stream
 * pauses while the loop waits, so memory stays bounded) and pipelined WriteBatch commits of the
 * `up()` results — no before-images, no preconditions, no checkpoints, no validation.
 */
export async function runHandLoop(db: Firestore, collection: string, migration: Migration): Promise<ContenderOutcome> {
  const started = performance.now();
  const latencies: number[] = [];
  const inFlight = new Set<Promise<void>>();
  let failure: Error | undefined;
  let processed = 0;
  let migrated = 0;
  let batch: WriteBatch = db.batch();
  let inBatch = 0;

  const send = async () => {
    while (inFlight.size >= HAND_LOOP_IN_FLIGHT) await Promise.race(inFlight);
    if (failure) throw failure;
    const sent = performance.now();
    const commit: Promise<void> = batch
      .commit()
      .then(
        () => void latencies.push(performance.now() - sent),
        (error: Error) => void (failure ??= error),
      )
      .finally(() => inFlight.delete(commit));
    inFlight.add(commit);
    migrated += inBatch;
    batch = db.batch();
    inBatch = 0;
  };

  for await (const snapshot of db.collection(collection).stream() as AsyncIterable<QueryDocumentSnapshot>) {
    processed++;
    const update = handUpdate(migration, snapshot.ref.path, snapshot.data());
    if (!update) continue;
    try {
      batch.update(snapshot.ref, update);
    } catch {
      // A malformed document whose up() result Firestore refuses (e.g. an undefined creator).
      continue;
    }
    if (++inBatch === HAND_LOOP_BATCH) await send();
  }
  if (inBatch > 0) await send();
  await Promise.all(inFlight);
  if (failure) throw failure;
  return { processed, migrated, elapsedMs: performance.now() - started, batchLatenciesMs: latencies };
}
