import { FieldPath, type Firestore } from '@google-cloud/firestore';
import type { Migration, ServiceProbe } from '../definitions/types';
import { backupId, matchesBeforeImage, type BackupRecord } from '../engine/before-image';
import { Backoff } from '../engine/retry';
import { readBackupDocuments } from '../engine/restore';
import type { RawDocument } from '../engine/wire/types';
import { listRollbackConflicts, CONFLICT_LIST_LIMIT } from './rollback-run';
import type { RollbackContext, RollbackStrategy, RollbackValidation } from './types';

export interface ValidateRollbackInput {
  migrationId: string;
  rollbackRunId: string;
  /** Newest first, as executed. */
  sourceRuns: readonly string[];
  strategy: RollbackStrategy;
  force: boolean;
  /** Check every document instead of ROLLBACK_VALIDATION_SAMPLE of them (tests). */
  sampleAll?: boolean;
}

const PROBE_TIMEOUT_MS = 10_000;

/**
 * Post-rollback validation: sampled documents equal the before-image they should now hold (the
 * OLDEST image among the runs in scope, since runs are undone newest first), sampled documents
 * parse with the migration's `from` schema, and the migration's service probes answer. Backup
 * ids are hashes of the paths, so the first N backups by id are a spread-out sample of documents.
 * Conflicts left alone (no force) and deleted documents are not expected to match and are skipped.
 */
export async function validateRollback(ctx: RollbackContext, input: ValidateRollbackInput): Promise<RollbackValidation> {
  const migration = ctx.registry.get(input.migrationId);
  const limit = input.sampleAll ? Number.POSITIVE_INFINITY : ctx.config.rollback.validationSample;
  const result: RollbackValidation = { sampled: 0, equal: 0, mismatches: [], fromSchema: { checked: 0, passed: 0, failures: [] }, probes: [], ok: false };
  const conflicts = input.force ? new Set<string>() : await conflictSet(ctx, input);
  const paths: string[] = [];
  if (input.strategy === 'restore') {
    const expected = await sampleExpectedImages(ctx, input, limit);
    const documents: RawDocument[] = [];
    for (let start = 0; start < expected.length; start += 300) {
      documents.push(...(await ctx.wire.batchGet(expected.slice(start, start + 300).map((item) => item.path))));
    }
    expected.forEach((item, i) => {
      const document = documents[i];
      if (conflicts.has(item.path) || !document.exists) return;
      result.sampled++;
      paths.push(item.path);
      if (matchesBeforeImage(document.fields, item.backup.image)) result.equal++;
      else if (result.mismatches.length < CONFLICT_LIST_LIMIT) result.mismatches.push(item.path);
    });
  } else {
    // Revert: no before-images; the documents its batches reverted must now be below the target version.
    for (const path of await revertedPaths(ctx, input, limit)) {
      const snapshot = await ctx.db.doc(path).get();
      if (!snapshot.exists) continue;
      result.sampled++;
      if (snapshot.get(new FieldPath(migration.marker.field)) === migration.marker.to) {
        if (result.mismatches.length < CONFLICT_LIST_LIMIT) result.mismatches.push(path);
      } else {
        result.equal++;
        paths.push(path);
      }
    }
  }
  await checkFromSchema(ctx.db, migration, paths, result);
  result.probes = await runProbes(ctx.db, migration.probes ?? []);
  result.ok = result.mismatches.length === 0 && result.fromSchema.checked === result.fromSchema.passed && result.probes.every((probe) => probe.ok);
  return result;
}

async function conflictSet(ctx: RollbackContext, input: ValidateRollbackInput): Promise<Set<string>> {
  const conflicts = await listRollbackConflicts(ctx, input.migrationId, input.rollbackRunId, Number.POSITIVE_INFINITY);
  return new Set(conflicts.map((conflict) => conflict.path));
}

/**
 * Up to `limit` documents with the image each should hold: from each run (newest first) the first
 * backups by id; a path also backed up by an older run in scope expects that older run's image.
 */
async function sampleExpectedImages(ctx: RollbackContext, input: ValidateRollbackInput, limit: number): Promise<Array<{ path: string; backup: BackupRecord }>> {
  const backoff = () => new Backoff({ baseDelayMs: ctx.config.migration.retryDelayMs, maxRetries: ctx.config.rollback.maxRetries });
  const timeout = { timeoutMs: ctx.config.migration.transactionTimeoutMs };
  const perRun = Math.ceil(limit / Math.max(1, input.sourceRuns.length));
  const expected = new Map<string, BackupRecord>();
  for (let r = 0; r < input.sourceRuns.length && expected.size < limit; r++) {
    const runId = input.sourceRuns[r];
    let query = ctx.db.collection(ctx.paths.backups(input.migrationId, runId)).select().orderBy(FieldPath.documentId());
    if (Number.isFinite(perRun)) query = query.limit(perRun);
    const ids = (await query.get()).docs.map((doc) => doc.id);
    for (let start = 0; start < ids.length; start += 300) {
      const slice = ids.slice(start, start + 300);
      const records = await readBackupDocuments(ctx.wire, await ctx.wire.batchGet(slice.map((id) => `${ctx.paths.backups(input.migrationId, runId)}/${id}`), timeout), backoff(), () => undefined, timeout);
      for (const record of records) if (record && !expected.has(record.path)) expected.set(record.path, record);
    }
  }
  // The older runs' images win: look each sampled path up in every older run's backups.
  for (let r = 1; r < input.sourceRuns.length; r++) {
    const runId = input.sourceRuns[r];
    const paths = [...expected.keys()];
    for (let start = 0; start < paths.length; start += 300) {
      const slice = paths.slice(start, start + 300);
      const stored = await ctx.wire.batchGet(slice.map((path) => `${ctx.paths.backups(input.migrationId, runId)}/${backupId(path)}`), timeout);
      const records = await readBackupDocuments(ctx.wire, stored, backoff(), () => undefined, timeout);
      for (const record of records) if (record) expected.set(record.path, record);
    }
  }
  return [...expected].slice(0, Number.isFinite(limit) ? limit : undefined).map(([path, backup]) => ({ path, backup }));
}

/** Paths the revert's batch markers recorded, up to `limit`. */
async function revertedPaths(ctx: RollbackContext, input: ValidateRollbackInput, limit: number): Promise<string[]> {
  const snapshot = await ctx.db.collection(ctx.paths.batches(input.migrationId, input.rollbackRunId)).where('restored', '>', 0).get();
  const paths: string[] = [];
  for (const doc of snapshot.docs) {
    for (const path of (doc.get('revertedPaths') ?? []) as string[]) {
      if (paths.length >= limit) return paths;
      paths.push(path);
    }
  }
  return paths;
}

async function checkFromSchema(db: Firestore, migration: Migration, paths: string[], result: RollbackValidation): Promise<void> {
  for (let start = 0; start < paths.length; start += 300) {
    const snapshots = await db.getAll(...paths.slice(start, start + 300).map((path) => db.doc(path)));
    for (const snapshot of snapshots) {
      if (!snapshot.exists) continue;
      result.fromSchema.checked++;
      const parsed = migration.from.safeParse(snapshot.data());
      if (parsed.success) result.fromSchema.passed++;
      else if (result.fromSchema.failures.length < CONFLICT_LIST_LIMIT) {
        // Issue paths and codes only: never document values.
        result.fromSchema.failures.push({ path: snapshot.ref.path, issues: parsed.error.issues.map((issue) => `${issue.path.join('.') || '(root)'}: ${issue.code}`).join('; ') });
      }
    }
  }
}

/** Each probe once: a query probe reads at most one document, an HTTP probe must answer 2xx. */
export async function runProbes(db: Firestore, probes: readonly ServiceProbe[]): Promise<RollbackValidation['probes']> {
  const results: RollbackValidation['probes'] = [];
  for (const probe of probes) {
    const started = Date.now();
    try {
      if ('query' in probe) {
        const snapshot = await probe.query(db).limit(1).get();
        results.push({ name: probe.name, ok: true, latencyMs: Date.now() - started, detail: `${snapshot.size} document(s) read` });
      } else {
        const response = await fetch(probe.url, { signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
        results.push({ name: probe.name, ok: response.ok, latencyMs: Date.now() - started, detail: `HTTP ${response.status}` });
      }
    } catch (error) {
      results.push({ name: probe.name, ok: false, latencyMs: Date.now() - started, detail: (error as Error).message });
    }
  }
  return results;
}
