import { FieldPath, Timestamp, type Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { ControlPaths } from './paths';

export type PartitionStatus = 'pending' | 'running' | 'exhausted';

/**
 * How a run's ranges were made: Firestore's PartitionQuery, the keys-only scan fallback, or one
 * range for the whole target (too small to split).
 */
export type PartitionMethod = 'partition-query' | 'key-scan' | 'whole-target';

/**
 * `.../runs/{runId}/partitions/{p}`: one key range of the target and where its work stands.
 *
 * The range is half-open, `[startAt, endBefore)` in document-key order, as Firestore's own
 * PartitionQuery returns it (a split point is the first key of the next partition, and a key
 * has no predecessor to end the previous one "at"); `null` is the open end.
 *
 * Checkpoints are the batch markers (`{partition}-{seq}`); this document says how to read them:
 * after a resume, markers from `resumeFromSeq` on belong to the current epoch, and `cursor` is
 * where that epoch started reading (the last key of the highest contiguous committed batch).
 */
export interface PartitionDocument {
  /** The id of this document, also the `partition` of its markers: `p0000`, `p0001`, … */
  partition: string;
  index: number;
  /** First document key (full path, e.g. `trades/abc`) of the range, inclusive; null: the target's start. */
  startAt: string | null;
  /** First key after the range, exclusive; null: the target's end. */
  endBefore: string | null;
  status: PartitionStatus;
  /** First seq of the current epoch: markers below it were accounted for by `cursor`. */
  resumeFromSeq: number;
  /**
   * Seq reservation: every seq below this may have been handed to a batch, so none of them is
   * ever reused (a commit in flight when the process died may still land with it). The runner
   * reserves seqs in blocks before using them.
   */
  nextSeq: number;
  /** Last key known to be done (exclusive start of the next read); null: from `startAt`. */
  cursor: string | null;
  /** Bumped on every resume (task ids of the distributed runner include it). */
  epoch: number;
  updatedAt: Timestamp;
}

/** Seqs are zero-padded to 8 digits so marker ids sort by seq. */
export const SEQ_DIGITS = 8;
export const MAX_SEQ = 10 ** SEQ_DIGITS - 1;

export function partitionId(index: number): string {
  return `p${String(index).padStart(4, '0')}`;
}

export function markerId(partition: string, seq: number): string {
  if (!Number.isInteger(seq) || seq < 0 || seq > MAX_SEQ) throw new RangeError(`batch seq must be an integer from 0 to ${MAX_SEQ}, got ${seq}`);
  return `${partition}-${String(seq).padStart(SEQ_DIGITS, '0')}`;
}

export interface KeyRange {
  startAt: string | null;
  endBefore: string | null;
}

export function newPartitionDocument(index: number, range: KeyRange, now: Timestamp = Timestamp.now()): PartitionDocument {
  return {
    partition: partitionId(index),
    index,
    startAt: range.startAt,
    endBefore: range.endBefore,
    status: 'pending',
    resumeFromSeq: 0,
    nextSeq: 0,
    cursor: null,
    epoch: 0,
    updatedAt: now,
  };
}

/** The committed markers of one partition from a seq on, as the resume point needs them. */
export interface MarkerPosition {
  seq: number;
  lastKey: string;
  /** Keys of the batch's input after `lastKey` that its commit left to a later batch (absent: 0). */
  deferred?: number;
}

export interface ResumePoint {
  /** Continue reading after this key (null: from the partition's start). */
  cursor: string | null;
  /** First seq of the new epoch: above every seq that exists or may have been handed out. */
  resumeFromSeq: number;
  /** Highest seq of the unbroken run of markers from the old `resumeFromSeq`, or null if none. */
  contiguousThrough: number | null;
  /** Markers that landed after a gap: their documents are read again and found already migrated. */
  outOfOrder: number;
}

/**
 * Where a partition continues after a stop or crash. Commits in flight land out of order, so
 * only the unbroken run of seqs from `resumeFromSeq` proves that everything before its last key
 * is done; markers after a gap are ignored for the cursor. A batch that deferred keys (its
 * commit was full) counts as a gap after itself: its deferred keys went to a later seq while the
 * seqs between may cover later keys. The new epoch's seqs start above the highest marker and
 * above the reservation, so no seq whose marker might exist is ever reused.
 * `markers` must be sorted by seq, all ≥ `partition.resumeFromSeq`.
 */
export function computeResumePoint(
  partition: Pick<PartitionDocument, 'resumeFromSeq' | 'nextSeq' | 'cursor'>,
  markers: Iterable<MarkerPosition>,
): ResumePoint {
  const scan = new ResumePointScan(partition);
  for (const marker of markers) scan.add(marker);
  return scan.result();
}

/** `computeResumePoint` fed one marker at a time (markers are streamed: a partition may have thousands). */
export class ResumePointScan {
  private expected: number;
  private cursor: string | null;
  private contiguousThrough: number | null = null;
  private highest = -1;
  private afterGap = 0;
  private gap = false;

  constructor(private readonly partition: Pick<PartitionDocument, 'resumeFromSeq' | 'nextSeq' | 'cursor'>) {
    this.expected = partition.resumeFromSeq;
    this.cursor = partition.cursor;
  }

  add(marker: MarkerPosition): void {
    if (marker.seq < this.partition.resumeFromSeq || marker.seq <= this.highest) {
      throw new RangeError(`markers must be sorted by seq from ${this.partition.resumeFromSeq}; got ${marker.seq} after ${this.highest}`);
    }
    this.highest = marker.seq;
    if (!this.gap && marker.seq === this.expected) {
      this.cursor = marker.lastKey;
      this.contiguousThrough = marker.seq;
      this.expected++;
      if ((marker.deferred ?? 0) > 0) this.gap = true;
    } else {
      this.gap = true;
      this.afterGap++;
    }
  }

  result(): ResumePoint {
    return {
      cursor: this.cursor,
      resumeFromSeq: Math.max(this.highest + 1, this.partition.nextSeq, this.partition.resumeFromSeq),
      contiguousThrough: this.contiguousThrough,
      outOfOrder: this.afterGap,
    };
  }
}

export class PartitionStore {
  constructor(
    private readonly db: Firestore,
    private readonly paths: ControlPaths,
  ) {}

  private collection(migrationId: string, runId: string) {
    return this.db.collection(this.paths.partitions(migrationId, runId));
  }

  ref(migrationId: string, runId: string, partition: string) {
    return this.collection(migrationId, runId).doc(partition);
  }

  /** Writes a run's partition plan (500 documents per commit, the commit limit). */
  async createAll(migrationId: string, runId: string, partitions: readonly PartitionDocument[]): Promise<void> {
    for (let i = 0; i < partitions.length; i += 500) {
      const batch = this.db.batch();
      for (const partition of partitions.slice(i, i + 500)) batch.create(this.ref(migrationId, runId, partition.partition), partition);
      await batch.commit();
    }
  }

  async list(migrationId: string, runId: string): Promise<PartitionDocument[]> {
    const snapshot = await this.collection(migrationId, runId).orderBy('index').get();
    return snapshot.docs.map((doc) => doc.data() as PartitionDocument);
  }

  async update(migrationId: string, runId: string, partition: string, changes: Partial<Omit<PartitionDocument, 'partition' | 'index'>>): Promise<void> {
    await this.ref(migrationId, runId, partition).update({ ...changes, updatedAt: Timestamp.now() });
  }

  /**
   * The markers of `partition` from `fromSeq` on, in seq order, read by one stream over the
   * marker ids (which sort by seq: no index needed) with only the fields a resume needs.
   */
  async *markersFrom(migrationId: string, runId: string, partition: string, fromSeq: number): AsyncGenerator<MarkerPosition> {
    const batches = this.db.collection(this.paths.batches(migrationId, runId));
    const query = batches
      .where(FieldPath.documentId(), '>=', batches.doc(markerId(partition, Math.min(fromSeq, MAX_SEQ))))
      .where(FieldPath.documentId(), '<=', batches.doc(markerId(partition, MAX_SEQ)))
      .orderBy(FieldPath.documentId())
      .select('seq', 'lastKey', 'deferred');
    for await (const snapshot of query.stream() as AsyncIterable<QueryDocumentSnapshot>) {
      const { seq, lastKey, deferred } = snapshot.data() as MarkerPosition;
      yield { seq, lastKey, deferred: deferred ?? 0 };
    }
  }

  /** Reads the markers and computes where `partition` continues (see `computeResumePoint`). */
  async resumePoint(migrationId: string, runId: string, partition: PartitionDocument): Promise<ResumePoint> {
    const scan = new ResumePointScan(partition);
    for await (const marker of this.markersFrom(migrationId, runId, partition.partition, partition.resumeFromSeq)) scan.add(marker);
    return scan.result();
  }
}
