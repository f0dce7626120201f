import { MAX_WRITES_PER_COMMIT } from './batch-size';
import { backupChunkCount, backupChunkName, imageHash, matchesBeforeImage, readBackup, restoreWrite, type BackupRecord } from './before-image';
import { Backoff, isTransient, withRetry } from './retry';
import type { WireClient } from './wire/client';
import { grpcCode, Status } from './wire/status';
import type { RawDocument, RawWrite } from './wire/types';

/** A document to put back, and the backup document (`.../runs/{runId}/backups/{id}`) holding its before-image. */
export interface RestoreTarget {
  path: string;
  backupPath: string;
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

export interface RestoreOptions {
  /** Restore conflicting documents too (their migrated fields changed after the migration). */
  force?: boolean;
  maxRetries: number;
  retryDelayMs: number;
  /** Deadline of one commit call. */
  timeoutMs: number;
}

export interface RestoreResult {
  outcomes: Map<string, RestoreOutcome>;
  preconditionRetries: number;
  transientRetries: number;
}

/**
 * Puts before-images back in one atomic commit (DESIGN.md G4): captured fields are set, fields
 * that were absent are deleted, a replaced document is written whole — each under a precondition
 * on the update time read in this call. After a FAILED_PRECONDITION (a document changed, or an
 * earlier attempt of this commit landed although the call failed) everything is re-read and
 * decided again: a document equal to its before-image counts as restored.
 */
export async function restoreDocuments(wire: WireClient, targets: readonly RestoreTarget[], options: RestoreOptions): Promise<RestoreResult> {
  if (targets.length > MAX_WRITES_PER_COMMIT) throw new Error(`restoreDocuments takes at most ${MAX_WRITES_PER_COMMIT} documents per call, got ${targets.length}`);
  const backoff = new Backoff({ baseDelayMs: options.retryDelayMs, maxRetries: options.maxRetries });
  const result: RestoreResult = { outcomes: new Map(), preconditionRetries: 0, transientRetries: 0 };
  const countRetry = () => result.transientRetries++;
  const timeout = { timeoutMs: options.timeoutMs };
  const backups = await readBackups(wire, targets, backoff, countRetry, timeout);

  const attempted = new Set<string>();
  let previousVersions = new Map<string, string>();
  for (;;) {
    const documents = await withRetry(() => wire.batchGet(targets.map((target) => target.path), timeout), backoff, countRetry);
    const exhausted = result.preconditionRetries > options.maxRetries;
    const versions = new Map<string, string>();
    const writes: RawWrite[] = [];
    let givenUp = 0;
    for (let i = 0; i < targets.length; i++) {
      const { path } = targets[i];
      const document = documents[i];
      const backup = backups.get(path);
      if (!backup) {
        result.outcomes.set(path, 'missing-backup');
        continue;
      }
      if (!document.exists) {
        result.outcomes.set(path, 'missing-document');
        continue;
      }
      const version = versionOf(document);
      versions.set(path, version);
      if (matchesBeforeImage(document.fields, backup.image)) {
        result.outcomes.set(path, attempted.has(path) ? 'restored' : 'already-restored');
      } else if (!options.force && imageHash(document.fields, backup.image) !== backup.afterHash) {
        result.outcomes.set(path, 'conflict');
      } else if (exhausted && previousVersions.has(path) && previousVersions.get(path) !== version) {
        result.outcomes.set(path, 'precondition-exhausted');
        givenUp++;
      } else {
        writes.push(restoreWrite(wire.documentName(path), backup.image, document.updateTime));
        attempted.add(path);
        result.outcomes.set(path, 'restored');
      }
    }
    if (writes.length === 0) return result;
    if (exhausted && givenUp === 0 && result.preconditionRetries > options.maxRetries + 1) {
      throw new Error('restore: the commit keeps failing its preconditions although no document changed between reads');
    }
    try {
      await wire.commit(writes, timeout);
      return result;
    } catch (error) {
      const code = grpcCode(error);
      if (code === Status.FAILED_PRECONDITION || code === Status.NOT_FOUND) {
        result.preconditionRetries++;
      } else if (isTransient(error) && (await backoff.wait())) {
        result.transientRetries++;
      } else {
        throw error;
      }
    }
    previousVersions = versions;
  }
}

async function readBackups(
  wire: WireClient,
  targets: readonly RestoreTarget[],
  backoff: Backoff,
  onRetry: () => void,
  timeout: { timeoutMs: number },
): Promise<Map<string, BackupRecord>> {
  const stored = await withRetry(() => wire.batchGet(targets.map((target) => target.backupPath), timeout), backoff, onRetry);
  const chunkPaths: string[] = [];
  for (const backup of stored) {
    if (!backup.exists) continue;
    for (let i = 0; i < backupChunkCount(backup.fields); i++) chunkPaths.push(wire.documentPath(backupChunkName(wire.documentName(backup.path), i)));
  }
  const chunks = new Map<string, RawDocument>();
  if (chunkPaths.length > 0) {
    for (const chunk of await withRetry(() => wire.batchGet(chunkPaths, timeout), backoff, onRetry)) chunks.set(chunk.path, chunk);
  }
  const records = new Map<string, BackupRecord>();
  targets.forEach((target, i) => {
    const backup = stored[i];
    if (!backup.exists) return;
    const chunkFields = Array.from({ length: backupChunkCount(backup.fields) }, (_, index) => {
      const chunk = chunks.get(wire.documentPath(backupChunkName(wire.documentName(backup.path), index)));
      if (!chunk?.exists) throw new Error(`backup ${backup.path} is missing its chunk ${index}`);
      return chunk.fields;
    });
    const record = readBackup(backup.fields, chunkFields);
    if (record.path !== target.path) throw new Error(`backup ${target.backupPath} belongs to ${record.path}, not ${target.path}`);
    records.set(target.path, record);
  });
  return records;
}

function versionOf(document: Extract<RawDocument, { exists: true }>): string {
  return `${document.updateTime.seconds}.${document.updateTime.nanos ?? 0}`;
}
