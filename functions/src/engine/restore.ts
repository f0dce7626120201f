import { randomUUID } from 'node:crypto';
import { MAX_WRITES_PER_COMMIT } from './batch-size';
import { backupChunkCount, backupChunkName, imageHash, matchesBeforeImage, readBackup, restoreWrite, type BackupRecord } from './before-image';
import { Backoff, isTransient, withRetry } from './retry';
import type { WireClient } from './wire/client';
import { parseFieldPath } from './wire/field-path';
import { grpcCode, Status } from './wire/status';
import { applyEntries } from './wire/writes';
import type { RawDocument, RawFields, RawWrite } from './wire/types';

/** A document to put back, and the backup document (`.../runs/{runId}/backups/{id}`) holding its before-image. */
export interface RestoreTarget {
  path: string;
  backupPath: string;
  /** The backup already read (e.g. listed by the rollback); undefined: read here. null: the backup does not exist. */
  backup?: BackupRecord | null;
}

export type RestoreOutcome =
  /** Written back by this call (also when an earlier attempt of this call landed). */
  | 'restored'
  /** Already equal to its before-image before this call wrote anything. */
  | 'already-restored'
  /** Its restored fields changed after the migration wrote them: left alone unless `force`. */
  | 'conflict'
  /** Deleted since the migration: not recreated. */
  | 'missing-document'
  | 'missing-backup'
  /** Kept changing between read and commit past the retry limit. */
  | 'precondition-exhausted';

/** What a document needs, judged from its current state and its backup: shared by assessment and execution. */
export type RestoreClass = 'restore' | 'already-restored' | 'conflict' | 'forced' | 'missing-document' | 'missing-backup';

/**
 * The pure decision for one document (DESIGN.md G4): equal to its before-image → nothing to do; its
 * migrated fields (the image's paths) still hash to the backup's `afterHash` → restore; otherwise
 * the app changed them after the migration → conflict (restored only with `force`). Fields
 * outside the image (a conversation's new message) take no part in either test.
 */
export function classifyRestore(document: RawDocument | undefined, backup: BackupRecord | null | undefined, force = false): RestoreClass {
  if (!backup) return 'missing-backup';
  if (!document?.exists) return 'missing-document';
  if (matchesBeforeImage(document.fields, backup.image)) return 'already-restored';
  if (imageHash(document.fields, backup.image) === backup.afterHash) return 'restore';
  return force ? 'forced' : 'conflict';
}

/** A checkpoint created in the same commit as the restores (create-only: a second commit of the batch fails). */
export interface RestoreMarker {
  path: string;
  /** The marker's fields for the outcomes this commit records; `commitId` is added. */
  fields(outcomes: ReadonlyMap<string, RestoreOutcome>, forced: ReadonlySet<string>): RawFields;
}

export interface RestoreOptions {
  /** Restore conflicting documents too (their migrated fields changed after the migration). */
  force?: boolean;
  maxRetries: number;
  retryDelayMs: number;
  /** Deadline of one commit call. */
  timeoutMs: number;
  /** Commit this marker with the restores; a commit is then made even when nothing needs restoring. */
  marker?: RestoreMarker;
}

export interface RestoreResult {
  /**
   * `committed`: this call's commit landed (or there was nothing to write and no marker);
   * `duplicate`: the marker existed already — another delivery committed this batch, whose
   * marker fields are in `marker` and whose outcomes are not known here.
   */
  status: 'committed' | 'duplicate';
  outcomes: Map<string, RestoreOutcome>;
  /** Conflicts restored because of `force` (their outcome is `restored`). */
  forced: Set<string>;
  /** The stored marker's fields when `duplicate`. */
  marker: RawFields | null;
  preconditionRetries: number;
  transientRetries: number;
}

/**
 * Puts before-images back in one atomic commit (DESIGN.md G4): captured fields are set, fields
 * that were absent are deleted, a replaced document is written whole — each under a precondition
 * on the update time read in this call. After a FAILED_PRECONDITION (a document changed, or an
 * earlier attempt of this commit landed although the call failed) everything is re-read and
 * decided again: a document equal to its before-image counts as restored. With a marker, the
 * marker is read with the documents: one carrying this call's commit id means an attempt that
 * reported failure had landed (its outcomes stand, nothing is miscounted as a conflict); one
 * carrying another id means a duplicate delivery.
 */
export async function restoreDocuments(wire: WireClient, targets: readonly RestoreTarget[], options: RestoreOptions): Promise<RestoreResult> {
  const limit = MAX_WRITES_PER_COMMIT - (options.marker ? 1 : 0);
  if (targets.length > limit) throw new Error(`restoreDocuments takes at most ${limit} documents per call, got ${targets.length}`);
  const backoff = new Backoff({ baseDelayMs: options.retryDelayMs, maxRetries: options.maxRetries });
  const retries = { preconditionRetries: 0, transientRetries: 0 };
  const countRetry = () => retries.transientRetries++;
  const timeout = { timeoutMs: options.timeoutMs };
  const backups = await readBackups(wire, targets, backoff, countRetry, timeout);
  const commitId = randomUUID();
  const marker = options.marker;
  const readPaths = [...targets.map((target) => target.path), ...(marker ? [marker.path] : [])];

  const attempted = new Set<string>();
  let previousVersions = new Map<string, string>();
  // The outcomes of the latest commit attempt: what stands if that attempt turns out to have landed.
  let lastAttempt: { outcomes: Map<string, RestoreOutcome>; forced: Set<string> } | null = null;
  let markerExpected = false;
  for (;;) {
    const read = await withRetry(() => wire.batchGet(readPaths, timeout), backoff, countRetry);
    if (marker) {
      const stored = read[targets.length];
      if (stored.exists) {
        if (stored.fields.commitId?.stringValue === commitId && lastAttempt) return { status: 'committed', ...lastAttempt, marker: null, ...retries };
        return { status: 'duplicate', outcomes: new Map(), forced: new Set(), marker: stored.fields, ...retries };
      }
      if (markerExpected) throw new Error(`the commit of ${marker.path} reported ALREADY_EXISTS, but the marker does not exist`);
    }
    const exhausted = retries.preconditionRetries > options.maxRetries;
    const outcomes = new Map<string, RestoreOutcome>();
    const forced = new Set<string>();
    const versions = new Map<string, string>();
    const writes: RawWrite[] = [];
    let givenUp = 0;
    for (let i = 0; i < targets.length; i++) {
      const { path } = targets[i];
      const document = read[i];
      const backup = backups.get(path);
      const decision = classifyRestore(document, backup, options.force);
      if (document.exists) versions.set(path, versionOf(document));
      if (decision === 'already-restored') {
        outcomes.set(path, attempted.has(path) ? 'restored' : 'already-restored');
        if (attempted.has(path) && lastAttempt?.forced.has(path)) forced.add(path);
      } else if (decision === 'restore' || decision === 'forced') {
        const version = versions.get(path)!;
        if (exhausted && previousVersions.has(path) && previousVersions.get(path) !== version) {
          outcomes.set(path, 'precondition-exhausted');
          givenUp++;
          continue;
        }
        if (!document.exists || !backup) throw new Error(`unreachable: ${path} classified ${decision} without document or backup`);
        writes.push(restoreWrite(wire.documentName(path), backup.image, document.updateTime));
        attempted.add(path);
        outcomes.set(path, 'restored');
        if (decision === 'forced') forced.add(path);
      } else {
        outcomes.set(path, decision);
      }
    }
    if (writes.length === 0 && !marker) return { status: 'committed', outcomes, forced, marker: null, ...retries };
    if (exhausted && givenUp === 0 && retries.preconditionRetries > options.maxRetries + 1) {
      throw new Error('restore: the commit keeps failing its preconditions although no document changed between reads');
    }
    if (marker) {
      writes.push({
        update: { name: wire.documentName(marker.path), fields: { ...marker.fields(outcomes, forced), commitId: { stringValue: commitId } } },
        currentDocument: { exists: false },
        updateTransforms: [{ fieldPath: 'committedAt', setToServerValue: 'REQUEST_TIME' }],
      });
    }
    lastAttempt = { outcomes, forced };
    try {
      await wire.commit(writes, timeout);
      return { status: 'committed', outcomes, forced, marker: null, ...retries };
    } catch (error) {
      const code = grpcCode(error);
      if (code === Status.ALREADY_EXISTS && marker) {
        // Only the marker is created with exists=false: the batch has been committed already.
        markerExpected = true;
      } else if (code === Status.FAILED_PRECONDITION || code === Status.NOT_FOUND) {
        retries.preconditionRetries++;
      } else if (isTransient(error) && (await backoff.wait())) {
        // Possibly landed: the next read (the documents, and the marker when there is one) tells.
        retries.transientRetries++;
      } else {
        throw error;
      }
    }
    previousVersions = versions;
  }
}

/** Reads the backups (and their chunks) of the targets that do not carry theirs already. */
export async function readBackups(
  wire: WireClient,
  targets: readonly RestoreTarget[],
  backoff: Backoff,
  onRetry: () => void,
  timeout: { timeoutMs: number },
): Promise<Map<string, BackupRecord>> {
  const records = new Map<string, BackupRecord>();
  const toRead = targets.filter((target) => {
    if (target.backup === undefined) return true;
    if (target.backup !== null) records.set(target.path, target.backup);
    return false;
  });
  if (toRead.length === 0) return records;
  const stored = await withRetry(() => wire.batchGet(toRead.map((target) => target.backupPath), timeout), backoff, onRetry);
  const documents = await readBackupDocuments(wire, stored, backoff, onRetry, timeout);
  toRead.forEach((target, i) => {
    const record = documents[i];
    if (!record) return;
    if (record.path !== target.path) throw new Error(`backup ${target.backupPath} belongs to ${record.path}, not ${target.path}`);
    records.set(target.path, record);
  });
  return records;
}

/**
 * Backup documents as read (in order) → their records, reading the chunks of chunked images;
 * null for a backup that does not exist.
 */
export async function readBackupDocuments(
  wire: WireClient,
  stored: readonly RawDocument[],
  backoff: Backoff,
  onRetry: () => void,
  timeout: { timeoutMs: number },
): Promise<Array<BackupRecord | null>> {
  const chunkPaths: string[] = [];
  for (const backup of stored) {
    if (!backup.exists) continue;
    for (let i = 0; i < backupChunkCount(backup.fields); i++) chunkPaths.push(wire.documentPath(backupChunkName(wire.documentName(backup.path), i)));
  }
  const chunks = new Map<string, RawDocument>();
  if (chunkPaths.length > 0) {
    for (const chunk of await withRetry(() => wire.batchGet(chunkPaths, timeout), backoff, onRetry)) chunks.set(chunk.path, chunk);
  }
  return stored.map((backup) => {
    if (!backup.exists) return null;
    const chunkFields = Array.from({ length: backupChunkCount(backup.fields) }, (_, index) => {
      const chunk = chunks.get(wire.documentPath(backupChunkName(wire.documentName(backup.path), index)));
      if (!chunk?.exists) throw new Error(`backup ${backup.path} is missing its chunk ${index}`);
      return chunk.fields;
    });
    return readBackup(backup.fields, chunkFields);
  });
}

function versionOf(document: Extract<RawDocument, { exists: true }>): string {
  return `${document.updateTime.seconds}.${document.updateTime.nanos ?? 0}`;
}

/** The fields a document would have once `image` is restored into it (the assessment's simulation of a restore). */
export function fieldsAfterRestore(fields: RawFields, image: BackupRecord['image']): RawFields {
  if (image.mode === 'replace') return image.values;
  return applyEntries(fields, [
    ...Object.entries(image.values).map(([key, value]) => ({ path: parseFieldPath(key), value })),
    ...image.absent.map((key) => ({ path: parseFieldPath(key) })),
  ]);
}
