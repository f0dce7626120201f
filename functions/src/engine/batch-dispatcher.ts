/**
 * Sends the batches of one partition (a key range, or the final sweep) through the batch core,
 * pipelined. Before a batch goes, it waits for a free slot of the partition (`maxInFlight`),
 * then for the throttle's admission (the 500/50/5 ramp of each collection it writes, memory),
 * and only then for a permit of the throttle's RPC pool: the pool is the ONE bound on Firestore
 * RPCs in flight for the whole worker, and a batch waiting out a ramp or memory pause holds no
 * permit meanwhile. A batch's reads and its commit run one after the other, so one permit per
 * batch bounds its RPCs.
 *
 * Keys a commit deferred (it was full) are kept and go out as their own batch next; callers send
 * them before the next batch of new keys (`dispatchDeferred`), so key order is kept as far as
 * the checkpoint needs (see control/partitions.ts, `computeResumePoint`).
 */
import { BACKUPS_COLLECTION_ID } from '../control/paths';
import type { MigrationTarget } from '../definitions/types';
import { migrateBatch, type BatchContext, type BatchResult } from './batch-core';
import type { Throttler, WritePlan } from './throttler';
import type { RawDocument } from './wire/types';

const yieldToIo = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What the owner of the dispatcher hears about each batch. */
export interface BatchEvents {
  /** The batch took its pool permit and is on its way. */
  started(seq: number): void;
  /** The batch core returned (committed, or found committed by another delivery); `streamed`: it was given the documents. */
  settled(seq: number, result: BatchResult, streamed: boolean): void;
  /** The batch core threw: the batch's effect is unknown, the run must stop. */
  failed(seq: number, error: Error): void;
}

/** Seqs handed out must be reserved first when a crash could leave their markers behind (see `PartitionDocument.nextSeq`). */
export interface SeqReservation {
  /** Seqs below this are reserved. */
  reservedUntil: number;
  /** Reserves the seqs below `until` (e.g. writes the partition document). */
  reserve(until: number): Promise<void>;
}

/** Seqs reserved per write of a reservation. */
export const SEQ_RESERVATION_BLOCK = 64;

/**
 * The writes a batch plans per collection, for the throttle's ramp: the target collection and the
 * before-image collection each get one write per document (without before-images, only the
 * target). Labels are collection ids, as the ramp's reasons show them.
 */
export class WritePlanner {
  readonly targetLabel: string;

  constructor(
    target: MigrationTarget,
    private readonly rollbackEnabled: boolean,
  ) {
    const name = 'collection' in target ? target.collection : target.collectionGroup;
    this.targetLabel = name.slice(name.lastIndexOf('/') + 1);
  }

  plan(documents: number): WritePlan {
    return this.rollbackEnabled ? { [this.targetLabel]: documents, [BACKUPS_COLLECTION_ID]: documents } : { [this.targetLabel]: documents };
  }

  /** What a settled batch wrote: its migrated documents (a duplicate delivery wrote nothing). */
  actual(result: BatchResult): WritePlan {
    return this.plan(result.status === 'committed' ? result.migrated : 0);
  }
}

export interface DispatcherDeps {
  batch: BatchContext;
  throttle: Throttler;
  writes: WritePlanner;
  /** True once the run stops taking batches (a stop request, a failure, a lost lease). */
  stopping: () => boolean;
  events: BatchEvents;
}

export class BatchDispatcher {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly deferred: string[][] = [];
  private seq: number;
  private failures = 0;

  constructor(
    private readonly deps: DispatcherDeps,
    readonly partition: string,
    private readonly maxInFlight: number,
    firstSeq: number,
    private readonly reservation: SeqReservation | null = null,
  ) {
    if (!(Number.isInteger(maxInFlight) && maxInFlight >= 1)) throw new RangeError(`maxInFlight must be an integer ≥ 1, got ${maxInFlight}`);
    this.seq = firstSeq;
  }

  /** The next seq to hand out. */
  get nextSeq(): number {
    return this.seq;
  }

  /** Batches whose batch core threw. */
  get failedBatches(): number {
    return this.failures;
  }

  /** Keys deferred by commits and not sent again yet. */
  get hasDeferred(): boolean {
    return this.deferred.length > 0;
  }

  /**
   * Sends one batch once a slot, the throttle and a pool permit allow; false (keys not sent) when
   * the run stops meanwhile. `documents`: the keys' documents as a stream read them (see
   * `BatchInput.documents`); without them the batch core reads the documents itself.
   */
  async dispatch(keys: string[], documents?: RawDocument[]): Promise<boolean> {
    const { throttle, stopping } = this.deps;
    while (this.inFlight.size >= this.maxInFlight) await Promise.race(this.inFlight);
    if (stopping()) return false;
    if (this.reservation && this.seq >= this.reservation.reservedUntil) {
      const until = this.seq + SEQ_RESERVATION_BLOCK;
      await this.reservation.reserve(until);
      this.reservation.reservedUntil = until;
    }
    const plan = this.deps.writes.plan(keys.length);
    if (!(await throttle.admit(plan, stopping))) return false;
    await throttle.pool.acquire();
    // Let I/O callbacks already due run first: a stop request the run document's listener has
    // received but not yet delivered then stops this batch instead of the next one.
    await yieldToIo();
    if (stopping()) {
      throttle.pool.release();
      return false;
    }
    const seq = this.seq++;
    this.deps.events.started(seq);
    const task: Promise<void> = migrateBatch(this.deps.batch, { partition: this.partition, seq, keys, ...(documents && { documents }) })
      .then(
        (result) => {
          throttle.settle(plan, this.deps.writes.actual(result));
          if (result.deferredKeys.length > 0) this.deferred.push(result.deferredKeys);
          this.deps.events.settled(seq, result, documents !== undefined);
        },
        (error: Error) => {
          this.failures++;
          this.deps.events.failed(seq, error);
        },
      )
      .finally(() => {
        throttle.pool.release();
        this.inFlight.delete(task);
      });
    this.inFlight.add(task);
    return true;
  }

  /** Sends the keys earlier commits deferred; false when the run stopped first. */
  async dispatchDeferred(): Promise<boolean> {
    while (this.deferred.length > 0) {
      if (!(await this.dispatch(this.deferred[0]))) return false;
      this.deferred.shift();
    }
    return true;
  }

  /** Until nothing is in flight or deferred (batches in flight may still defer keys), or the run stops. */
  async drain(): Promise<void> {
    while (!this.deps.stopping() && (this.inFlight.size > 0 || this.deferred.length > 0)) {
      if (this.deferred.length > 0) await this.dispatchDeferred();
      else await Promise.race(this.inFlight);
    }
  }

  /** Waits for every batch in flight to settle (after a stop: their commits still land). */
  async settle(): Promise<void> {
    await Promise.all(this.inFlight);
  }
}
