/**
 * The revert strategy, for runs made without before-images (MIGRATION_ROLLBACK_ENABLED=false):
 * `down` is applied to every document of the target at the target version, and the marker goes
 * back to `marker.from` (deleted when that is null). Not exact — `down` recomputes the old shape —
 * but each write carries a precondition on the update time read in its batch (a document the app
 * changes meanwhile is re-read and decided again) and each batch's marker is created in the same
 * commit, so a revert is resumable like a restore. An inverse Migration run through the migrate
 * engine cannot express this: the engine always SETS `marker.to`, and the old shape's marker is
 * usually an absent field.
 */
import { randomUUID } from 'node:crypto';
import { FieldPath } from '@google-cloud/firestore';
import { applyChange, cloneDocument, normalizeTransformResult, type NormalizedChange } from '../definitions/normalize';
import type { Migration } from '../definitions/types';
import { changeWrite, encodeChange } from '../engine/before-image';
import { streamKeys } from '../engine/key-reader';
import { targetQuery } from '../engine/planner';
import { Backoff, isTransient, withRetry } from '../engine/retry';
import { decodeFields } from '../engine/wire/codec';
import { grpcCode, Status } from '../engine/wire/status';
import type { RawDocument, RawFields, RawWrite } from '../engine/wire/types';
import { countsFromMarker, rollbackMarkerId, ZERO_ROLLBACK_COUNTS } from './batch';
import { sourceRunCheckpoint, type PreparedRollback } from './rollback-run';
import type { RollbackContext, RollbackTotals } from './types';

/** Markers of a revert are `revert-{seq}`: it walks the target once, whatever the runs. */
export const REVERT_MARKER_PREFIX = 'revert';

type Counts = Omit<RollbackTotals, 'batches'>;

export interface RevertHooks {
  stopping(): boolean;
  beforeBatch(): Promise<void>;
  record(counts: Counts): void;
}

export async function revertSourceDocuments(ctx: RollbackContext, prepared: PreparedRollback, hooks: RevertHooks): Promise<void> {
  const migration = ctx.registry.get(prepared.migrationId);
  const checkpoint = await sourceRunCheckpoint(ctx, prepared.migrationId, prepared.runId, REVERT_MARKER_PREFIX);
  let seq = checkpoint.nextSeq;
  let query = targetQuery(ctx.db, migration.target).select().orderBy(FieldPath.documentId());
  if (checkpoint.afterBackupId !== null) query = query.startAfter(ctx.db.doc(checkpoint.afterBackupId));
  let keys: string[] = [];
  const run = async () => {
    await hooks.beforeBatch();
    hooks.record(await revertBatch(ctx, migration, prepared.runId, seq++, keys));
    keys = [];
  };
  for await (const key of streamKeys(ctx.db, ctx.wire, query, { maxRetries: ctx.config.rollback.maxRetries, retryDelayMs: ctx.config.migration.retryDelayMs })) {
    if (hooks.stopping()) return;
    keys.push(key);
    if (keys.length === prepared.batchSize) await run();
  }
  if (keys.length > 0 && !hooks.stopping()) await run();
}

type Plan = { kind: 'revert'; write: RawWrite } | { kind: 'not-migrated' } | { kind: 'missing' } | { kind: 'fail'; message: string };

function planRevert(ctx: RollbackContext, migration: Migration, document: RawDocument): Plan {
  if (!document.exists) return { kind: 'missing' };
  const doc = decodeFields(document.fields, { db: ctx.db, databaseName: ctx.wire.databaseName });
  const { marker } = migration;
  if (doc[marker.field] !== marker.to) return { kind: 'not-migrated' };
  let change: NormalizedChange;
  try {
    change = normalizeTransformResult(migration.down!(cloneDocument(doc), { path: document.path, id: document.path.slice(document.path.lastIndexOf('/') + 1) }), { transform: 'down' });
  } catch (error) {
    return { kind: 'fail', message: `down() failed: ${(error as Error).name}` };
  }
  if (change.kind === 'skip') return { kind: 'not-migrated' };
  const markerEntry = { path: [marker.field], value: marker.from, delete: marker.from === null };
  change = change.kind === 'replace'
    ? { kind: 'replace', data: withoutMarker(change.data, marker.field, marker.from) }
    : { kind: 'patch', entries: [...change.entries.filter((entry) => entry.path[0] !== marker.field), markerEntry] };
  const parsed = migration.from.safeParse(applyChange(doc, change));
  if (!parsed.success) return { kind: 'fail', message: `the reverted document does not match the source schema: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.code}`).join('; ')}` };
  return { kind: 'revert', write: changeWrite(ctx.wire.documentName(document.path), encodeChange(change, ctx.wire.databaseName), document.updateTime) };
}

function withoutMarker(data: Record<string, unknown>, field: string, from: string | null): Record<string, unknown> {
  const { [field]: _marker, ...rest } = data;
  return from === null ? rest : { ...rest, [field]: from };
}

/** One revert batch: the documents and the marker read together, one commit with preconditions and the create-only marker. */
async function revertBatch(ctx: RollbackContext, migration: Migration, rollbackRunId: string, seq: number, keys: string[]): Promise<Counts> {
  const started = Date.now();
  const settings = { maxRetries: ctx.config.rollback.maxRetries, timeoutMs: ctx.config.migration.transactionTimeoutMs };
  const backoff = new Backoff({ baseDelayMs: ctx.config.migration.retryDelayMs, maxRetries: settings.maxRetries });
  const markerPath = `${ctx.paths.batches(migration.id, rollbackRunId)}/${rollbackMarkerId(REVERT_MARKER_PREFIX, seq)}`;
  const commitId = randomUUID();
  let preconditionRetries = 0;
  let lastCounts: Counts | null = null;
  for (;;) {
    const read = await withRetry(() => ctx.wire.batchGet([...keys, markerPath], settings), backoff);
    const marker = read[keys.length];
    if (marker.exists) return marker.fields.commitId?.stringValue === commitId && lastCounts ? lastCounts : countsFromMarker(marker.fields);
    const counts = { ...ZERO_ROLLBACK_COUNTS };
    const writes: RawWrite[] = [];
    const reverted: string[] = [];
    const exhausted = preconditionRetries > settings.maxRetries;
    for (const document of read.slice(0, keys.length)) {
      const plan = planRevert(ctx, migration, document);
      if (plan.kind === 'revert') {
        if (exhausted) counts.failed++;
        else {
          writes.push(plan.write);
          reverted.push(document.path);
          counts.restored++;
        }
      } else if (plan.kind === 'not-migrated') counts.alreadyRestored++;
      else if (plan.kind === 'missing') counts.missingDocuments++;
      else {
        counts.failed++;
        ctx.log.warning(`revert of ${document.path}: ${plan.message}`, { runId: rollbackRunId, path: document.path });
      }
    }
    const fields: RawFields = {
      sourceRunId: { stringValue: REVERT_MARKER_PREFIX },
      seq: { integerValue: String(seq) },
      firstKey: { stringValue: keys[0] },
      lastKey: { stringValue: keys[keys.length - 1] },
      ...Object.fromEntries(Object.entries(counts).map(([key, value]) => [key, { integerValue: String(value) }])),
      conflictPaths: { arrayValue: { values: [] } },
      // What post-rollback validation samples: a revert has no before-images to list documents by.
      revertedPaths: { arrayValue: { values: reverted.map((path) => ({ stringValue: path })) } },
      latencyMs: { integerValue: String(Date.now() - started) },
      commitId: { stringValue: commitId },
    };
    writes.push({ update: { name: ctx.wire.documentName(markerPath), fields }, currentDocument: { exists: false }, updateTransforms: [{ fieldPath: 'committedAt', setToServerValue: 'REQUEST_TIME' }] });
    lastCounts = counts;
    try {
      await ctx.wire.commit(writes, settings);
      return counts;
    } catch (error) {
      const code = grpcCode(error);
      if (code === Status.ALREADY_EXISTS || code === Status.FAILED_PRECONDITION || code === Status.NOT_FOUND) preconditionRetries++;
      else if (!(isTransient(error) && (await backoff.wait()))) throw error;
    }
  }
}
