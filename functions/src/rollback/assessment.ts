import { randomUUID } from 'node:crypto';
import { FieldPath, Timestamp } from '@google-cloud/firestore';
import { RegistryStore } from '../control/registry-store';
import { sumMarkers } from '../control/progress';
import type { Migration } from '../definitions/types';
import { backupId, type BackupRecord } from '../engine/before-image';
import { streamKeys } from '../engine/key-reader';
import { targetQuery } from '../engine/planner';
import { Backoff, withRetry } from '../engine/retry';
import { classifyRestore, fieldsAfterRestore, readBackupDocuments } from '../engine/restore';
import { grpcCode, Status } from '../engine/wire/status';
import type { RawDocument } from '../engine/wire/types';
import { CONFLICT_REASON } from './batch';
import { CONFLICT_LIST_LIMIT } from './rollback-run';
import { countBackups, listSourceRuns, type SourceRun } from './source-runs';
import { chooseStrategy } from './strategy';
import type { AssessOptions, RollbackAssessment, RollbackContext } from './types';

/** Backups classified per read: one batchGet of backups, one of documents. */
const ASSESS_CHUNK = 300;

type Readiness = RollbackAssessment['readiness'][number];

/**
 * What a rollback would do, writing NOTHING: every backup in scope is read and decoded (the
 * before-images are complete and readable) and classified against its document exactly as the
 * batch will classify it (`classifyRestore`). Runs are simulated newest first, as executed: a
 * document also backed up by a newer run is judged on the fields that newer restore leaves.
 */
export async function assessRollback(ctx: RollbackContext, request: AssessOptions): Promise<RollbackAssessment> {
  const migration = ctx.registry.get(request.migrationId);
  const scope = { migrationId: migration.id, ...(request.runId ? { runId: request.runId } : {}) };
  const sourceRuns = await listSourceRuns(ctx.db, ctx.paths, migration.id, request.runId);
  const strategy = chooseStrategy(migration, sourceRuns, request.strategy);
  const backupCounts = await Promise.all(sourceRuns.map((run) => countBackups(ctx.db, ctx.paths, migration.id, run.runId)));
  const assessment: RollbackAssessment = {
    migrationId: migration.id,
    scope,
    strategy: { chosen: strategy.chosen, reason: strategy.reason, overridden: strategy.overridden },
    runs: sourceRuns.map((run, i) => ({ runId: run.runId, status: run.status, backups: backupCounts[i] })),
    documents: { total: 0, toRestore: 0, alreadyRestored: 0, conflicts: 0, missingDocuments: 0, missingBackups: 0 },
    conflicts: [],
    conflictsNotListed: 0,
    impact: await impact(ctx, migration),
    readiness: [],
    estimatedDurationMs: null,
    ready: false,
  };
  const readiness = assessment.readiness;
  readiness.push({ check: 'strategy', ok: strategy.impossible === null, detail: strategy.impossible ?? `${strategy.chosen}: ${strategy.reason}` });
  readiness.push({ check: 'runs', ok: sourceRuns.length > 0, detail: sourceRuns.length > 0 ? `${sourceRuns.length} executed runs in scope` : 'the migration has no executed run: nothing to roll back' });
  if (strategy.chosen === 'restore') readiness.push(await classifyBackups(ctx, migration, sourceRuns, request.force ?? false, assessment));
  else await countRevertable(ctx, migration, assessment);
  readiness.push(await controlWritable(ctx));
  readiness.push(await noActiveRun(ctx, migration.id));
  assessment.estimatedDurationMs = await estimateDuration(ctx, migration.id, sourceRuns, assessment.documents.total);
  assessment.ready = readiness.every((check) => check.ok);
  return assessment;
}

async function impact(ctx: RollbackContext, migration: Migration): Promise<RollbackAssessment['impact']> {
  return Promise.all(
    (migration.impactQueries ?? []).map(async (query) => {
      try {
        const snapshot = await query.query(ctx.db).count().get();
        return { name: query.name, description: query.description, count: snapshot.data().count };
      } catch (error) {
        return { name: query.name, description: query.description, count: null, error: (error as Error).message };
      }
    }),
  );
}

/** Reads every backup of the runs (newest first) with its document, and counts what the restore would do. */
async function classifyBackups(ctx: RollbackContext, migration: Migration, runs: readonly SourceRun[], force: boolean, assessment: RollbackAssessment): Promise<Readiness> {
  const counts = assessment.documents;
  const backoff = () => new Backoff({ baseDelayMs: ctx.config.migration.retryDelayMs, maxRetries: ctx.config.rollback.maxRetries });
  const timeout = { timeoutMs: ctx.config.migration.transactionTimeoutMs };
  let damaged = 0;
  let firstDamage: string | null = null;
  for (let r = 0; r < runs.length; r++) {
    const backupsPath = ctx.paths.backups(migration.id, runs[r].runId);
    const query = ctx.db.collection(backupsPath).select().orderBy(FieldPath.documentId());
    let ids: string[] = [];
    const flush = async () => {
      const stored = await withRetry(() => ctx.wire.batchGet(ids.map((id) => `${backupsPath}/${id}`), timeout), backoff());
      const records: Array<BackupRecord | null> = [];
      for (const [i, document] of stored.entries()) {
        try {
          const [record] = await readBackupDocuments(ctx.wire, [document], backoff(), () => undefined, timeout);
          if (record && backupId(record.path) !== ids[i]) throw new Error(`holds the image of ${record.path}`);
          records.push(record);
        } catch (error) {
          damaged++;
          firstDamage ??= `${backupsPath}/${ids[i]}: ${(error as Error).message}`;
          records.push(null);
        }
      }
      const present = records.filter((record): record is BackupRecord => record !== null);
      const documents = await withRetry(() => ctx.wire.batchGet(present.map((record) => record.path), timeout), backoff());
      const simulated = await simulateNewerRestores(ctx, migration.id, runs.slice(0, r), documents, force, backoff, timeout);
      counts.total += records.length;
      counts.missingBackups += records.length - present.length;
      present.forEach((record, i) => {
        const decision = classifyRestore(simulated[i], record, force);
        if (decision === 'restore') counts.toRestore++;
        else if (decision === 'already-restored') counts.alreadyRestored++;
        else if (decision === 'missing-document') counts.missingDocuments++;
        else if (decision === 'missing-backup') counts.missingBackups++;
        else {
          counts.conflicts++;
          if (decision === 'forced') counts.toRestore++;
          if (assessment.conflicts.length < CONFLICT_LIST_LIMIT) assessment.conflicts.push({ path: record.path, runId: runs[r].runId, reason: CONFLICT_REASON });
          else assessment.conflictsNotListed++;
        }
      });
      ids = [];
    };
    for await (const path of streamKeys(ctx.db, ctx.wire, query, { maxRetries: ctx.config.rollback.maxRetries, retryDelayMs: ctx.config.migration.retryDelayMs })) {
      ids.push(path.slice(path.lastIndexOf('/') + 1));
      if (ids.length === ASSESS_CHUNK) await flush();
    }
    if (ids.length > 0) await flush();
  }
  return {
    check: 'before-images',
    ok: damaged === 0,
    detail: damaged === 0 ? `every before-image read and decoded: ${counts.total} complete and readable` : `${damaged} of ${counts.total} before-images are damaged or unreadable (first: ${firstDamage})`,
  };
}

/** The documents as the restores of the newer runs (executed first) would leave them. */
async function simulateNewerRestores(
  ctx: RollbackContext,
  migrationId: string,
  newer: readonly SourceRun[],
  documents: RawDocument[],
  force: boolean,
  backoff: () => Backoff,
  timeout: { timeoutMs: number },
): Promise<RawDocument[]> {
  let current = documents;
  for (const run of newer) {
    const backupsPath = ctx.paths.backups(migrationId, run.runId);
    const stored = await withRetry(() => ctx.wire.batchGet(current.map((document) => `${backupsPath}/${backupId(document.path)}`), timeout), backoff());
    const records = await readBackupDocuments(ctx.wire, stored, backoff(), () => undefined, timeout);
    current = current.map((document, i) => {
      const record = records[i];
      const decision = classifyRestore(document, record, force);
      if (!document.exists || !record || (decision !== 'restore' && decision !== 'forced')) return document;
      return { ...document, fields: fieldsAfterRestore(document.fields, record.image) };
    });
  }
  return current;
}

/** Revert: the documents at the target version (an equality count; null when it needs a missing index). */
async function countRevertable(ctx: RollbackContext, migration: Migration, assessment: RollbackAssessment): Promise<void> {
  try {
    const snapshot = await targetQuery(ctx.db, migration.target).where(new FieldPath(migration.marker.field), '==', migration.marker.to).count().get();
    assessment.documents.total = snapshot.data().count;
    assessment.documents.toRestore = snapshot.data().count;
  } catch (error) {
    if (grpcCode(error) !== Status.FAILED_PRECONDITION) throw error;
    assessment.readiness.push({ check: 'documents at the target version', ok: true, detail: `not counted (the count needs an index): ${(error as Error).message}` });
  }
}

/**
 * Whether this identity may write the control collection — without writing: an update that
 * requires a document that does not exist fails with NOT_FOUND only after the write was
 * authorised (PERMISSION_DENIED comes first), and changes nothing either way.
 */
async function controlWritable(ctx: RollbackContext): Promise<Readiness> {
  const probe = `${ctx.paths.root}/_control/writeProbe/${randomUUID()}`;
  try {
    await ctx.wire.commit([{ update: { name: ctx.wire.documentName(probe), fields: {} }, currentDocument: { exists: true } }], { timeoutMs: ctx.config.migration.transactionTimeoutMs });
    return { check: 'control collection writable', ok: false, detail: `the probe write to ${probe} unexpectedly succeeded` };
  } catch (error) {
    const code = grpcCode(error);
    if (code === Status.NOT_FOUND) return { check: 'control collection writable', ok: true, detail: `${ctx.paths.root} accepts writes from this identity` };
    return { check: 'control collection writable', ok: false, detail: `${ctx.paths.root}: ${(error as Error).message}` };
  }
}

async function noActiveRun(ctx: RollbackContext, migrationId: string): Promise<Readiness> {
  const entry = await new RegistryStore(ctx.db, ctx.paths).get(migrationId);
  const live = entry?.activeRunId && entry.lease && entry.lease.expiresAt.toMillis() > Timestamp.now().toMillis();
  return {
    check: 'no other active run',
    ok: !live,
    detail: live ? `run ${entry!.activeRunId} holds the migration (holder ${entry!.lease!.holder}) until ${entry!.lease!.expiresAt.toDate().toISOString()}` : 'no run holds the migration',
  };
}

/**
 * From the migration runs' own batch markers (mean commit latency and documents per batch):
 * restoring a document costs about what migrating it did; the rollback runs one batch at a time.
 */
async function estimateDuration(ctx: RollbackContext, migrationId: string, runs: readonly SourceRun[], documents: number): Promise<number | null> {
  let latency = 0;
  let batches = 0;
  let processed = 0;
  for (const run of runs) {
    const totals = await sumMarkers(ctx.db, ctx.paths, migrationId, run.runId);
    if (totals.batches === 0 || totals.meanLatencyMs === null) continue;
    latency += totals.meanLatencyMs * totals.batches;
    batches += totals.batches;
    processed += totals.migrated + totals.skipped + totals.alreadyMigrated + totals.failed;
  }
  if (batches === 0 || processed === 0) return null;
  return Math.round((documents * latency) / processed);
}
