import type { NormalizedChange } from '../definitions/normalize';
import { canonicalFields, canonicalValue, sha256Hex } from './wire/canonical';
import { encodeFields, encodeValue } from './wire/codec';
import { formatFieldPath, parseFieldPath } from './wire/field-path';
import { decodeFieldsFromBytes, encodeFieldsToBytes } from './wire/value-bytes';
import { applyEntries, patchWrite, replaceWrite, valueAt, type RawEntry } from './wire/writes';
import { arrayValues, mapFields, type RawFields, type RawTimestamp, type RawValue, type RawWrite } from './wire/types';

/**
 * Before-images (DESIGN.md G4): the prior raw values of exactly the fields a migration write
 * changes, or the whole document when the write replaces it, stored in the same commit as the
 * write. Values are copied from the document as read (Firestore's own representation) and stored
 * as protobuf bytes, so restoring them is exact at the Firestore value level by construction.
 */

/** A migration's change in raw form (values encoded once, reused for the write, image and hash). */
export type RawChange = { kind: 'patch'; entries: RawEntry[] } | { kind: 'replace'; fields: RawFields };

export interface BeforeImage {
  mode: 'patch' | 'replace';
  /** patch: prior values keyed by field path (`formatFieldPath`); replace: the whole prior document. */
  values: RawFields;
  /** patch: field paths that did not exist, each at its highest missing ancestor. */
  absent: string[];
}

/** What a backup document holds (`.../runs/{runId}/backups/{backupId(path)}`). */
export interface BackupRecord {
  path: string;
  image: BeforeImage;
  beforeUpdateTime: RawTimestamp;
  /** `imageHash` of the document right after the migration's write: a later mismatch is a conflict. */
  afterHash: string;
  migrationId: string;
  runId: string;
}

/** Subcollection of a backup document holding a record too large to sit inline. */
export const BACKUP_CHUNKS_COLLECTION = 'backupChunks';
/**
 * Largest backup record (image and metadata) stored inline, and the size of each chunk otherwise. A document is at most
 * 1 MiB including its name and other fields; 900 KiB leaves room for those.
 */
export const IMAGE_CHUNK_BYTES = 900 * 1024;

export function encodeChange(change: Exclude<NormalizedChange, { kind: 'skip' }>, databaseName: string): RawChange {
  if (change.kind === 'replace') return { kind: 'replace', fields: encodeFields(change.data, databaseName) };
  return {
    kind: 'patch',
    entries: change.entries.map((entry) => ({
      path: entry.path,
      value: entry.delete ? undefined : encodeValue(entry.value, databaseName, entry.path),
    })),
  };
}

/** The migration's update of one document, conditional on the update time it was read at. */
export function changeWrite(name: string, change: RawChange, readUpdateTime: RawTimestamp): RawWrite {
  return change.kind === 'replace'
    ? replaceWrite(name, change.fields, { updateTime: readUpdateTime })
    : patchWrite(name, change.entries, { updateTime: readUpdateTime });
}

export function applyChange(fields: RawFields, change: RawChange): RawFields {
  return change.kind === 'replace' ? change.fields : applyEntries(fields, change.entries);
}

/**
 * For each written path: its prior value, or — where the path did not exist — its highest
 * missing ancestor as absent (so restoring `a.b` into a document without `a` leaves no `a: {}`).
 * Where a parent on the path holds a non-map value, the write replaces that value, so the
 * parent itself is captured. Captured paths never overlap: an ancestor covers its descendants.
 */
export function captureBeforeImage(fields: RawFields, change: RawChange): BeforeImage {
  if (change.kind === 'replace') return { mode: 'replace', values: fields, absent: [] };
  const captured: Array<{ path: string[]; value?: RawValue }> = [];
  for (const entry of change.entries) {
    let node = fields;
    for (let depth = 0; depth < entry.path.length; depth++) {
      const value = node[entry.path[depth]];
      const path = entry.path.slice(0, depth + 1);
      if (value === undefined) {
        captured.push({ path });
        break;
      }
      if (depth === entry.path.length - 1 || !value.mapValue) {
        captured.push({ path, value });
        break;
      }
      node = mapFields(value);
    }
  }
  const image: BeforeImage = { mode: 'patch', values: {}, absent: [] };
  const keys = new Set(captured.map((item) => JSON.stringify(item.path)));
  for (const item of captured) {
    const covered = item.path.some((_, i) => i < item.path.length - 1 && keys.has(JSON.stringify(item.path.slice(0, i + 1))));
    if (covered) continue;
    const key = formatFieldPath(item.path);
    if (item.value === undefined) {
      if (!image.absent.includes(key)) image.absent.push(key);
    } else {
      image.values[key] = item.value;
    }
  }
  return image;
}

/**
 * The before-image of a run's later write to a document it has written before: the earlier image
 * (the document as it was before the run first wrote it), widened by the paths only the later
 * `change` writes, at their values before it. Restoring it undoes both writes: the state before
 * the run, whatever order its writes came in. An earlier whole-document image stays as it is; a
 * later replace after a patch image becomes a whole-document image of the state before the run.
 */
export function widenBeforeImage(earlier: BeforeImage, fields: RawFields, change: RawChange): BeforeImage {
  if (earlier.mode === 'replace') return earlier;
  const earlierEntries: RawEntry[] = [
    ...Object.entries(earlier.values).map(([key, value]) => ({ path: parseFieldPath(key), value })),
    ...earlier.absent.map((key) => ({ path: parseFieldPath(key) })),
  ];
  // The document as it was before the run, at every path either write touches.
  const beforeRun = applyEntries(fields, earlierEntries);
  if (change.kind === 'replace') return { mode: 'replace', values: beforeRun, absent: [] };
  return captureBeforeImage(beforeRun, { kind: 'patch', entries: [...earlierEntries, ...change.entries] });
}

/**
 * A hash of the document's values at the image's paths (patch) or of the whole document
 * (replace). Equal to the backup's `afterHash` while nobody has changed the migrated fields.
 */
export function imageHash(fields: RawFields, image: BeforeImage): string {
  if (image.mode === 'replace') return sha256Hex(canonicalFields(fields));
  const paths = [...Object.keys(image.values), ...image.absent].sort();
  return sha256Hex(
    paths
      .map((key) => {
        const value = valueAt(fields, parseFieldPath(key));
        return `${JSON.stringify(key)}=${value === undefined ? '-' : canonicalValue(value)}`;
      })
      .join('\n'),
  );
}

/** Whether the document holds exactly its before-image (value level, map key order aside). */
export function matchesBeforeImage(fields: RawFields, image: BeforeImage): boolean {
  if (image.mode === 'replace') return canonicalFields(fields) === canonicalFields(image.values);
  for (const key of image.absent) {
    if (valueAt(fields, parseFieldPath(key)) !== undefined) return false;
  }
  for (const [key, expected] of Object.entries(image.values)) {
    const actual = valueAt(fields, parseFieldPath(key));
    if (actual === undefined || canonicalValue(actual) !== canonicalValue(expected)) return false;
  }
  return true;
}

/** Whether writing `change` would leave the document's values as they are (value level, map key order aside). */
export function changesNothing(fields: RawFields, change: RawChange): boolean {
  return matchesBeforeImage(applyChange(fields, change), captureBeforeImage(fields, change));
}

/** The write that puts the before-image back: captured paths set, absent ones deleted. */
export function restoreWrite(name: string, image: BeforeImage, readUpdateTime: RawTimestamp): RawWrite {
  if (image.mode === 'replace') return replaceWrite(name, image.values, { updateTime: readUpdateTime });
  const entries: RawEntry[] = [
    ...Object.entries(image.values).map(([key, value]) => ({ path: parseFieldPath(key), value })),
    ...image.absent.map((key) => ({ path: parseFieldPath(key) })),
  ];
  return patchWrite(name, entries, { updateTime: readUpdateTime });
}

export function backupId(path: string): string {
  return sha256Hex(path);
}

export function backupChunkName(backupName: string, index: number): string {
  return `${backupName}/${BACKUP_CHUNKS_COLLECTION}/${String(index).padStart(4, '0')}`;
}

/**
 * The writes storing a backup. The record (image and metadata) is ONE protobuf bytes field,
 * `image`, beside the document's `path`: Firestore indexes every field of every document unless
 * exempted, and the emulator always does, so two fields instead of ten make each backup's write
 * cheaper. A record larger than `IMAGE_CHUNK_BYTES` goes into chunk documents instead, the backup
 * document then holding `chunks` and `imageBytes`. `bytes` is the record's size (for the commit's
 * byte budget). Backups overwrite: the latest migration of a document in this run is the one to
 * undo.
 */
export function backupWrites(backupName: string, record: BackupRecord): { writes: RawWrite[]; bytes: number } {
  const bytes = encodeFieldsToBytes({
    mode: { stringValue: record.image.mode },
    values: { mapValue: { fields: record.image.values } },
    absent: { arrayValue: { values: record.image.absent.map((key) => ({ stringValue: key })) } },
    beforeUpdateTime: { timestampValue: record.beforeUpdateTime },
    afterHash: { stringValue: record.afterHash },
    migrationId: { stringValue: record.migrationId },
    runId: { stringValue: record.runId },
  });
  const fields: RawFields = { path: { stringValue: record.path } };
  if (bytes.length <= IMAGE_CHUNK_BYTES) {
    fields.image = { bytesValue: bytes };
    return { writes: [replaceWrite(backupName, fields)], bytes: bytes.length };
  }
  const chunkCount = Math.ceil(bytes.length / IMAGE_CHUNK_BYTES);
  fields.chunks = { integerValue: String(chunkCount) };
  fields.imageBytes = { integerValue: String(bytes.length) };
  const writes: RawWrite[] = [replaceWrite(backupName, fields)];
  for (let i = 0; i < chunkCount; i++) {
    const chunk = bytes.subarray(i * IMAGE_CHUNK_BYTES, (i + 1) * IMAGE_CHUNK_BYTES);
    writes.push(replaceWrite(backupChunkName(backupName, i), { image: { bytesValue: chunk }, index: { integerValue: String(i) } }));
  }
  return { writes, bytes: bytes.length };
}

/** How many chunk documents a stored backup has (0: the record is inline). */
export function backupChunkCount(fields: RawFields): number {
  return Number(fields.chunks?.integerValue ?? 0);
}

/** A stored backup, given its fields and (when chunked) its chunk documents' fields in index order. */
export function readBackup(fields: RawFields, chunks: readonly RawFields[] = []): BackupRecord {
  const path = fields.path?.stringValue;
  const expectedChunks = backupChunkCount(fields);
  if (!path || (expectedChunks === 0 && !fields.image?.bytesValue)) {
    throw new Error(`not a backup document (path ${JSON.stringify(path)}, ${expectedChunks === 0 ? 'no record' : `${expectedChunks} chunks`})`);
  }
  if (chunks.length !== expectedChunks) throw new Error(`backup of ${path} has ${expectedChunks} chunks, ${chunks.length} given`);
  let bytes: Buffer;
  if (expectedChunks === 0) {
    bytes = Buffer.from(fields.image!.bytesValue!);
  } else {
    bytes = Buffer.concat(chunks.map((chunk) => Buffer.from(chunk.image?.bytesValue ?? [])));
    const expectedBytes = Number(fields.imageBytes?.integerValue ?? -1);
    if (bytes.length !== expectedBytes) throw new Error(`backup of ${path} is damaged: its record has ${bytes.length} bytes, expected ${expectedBytes}`);
  }
  let stored: RawFields;
  try {
    stored = decodeFieldsFromBytes(bytes);
  } catch (error) {
    throw new Error(`backup of ${path} is damaged: its record does not decode (${(error as Error).message})`, { cause: error });
  }
  const mode = stored.mode?.stringValue;
  const beforeUpdateTime = stored.beforeUpdateTime?.timestampValue;
  if ((mode !== 'patch' && mode !== 'replace') || !beforeUpdateTime) throw new Error(`backup of ${path} is damaged: its record has no mode or no beforeUpdateTime`);
  return {
    path,
    image: { mode, values: mapFields(stored.values ?? {}), absent: arrayValues(stored.absent ?? {}).map((value) => value.stringValue ?? '') },
    // As the v1 client reads a time: int64 seconds as a string, nanos always present.
    beforeUpdateTime: { seconds: String(beforeUpdateTime.seconds ?? 0), nanos: beforeUpdateTime.nanos ?? 0 },
    afterHash: stored.afterHash?.stringValue ?? '',
    migrationId: stored.migrationId?.stringValue ?? '',
    runId: stored.runId?.stringValue ?? '',
  };
}
