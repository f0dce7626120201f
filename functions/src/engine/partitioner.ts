/**
 * Splits a migration's target into key ranges (partitions) that workers process independently.
 *
 * Firestore's PartitionQuery (`CollectionGroup.getPartitions`) is the cheap way: the server picks
 * split points without reading the documents. It exists only for collection groups, takes no
 * filters and spans every collection with that id; the emulator does not implement it
 * (UNIMPLEMENTED). So:
 * - collection-group target: PartitionQuery, or the key-scan fallback on UNIMPLEMENTED;
 * - plain collection target: PartitionQuery over the group of the collection's id, keeping only
 *   split points that are documents directly in the target collection. Every other split point
 *   lies outside the collection's key range or in a subcollection beneath one of its documents;
 *   dropping a split point merges its two neighbouring ranges, so the ranges still cover the
 *   collection without gaps or overlaps, and the first and last are opened to the collection's
 *   start and end. Falls back like the group on UNIMPLEMENTED;
 * - the fallback: ONE keys-only streaming scan (`select()`, backpressure) that keeps every k-th
 *   key as a split point — memory holds the split points only.
 * Target filters (`where`) are not applied to split points (PartitionQuery cannot); the runner
 * applies them when it reads each range.
 */
import { FieldPath, type DocumentReference, type Firestore, type Query } from '@google-cloud/firestore';
import type { MigrationTarget } from '../definitions/types';
import type { KeyRange, PartitionMethod } from '../control/partitions';
import { streamKeys, type KeyReaderOptions } from './key-reader';
import { targetQuery } from './planner';
import type { WireClient } from './wire/client';

/** gRPC status UNIMPLEMENTED: the emulator's answer to PartitionQuery. */
const GRPC_UNIMPLEMENTED = 12;

export interface PartitionPlan {
  method: PartitionMethod;
  ranges: KeyRange[];
}

/**
 * Below this many documents per partition, splitting costs more (one stream each) than it saves.
 */
export const MIN_DOCUMENTS_PER_PARTITION = 1000;
/**
 * Partitions per worker slot: a worker that finishes its range early takes the next one, so the
 * run does not wait on one slow range at the end.
 */
export const PARTITIONS_PER_WORKER = 4;

/** How many ranges to ask for, for `total` documents and `workers` partitions in flight. */
export function desiredPartitionCount(total: number, workers: number): number {
  if (!(Number.isInteger(total) && total >= 0)) throw new RangeError(`total must be an integer ≥ 0, got ${total}`);
  if (!(Number.isInteger(workers) && workers >= 1)) throw new RangeError(`workers must be an integer ≥ 1, got ${workers}`);
  return Math.max(1, Math.min(workers * PARTITIONS_PER_WORKER, Math.ceil(total / MIN_DOCUMENTS_PER_PARTITION)));
}

/**
 * Keys between split points for the scan fallback: ⌈total / desired⌉, so the scan yields at most
 * `desired − 1` split points (more only if the target grew after it was counted).
 */
export function splitEvery(total: number, desired: number): number {
  if (!(Number.isInteger(desired) && desired >= 1)) throw new RangeError(`desired partitions must be an integer ≥ 1, got ${desired}`);
  return Math.max(1, Math.ceil(total / desired));
}

/** Whether the key at 0-based `position` of the scan starts a new range. */
export function isSplitPoint(position: number, every: number): boolean {
  return position > 0 && position % every === 0;
}

/** Split points (sorted, distinct keys) → the ranges they delimit: one more range than points. */
export function rangesFromSplitPoints(points: readonly string[]): KeyRange[] {
  const bounds: Array<string | null> = [null, ...points, null];
  return points.length === 0 ? [{ startAt: null, endBefore: null }] : bounds.slice(0, -1).map((startAt, i) => ({ startAt, endBefore: bounds[i + 1] }));
}

/** The parent collection path of a document path (`users/u1/trades/t1` → `users/u1/trades`). */
function parentCollection(documentPath: string): string {
  return documentPath.slice(0, documentPath.lastIndexOf('/'));
}

/** The split points of a collection-group partitioning that are documents directly in `collectionPath`. */
export function keepCollectionSplitPoints(collectionPath: string, points: readonly string[]): string[] {
  return points.filter((point) => parentCollection(point) === collectionPath);
}

export function isUnimplemented(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { code?: unknown }).code === GRPC_UNIMPLEMENTED;
}

function groupIdOf(target: MigrationTarget): string {
  if ('collectionGroup' in target && target.collectionGroup !== undefined) return target.collectionGroup;
  const path = (target as { collection: string }).collection;
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Split points from Firestore's PartitionQuery; throws its error (UNIMPLEMENTED on the emulator). */
export async function partitionQuerySplitPoints(db: Firestore, target: MigrationTarget, desired: number): Promise<string[]> {
  const points: string[] = [];
  // The SDK asks for `desired − 1` split points and orders them by key.
  for await (const partition of db.collectionGroup(groupIdOf(target)).getPartitions(desired)) {
    const start = partition.startAt?.[0] as DocumentReference | undefined;
    if (start) points.push(start.path);
  }
  if ('collection' in target && target.collection !== undefined) return keepCollectionSplitPoints(target.collection, points);
  return points;
}

/** Split points from one keys-only scan of the target: every `every`-th key. */
export async function scanSplitPoints(db: Firestore, wire: WireClient, target: MigrationTarget, every: number, options: KeyReaderOptions): Promise<string[]> {
  const points: string[] = [];
  let position = 0;
  for await (const key of streamKeys(db, wire, keysOnly(targetQuery(db, target)), options)) {
    if (isSplitPoint(position, every)) points.push(key);
    position++;
  }
  return points;
}

/** Reads document keys only, in key order. */
export function keysOnly(query: Query): Query {
  return query.select().orderBy(FieldPath.documentId());
}

export interface PartitionOptions extends KeyReaderOptions {
  /** Documents of the target (a count aggregation), which sizes the ranges. */
  total: number;
  /** Partitions in flight at once (MIGRATION_CONCURRENT_BATCHES). */
  workers: number;
}

/** The target's key ranges: PartitionQuery where Firestore has it, else the key scan. */
export async function planPartitions(db: Firestore, wire: WireClient, target: MigrationTarget, options: PartitionOptions): Promise<PartitionPlan> {
  const desired = desiredPartitionCount(options.total, options.workers);
  if (desired === 1) return { method: 'whole-target', ranges: rangesFromSplitPoints([]) };
  try {
    return { method: 'partition-query', ranges: rangesFromSplitPoints(await partitionQuerySplitPoints(db, target, desired)) };
  } catch (error) {
    if (!isUnimplemented(error)) throw error;
  }
  const every = splitEvery(options.total, desired);
  return { method: 'key-scan', ranges: rangesFromSplitPoints(await scanSplitPoints(db, wire, target, every, options)) };
}
