import type { Firestore } from '@google-cloud/firestore';
import { DemoDataset, DEMO_COLLECTIONS } from '../functions/src/demo/seed-data';

export const BENCH_COLLECTION = DEMO_COLLECTIONS.trades;
/** Every 10th trade (by generator index) that is in the legacy shape: the app writer's hot set. */
const HOT_EVERY = 10;
/** Writes between BulkWriter flushes: bounds what the seeder buffers. */
const FLUSH_EVERY = 2000;

export interface SeedSpec {
  docs: number;
  seed: number;
  /** Anchors the generated timestamps: the same for every reseed, so every contender gets identical data. */
  now: Date;
}

export interface SeededTrades {
  docs: number;
  /** Legacy trades the migration changes. */
  legacy: number;
  /** Already at v2 (left alone). */
  alreadyV2: number;
  /** Fail the source schema (never migrated). */
  malformed: number;
}

/**
 * The TradeYa trades of the demo dataset (`seedDemoData`'s generator, trades only: the contenders
 * migrate that one collection, and users/conversations would double the seeding time).
 */
export async function seedTrades(db: Firestore, spec: SeedSpec): Promise<SeededTrades> {
  const dataset = new DemoDataset(spec);
  const counts: SeededTrades = { docs: 0, legacy: 0, alreadyV2: 0, malformed: 0 };
  const writer = db.bulkWriter({ throttling: false });
  let failure: Error | undefined;
  for (const trade of dataset.trades()) {
    writer.set(db.collection(BENCH_COLLECTION).doc(trade.id), trade.data).catch((error: Error) => {
      failure ??= error;
    });
    counts.docs++;
    if (trade.case.kind === 'legacy') counts.legacy++;
    else if (trade.case.kind === 'alreadyV2') counts.alreadyV2++;
    else counts.malformed++;
    if (counts.docs % FLUSH_EVERY === 0) await writer.flush();
    if (failure) break;
  }
  await writer.close();
  if (failure) throw new Error(`seeding the bench trades failed: ${failure.message}`, { cause: failure });
  return counts;
}

/** Paths of the trades the app writer changes: a hot 10 % of the collection, legacy ones only (they stay migratable). */
export function hotTradePaths(spec: SeedSpec): string[] {
  const dataset = new DemoDataset(spec);
  const paths: string[] = [];
  for (let index = 0; index < spec.docs; index += HOT_EVERY) {
    const trade = dataset.trade(index);
    if (trade.case.kind === 'legacy') paths.push(`${BENCH_COLLECTION}/${trade.id}`);
  }
  return paths;
}
