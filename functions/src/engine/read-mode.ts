/**
 * How a partition reads its documents (DESIGN.md "Reading"), decided from its own batches:
 * - `documents`: ONE stream of whole documents feeds the batch core, which commits without
 *   reading again (preconditions on the streamed update times keep G1). Cheapest while the
 *   partition is quiet: one read per document.
 * - `keys`: a keys-only stream, and each batch reads its documents just before transforming them.
 *   A stream is a snapshot of when it started, so where the app writes, streamed documents go
 *   stale and their batch fails its preconditions: a wasted commit plus the read anyway.
 * A partition starts with `documents` and switches to `keys` for good (its remaining range) once
 * enough of its recent streamed batches had to re-read; the next partition starts again with
 * `documents`, so a hot spot does not slow the whole collection down.
 */
import type { BatchResult } from './batch-core';

export type ReadMode = 'documents' | 'keys';

/** Recent streamed batches the decision looks at. */
export const READ_MODE_WINDOW = 8;
/**
 * Re-read batches in the window that switch the partition to `keys`. Measured on the emulator, a
 * stale batch costs about four times what reading a batch fresh adds (the failed commit's
 * encoding and precondition check, then the read): past one in four, fresh reads are cheaper.
 */
export const READ_MODE_SWITCH_AT = 2;

export class ReadModePolicy {
  private current: ReadMode;
  private readonly recent: boolean[] = [];

  constructor(initial: ReadMode = 'documents') {
    this.current = initial;
  }

  get mode(): ReadMode {
    return this.current;
  }

  /** A settled batch that was given streamed documents; others say nothing about the stream. */
  recordStreamed(result: Pick<BatchResult, 'preconditionRetries'>): void {
    if (this.current !== 'documents') return;
    this.recent.push(result.preconditionRetries > 0);
    if (this.recent.length > READ_MODE_WINDOW) this.recent.shift();
    if (this.recent.filter(Boolean).length >= READ_MODE_SWITCH_AT) this.current = 'keys';
  }
}
