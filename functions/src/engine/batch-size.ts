import type { RawValue, RawWrite } from './wire/types';

/**
 * How much one commit may carry. Firestore's client libraries cap a commit at 500 writes (the
 * emulator does not enforce it) and the API refuses requests over 10 MiB; the batch core keeps
 * to both, whatever the configured batch size.
 */
export const MAX_WRITES_PER_COMMIT = 500;
/** The batch marker, created in every commit. */
export const MARKER_WRITES = 1;
/** Under Firestore's 10 MiB request limit, with room for the request's own framing. */
export const COMMIT_BYTE_BUDGET = 9 * 1024 * 1024;
/** The emulator's gRPC server refuses messages over 4 MiB (RESOURCE_EXHAUSTED), whatever production allows. */
export const EMULATOR_COMMIT_BYTE_BUDGET = 3.5 * 1024 * 1024;

export function commitByteBudget(onEmulator: boolean): number {
  return onEmulator ? EMULATOR_COMMIT_BYTE_BUDGET : COMMIT_BYTE_BUDGET;
}

export interface WritesPerDocument {
  /** MIGRATION_ROLLBACK_ENABLED: a before-image document per migrated document. */
  rollbackEnabled: boolean;
  /** Chunk documents of an image larger than one document can hold. */
  imageChunks?: number;
}

/** The update, its before-image and the image's chunks. (A failing document costs one write: its failure record.) */
export function writesPerDocument({ rollbackEnabled, imageChunks = 0 }: WritesPerDocument): number {
  return 1 + (rollbackEnabled ? 1 + imageChunks : 0);
}

/**
 * Documents per batch: ⌊(500 − markers) / writes-per-document⌋, bounded by MIGRATION_BATCH_SIZE.
 * A batch of documents with chunked images or large values may still commit fewer (the batch
 * core defers the rest, see `CommitBudget`).
 */
export function documentsPerCommit(options: { batchSize: number; rollbackEnabled: boolean }): number {
  const byWrites = Math.floor((MAX_WRITES_PER_COMMIT - MARKER_WRITES) / writesPerDocument({ rollbackEnabled: options.rollbackEnabled }));
  return Math.max(1, Math.min(options.batchSize, byWrites));
}

/** Counts a commit's writes and bytes as documents are added; refuses what would go over. */
export class CommitBudget {
  private writeCount = MARKER_WRITES;
  private byteCount = 0;

  constructor(
    private readonly maxWrites = MAX_WRITES_PER_COMMIT,
    private readonly maxBytes = COMMIT_BYTE_BUDGET,
  ) {}

  get writes(): number {
    return this.writeCount;
  }

  get bytes(): number {
    return this.byteCount;
  }

  /** Adds one document's writes if they fit; the first document always fits (a batch makes progress). */
  tryAdd(writes: number, bytes: number, first: boolean): boolean {
    if (!first && (this.writeCount + writes > this.maxWrites || this.byteCount + bytes > this.maxBytes)) return false;
    this.writeCount += writes;
    this.byteCount += bytes;
    return true;
  }
}

/**
 * An upper estimate of a write's encoded size: names and strings by their UTF-8 length, every
 * field with a few bytes of framing. Cheap enough for the hot path, close enough for a budget
 * that keeps a safety margin.
 */
export function estimateWriteBytes(write: RawWrite): number {
  let bytes = 64 + (write.update?.name?.length ?? 0);
  const fields = write.update?.fields;
  if (fields) for (const key of Object.keys(fields)) bytes += Buffer.byteLength(key) + 8 + estimateValueBytes(fields[key] as RawValue);
  for (const path of write.updateMask?.fieldPaths ?? []) bytes += Buffer.byteLength(path) + 4;
  return bytes;
}

export function estimateValueBytes(value: RawValue): number {
  if (value.stringValue !== undefined && value.stringValue !== null) return Buffer.byteLength(value.stringValue) + 6;
  if (value.bytesValue) return value.bytesValue.length + 6;
  if (value.referenceValue) return value.referenceValue.length + 6;
  if (value.mapValue) {
    let bytes = 6;
    const fields = value.mapValue.fields ?? {};
    for (const key of Object.keys(fields)) bytes += Buffer.byteLength(key) + 8 + estimateValueBytes(fields[key] as RawValue);
    return bytes;
  }
  if (value.arrayValue) {
    let bytes = 6;
    for (const item of value.arrayValue.values ?? []) bytes += 2 + estimateValueBytes(item as RawValue);
    return bytes;
  }
  return 24;
}
