import { markerId } from '../control/partitions';
import { backupId } from '../engine/before-image';
import { Backoff, withRetry } from '../engine/retry';
import { readBackupDocuments, restoreDocuments, type RestoreOutcome } from '../engine/restore';
import type { RawFields } from '../engine/wire/types';
import { nextBackupIds } from './source-runs';
import type { RollbackBatchInput, RollbackBatchResult, RollbackConflict, RollbackContext, RollbackTotals } from './types';

/** `{sourceRunId}-{seq:08}`: the markers of one source run sort by seq and share a prefix. */
export function rollbackMarkerId(sourceRunId: string, seq: number): string {
  return markerId(sourceRunId, seq);
}

export const ZERO_ROLLBACK_COUNTS: Omit<RollbackTotals, 'batches'> = Object.freeze({
  restored: 0, alreadyRestored: 0, conflicts: 0, forced: 0, missingDocuments: 0, missingBackups: 0, failed: 0,
});

/**
 * One batch of a rollback, as a Cloud Task runs it: the next ROLLBACK_BATCH_SIZE backups of the
 * source run after `afterBackupId` (one page, by document id), restored in one commit with the
 * batch marker. A second delivery of the same (seq, cursor) finds the marker and reports
 * `duplicate` with the marker's cursor, so the chain continues from where the first delivery got.
 */
export async function rollbackBatch(ctx: RollbackContext, input: RollbackBatchInput): Promise<RollbackBatchResult> {
  const started = Date.now();
  const limit = ctx.config.rollback.batchSize;
  const ids = await nextBackupIds(ctx.db, ctx.paths, input.migrationId, input.sourceRunId, input.afterBackupId, limit);
  if (ids.length === 0) {
    return { status: 'empty', lastBackupId: input.afterBackupId, done: true, totals: { ...ZERO_ROLLBACK_COUNTS }, conflicts: [], latencyMs: Date.now() - started, preconditionRetries: 0, transientRetries: 0 };
  }
  const result = await restoreBackupBatch(ctx, input, ids, started);
  return { ...result, done: ids.length < limit };
}

/**
 * Restores the before-images `backupIds` (of `input.sourceRunId`, in id order) with the batch
 * marker `.../runs/{rollbackRunId}/batches/{sourceRunId}-{seq}` in the same commit. The marker
 * records the counts, the conflicts' paths (at most one batch of them) and the last backup id:
 * the checkpoint a resume continues after.
 */
export async function restoreBackupBatch(
  ctx: RollbackContext,
  input: RollbackBatchInput,
  backupIds: readonly string[],
  started = Date.now(),
): Promise<Omit<RollbackBatchResult, 'done'>> {
  const { wire, paths, config } = ctx;
  const settings = { maxRetries: config.rollback.maxRetries, retryDelayMs: config.migration.retryDelayMs, timeoutMs: config.migration.transactionTimeoutMs };
  const backoff = new Backoff({ baseDelayMs: settings.retryDelayMs, maxRetries: settings.maxRetries });
  let transientRetries = 0;
  const backupsPath = paths.backups(input.migrationId, input.sourceRunId);
  const stored = await withRetry(() => wire.batchGet(backupIds.map((id) => `${backupsPath}/${id}`), settings), backoff, () => transientRetries++);
  const records = await readBackupDocuments(wire, stored, backoff, () => transientRetries++, settings);
  const targets = records.flatMap((record, i) => {
    if (!record) return [];
    if (backupId(record.path) !== backupIds[i]) throw new Error(`backup ${backupsPath}/${backupIds[i]} holds the image of ${record.path}, whose backup id differs`);
    return [{ path: record.path, backupPath: `${backupsPath}/${backupIds[i]}`, backup: record }];
  });
  // A backup listed but gone when read (its run was deleted meanwhile) cannot be restored: counted, not guessed.
  const vanished = records.filter((record) => !record).length;
  const first = backupIds[0];
  const last = backupIds[backupIds.length - 1];
  const markerPath = `${paths.batches(input.migrationId, input.rollbackRunId)}/${rollbackMarkerId(input.sourceRunId, input.seq)}`;
  const result = await restoreDocuments(wire, targets, {
    ...settings,
    force: input.force,
    marker: {
      path: markerPath,
      fields: (outcomes, forced) => markerFields(input, first, last, countOutcomes(outcomes, forced, vanished), conflictPaths(outcomes), Date.now() - started),
    },
  });
  const latencyMs = Date.now() - started;
  const retries = { preconditionRetries: result.preconditionRetries, transientRetries: result.transientRetries + transientRetries };
  if (result.status === 'duplicate') {
    const marker = result.marker!;
    return {
      status: 'duplicate',
      lastBackupId: marker.lastBackupId?.stringValue ?? last,
      totals: countsFromMarker(marker),
      conflicts: conflictsFromMarker(marker),
      latencyMs,
      ...retries,
    };
  }
  return {
    status: 'committed',
    lastBackupId: last,
    totals: countOutcomes(result.outcomes, result.forced, vanished),
    conflicts: conflictPaths(result.outcomes).map((path) => ({ path, runId: input.sourceRunId, reason: CONFLICT_REASON })),
    latencyMs,
    ...retries,
  };
}

export const CONFLICT_REASON = 'its migrated fields changed after the migration wrote them';

function conflictPaths(outcomes: ReadonlyMap<string, RestoreOutcome>): string[] {
  return [...outcomes].filter(([, outcome]) => outcome === 'conflict').map(([path]) => path);
}

function countOutcomes(outcomes: ReadonlyMap<string, RestoreOutcome>, forced: ReadonlySet<string>, vanished: number): Omit<RollbackTotals, 'batches'> {
  const counts = { ...ZERO_ROLLBACK_COUNTS, missingBackups: vanished };
  for (const outcome of outcomes.values()) {
    if (outcome === 'restored') counts.restored++;
    else if (outcome === 'already-restored') counts.alreadyRestored++;
    else if (outcome === 'conflict') counts.conflicts++;
    else if (outcome === 'missing-document') counts.missingDocuments++;
    else if (outcome === 'missing-backup') counts.missingBackups++;
    else counts.failed++;
  }
  counts.forced = forced.size;
  return counts;
}

const int = (value: number) => ({ integerValue: String(value) });

function markerFields(input: RollbackBatchInput, first: string, last: string, counts: Omit<RollbackTotals, 'batches'>, conflicts: string[], latencyMs: number): RawFields {
  return {
    sourceRunId: { stringValue: input.sourceRunId },
    seq: int(input.seq),
    afterBackupId: input.afterBackupId === null ? { nullValue: 'NULL_VALUE' } : { stringValue: input.afterBackupId },
    firstBackupId: { stringValue: first },
    lastBackupId: { stringValue: last },
    restored: int(counts.restored),
    alreadyRestored: int(counts.alreadyRestored),
    conflicts: int(counts.conflicts),
    forced: int(counts.forced),
    missingDocuments: int(counts.missingDocuments),
    missingBackups: int(counts.missingBackups),
    failed: int(counts.failed),
    conflictPaths: { arrayValue: { values: conflicts.map((path) => ({ stringValue: path })) } },
    latencyMs: int(Math.round(latencyMs)),
    rssMb: int(Math.round(process.memoryUsage.rss() / (1024 * 1024))),
  };
}

export function countsFromMarker(marker: RawFields): Omit<RollbackTotals, 'batches'> {
  const count = (field: keyof typeof ZERO_ROLLBACK_COUNTS) => Number(marker[field]?.integerValue ?? 0);
  return {
    restored: count('restored'),
    alreadyRestored: count('alreadyRestored'),
    conflicts: count('conflicts'),
    forced: count('forced'),
    missingDocuments: count('missingDocuments'),
    missingBackups: count('missingBackups'),
    failed: count('failed'),
  };
}

function conflictsFromMarker(marker: RawFields): RollbackConflict[] {
  const runId = marker.sourceRunId?.stringValue ?? '';
  return (marker.conflictPaths?.arrayValue?.values ?? []).map((value) => ({ path: value.stringValue ?? '', runId, reason: CONFLICT_REASON }));
}
