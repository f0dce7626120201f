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
 * - the fallback: split points sampled from ONE streaming scan that the run makes anyway
 *   (`target-survey.ts`: it also counts the target) — memory holds a bounded sample of keys.
 * Target filters (`where`) are not applied to PartitionQuery's split points (it cannot); the
 * runner applies them when it reads each range.
 */
import type { DocumentReference, Firestore } from '@google-cloud/firestore';
import type { MigrationTarget } from '../definitions/types';
import type { KeyRange, PartitionMethod } from '../control/partitions';

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
 * Keys between split points for `total` keys and `desired` ranges: ⌈total / desired⌉, so at most
 * `desired − 1` split points.
 */
export function splitEvery(total: number, desired: number): number {
  if (!(Number.isInteger(desired) && desired >= 1)) throw new RangeError(`desired partitions must be an integer ≥ 1, got ${desired}`);
  return Math.max(1, Math.ceil(total / desired));
}

/** Candidate keys kept per desired range at most: the sample's resolution (a range is off by < 1/4 of its size). */
const CANDIDATES_PER_RANGE = 8;
const FIRST_SPACING = 64;

/**
 * Split points from a scan whose length is unknown until it ends: keeps every `spacing`-th key
 * as a candidate, and when the candidates reach CANDIDATES_PER_RANGE × the most ranges a run can
 * want, drops every other one and doubles the spacing — so memory stays bounded and the
 * candidates stay evenly spaced. At the end the total is known, and the candidate nearest to
 * each ideal boundary (every ⌈total / desired⌉ keys) becomes a split point: each range is within
 * one spacing (≤ a quarter of a range) of the ideal size.
 */
export class SplitPointSampler {
  private readonly candidates: string[] = [];
  private spacingKeys = FIRST_SPACING;
  private position = 0;
  private readonly maxCandidates: number;

  constructor(private readonly workers: number) {
    this.maxCandidates = CANDIDATES_PER_RANGE * desiredPartitionCount(Number.MAX_SAFE_INTEGER, workers);
  }

  /** The next key of the scan, in key order. */
  add(key: string): void {
    if (this.position > 0 && this.position % this.spacingKeys === 0) {
      this.candidates.push(key);
      if (this.candidates.length >= this.maxCandidates) {
        // Candidates sit at positions spacing, 2·spacing, …: the odd indexes are the multiples of 2·spacing.
        let kept = 0;
        for (let i = 1; i < this.candidates.length; i += 2) this.candidates[kept++] = this.candidates[i];
        this.candidates.length = kept;
        this.spacingKeys *= 2;
      }
    }
    this.position++;
  }

  /** Keys added so far. */
  get total(): number {
    return this.position;
  }

  /** Keys between neighbouring candidates (the precision of the split points). */
  get spacing(): number {
    return this.spacingKeys;
  }

  /** Candidates held (bounded by CANDIDATES_PER_RANGE × the largest desired partition count). */
  get held(): number {
    return this.candidates.length;
  }

  /** The split points for the keys added: at most desiredPartitionCount(total) − 1, in key order, distinct. */
  splitPoints(): string[] {
    const desired = desiredPartitionCount(this.position, this.workers);
    const every = splitEvery(this.position, desired);
    const points: string[] = [];
    let last = -1;
    for (let k = 1; k < desired; k++) {
      // Candidate i sits at position (i + 1) · spacing.
      const index = Math.round((k * every) / this.spacingKeys) - 1;
      if (index <= last || index >= this.candidates.length) continue;
      points.push(this.candidates[index]);
      last = index;
    }
    return points;
  }
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
