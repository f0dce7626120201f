import { randomUUID } from 'node:crypto';
import type { Firestore } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import type { ControlPaths } from '../control/paths';
import { classifyDocument, type FailureSeverity } from '../definitions/classify';
import type { Migration } from '../definitions/types';
import { CommitBudget, commitByteBudget, estimateWriteBytes, MAX_WRITES_PER_COMMIT } from './batch-size';
import { applyChange, backupId, backupWrites, captureBeforeImage, changesNothing, changeWrite, encodeChange, imageHash, widenBeforeImage, type BackupRecord } from './before-image';
import { readBackupDocuments } from './restore';
import { Backoff, isTransient, withRetry } from './retry';
import type { WireClient } from './wire/client';
import { decodeFields, ValueEncodingError } from './wire/codec';
import { grpcCode, Status } from './wire/status';
import type { RawDocument, RawFields, RawWrite } from './wire/types';

export interface BatchContext {
  db: Firestore;
  wire: WireClient;
  migration: Migration;
  config: FiremigrateConfig;
  paths: ControlPaths;
  runId: string;
  now?: () => number;
}

export interface BatchInput {
  /** Partition id: a document-id-safe string (no "/"). */
  partition: string;
  seq: number;
  /** Document paths (`trades/abc`) in key order. */
  keys: string[];
  /**
   * The documents as the caller already read them (e.g. from a whole-document stream, through
   * `rawDocumentFromSnapshot`), one per key. The first attempt then commits without reading
   * again; stale ones fail their preconditions and are re-read like any conflict. Without them
   * every attempt reads the documents fresh (DESIGN.md "Reading", both ways).
   */
  documents?: RawDocument[];
  /**
   * For documents already at the target version: which of their new-shape (top-level) fields to
   * derive again from the legacy fields they carry (`up` runs on them as on old-shape documents,
   * only its entries under these fields are written; a result that changes nothing writes
   * nothing). Asked of each such document as read, on every attempt; none: it counts as already
   * migrated, as it does without this. The sync trigger's answer to legacy edits.
   */
  rederive?: (document: Extract<RawDocument, { exists: true }>) => readonly string[];
  /**
   * A document this run has written before keeps that write's before-image, widened to the paths
   * the new write adds, with the new write's after-hash (`widenBeforeImage`): a rollback of the run
   * then gives back the document as it was before the run, not as its previous write left it. The
   * backups are read with the documents (so it takes no `documents`). For the sync trigger's run,
   * which writes a document as often as legacy clients edit it; the engine's runs read no
   * backups and keep the latest image (`backupWrites` overwrites).
   */
  keepEarliestBeforeImages?: boolean;
}

export interface BatchResult {
  /** `committed`: this call's commit landed. `duplicate`: another delivery of the batch had already committed it. */
  status: 'committed' | 'duplicate';
  migrated: number;
  /** Skipped by `up()` or missing (deleted since the key was listed). */
  skipped: number;
  alreadyMigrated: number;
  failed: number;
  preconditionRetries: number;
  transientRetries: number;
  latencyMs: number;
  firstKey: string;
  /** The last key the commit covered: the partition's cursor. */
  lastKey: string;
  /**
   * Keys of the input after `lastKey`, left out because the commit reached its write or byte
   * limit (large before-images). The runner must feed them into the partition's next batch.
   */
  deferredKeys: string[];
}

export type BatchFailureClass = 'invalid-source' | 'transform-error' | 'invalid-result' | 'precondition-exhausted';

/** Contention, not bad data: the final sweep tries the document again. */
const PRECONDITION_EXHAUSTED_SEVERITY: FailureSeverity = 'low';
/** Framing of a failure record in the byte budget (it holds no document contents). */
const FAILURE_RECORD_BYTES = 1024;

/** The batch marker's document id: `{partition}-{seq zero-padded to 8 digits}`. */
export function batchMarkerId(partition: string, seq: number): string {
  if (!partition || partition.includes('/')) throw new Error(`partition id ${JSON.stringify(partition)} must be non-empty and contain no "/"`);
  if (!Number.isSafeInteger(seq) || seq < 0) throw new Error(`batch seq must be a non-negative integer, got ${seq}`);
  return `${partition}-${String(seq).padStart(8, '0')}`;
}

/** The failure record's id, like the before-image's: a hash of the document path. */
export const failureId = backupId;

type DocumentPlan =
  | { kind: 'missing' }
  | { kind: 'already' }
  | { kind: 'skip' }
  | { kind: 'fail'; errorClass: BatchFailureClass; severity: FailureSeverity; message: string }
  | { kind: 'migrate'; writes: RawWrite[]; bytes: number };

/** A plan is valid for the document version (update time) it was made from. */
interface PlannedDocument {
  version: string;
  plan: DocumentPlan;
}

/**
 * Migrates one batch of a partition in ONE atomic commit (DESIGN.md "The pipeline"): the
 * documents are read fresh, classified, and every migrating document's update (conditional on
 * the update time it was read at: G1) is committed together with its before-image (G4), the
 * failure records of documents that cannot migrate, and the batch marker, created only if
 * absent (G2). Whatever happens — duplicate deliveries, concurrent deliveries, a commit that
 * landed although the call failed — the batch's effect lands once: two commits of one batch
 * cannot both create its marker, and every read of the documents reads the marker with them,
 * so an attempt that finds it reports the batch settled instead of committing.
 *
 * A FAILED_PRECONDITION re-reads and retries (only documents whose update time changed are
 * transformed again); past MIGRATION_MAX_RETRIES such retries, documents that keep changing
 * become `precondition-exhausted` failure records. Transient errors retry with backoff; a commit
 * that timed out (MIGRATION_TRANSACTION_TIMEOUT) may have landed, and the marker tells.
 */
export async function migrateBatch(ctx: BatchContext, input: BatchInput): Promise<BatchResult> {
  const now = ctx.now ?? Date.now;
  const started = now();
  const keys = [...new Set(input.keys)];
  if (keys.length === 0) throw new Error(`batch ${input.partition}/${input.seq} has no keys`);
  if (keys.length > MAX_WRITES_PER_COMMIT - 1) throw new Error(`batch ${input.partition}/${input.seq} has ${keys.length} keys; at most ${MAX_WRITES_PER_COMMIT - 1} fit in one commit`);

  const settings = ctx.config.migration;
  const { migration, runId, wire } = ctx;
  const markerPath = `${ctx.paths.batches(migration.id, runId)}/${batchMarkerId(input.partition, input.seq)}`;
  const backupsName = wire.documentName(ctx.paths.backups(migration.id, runId));
  const failuresName = wire.documentName(ctx.paths.failures(migration.id, runId));
  const codec = { db: ctx.db, databaseName: wire.databaseName };
  if (input.keepEarliestBeforeImages && input.documents) {
    throw new Error(`batch ${input.partition}/${input.seq}: keepEarliestBeforeImages reads each document with its backup, so it takes no pre-read documents`);
  }
  const readsBackups = input.keepEarliestBeforeImages === true && settings.rollbackEnabled;
  const backupPaths = readsBackups ? keys.map((key) => `${ctx.paths.backups(migration.id, runId)}/${backupId(key)}`) : [];
  const readPaths = [...keys, markerPath, ...backupPaths];
  const timeout = { timeoutMs: settings.transactionTimeoutMs };
  // Identifies this call's commit in the marker: a marker carrying it means our own
  // (ambiguous) commit landed, any other marker a different delivery's.
  const commitId = randomUUID();

  const backoff = new Backoff({ baseDelayMs: settings.retryDelayMs, maxRetries: settings.maxRetries });
  let transientRetries = 0;
  let preconditionRetries = 0;
  let markerExpected = false;
  let lastFailure: 'precondition' | 'other' | undefined;
  const planned = new Map<string, PlannedDocument>();

  // A backup of this run changes only in a commit that also changes its document: the plan of
  // an unchanged document stays valid for its backup too.
  const planDocument = (document: RawDocument, earlier: BackupRecord | null): PlannedDocument => {
    if (!document.exists) return { version: 'missing', plan: { kind: 'missing' } };
    const version = `${document.updateTime.seconds}.${document.updateTime.nanos ?? 0}`;
    const previous = planned.get(document.path);
    // up() may be impure: an unchanged document keeps the change computed for it already.
    if (previous?.version === version) return previous;
    return { version, plan: planMigration(ctx, document, codec, backupsName, { rederive: input.rederive, earlier }) };
  };

  // Without a read, the first attempt cannot see the marker: a duplicate delivery then fails at
  // the commit (the marker's create, or the documents' preconditions) and the re-read settles it.
  let preRead = input.documents && [...alignDocuments(keys, input.documents), { path: markerPath, exists: false as const }];
  for (;;) {
    const read = preRead ?? (await withRetry(() => wire.batchGet(readPaths, timeout), backoff, () => transientRetries++));
    preRead = undefined;
    const marker = read[keys.length];
    if (marker.exists) return settledResult(marker.fields, commitId, keys, { preconditionRetries, transientRetries, latencyMs: now() - started });
    if (markerExpected) throw new Error(`the commit of batch ${markerPath} reported ALREADY_EXISTS, but its marker does not exist`);
    const earlier = readsBackups
      ? await readBackupDocuments(wire, read.slice(keys.length + 1), backoff, () => transientRetries++, timeout)
      : keys.map(() => null);

    // Past the retry limit, each document that changed again since the last read (its
    // precondition is what failed) becomes a failure record and the rest commit: every further
    // round removes at least one document, so the loop ends.
    const exhausted = preconditionRetries > settings.maxRetries;
    const plans: DocumentPlan[] = [];
    let givenUp = 0;
    for (let i = 0; i < keys.length; i++) {
      const next = planDocument(read[i], earlier[i]);
      const previous = planned.get(keys[i]);
      if (exhausted && previous && previous.version !== next.version && next.plan.kind === 'migrate') {
        givenUp++;
        plans.push({
          kind: 'fail',
          errorClass: 'precondition-exhausted',
          severity: PRECONDITION_EXHAUSTED_SEVERITY,
          message: `the document changed between read and commit in ${preconditionRetries + 1} consecutive attempts; left unmigrated`,
        });
      } else {
        plans.push(next.plan);
      }
      planned.set(keys[i], next);
    }
    if (exhausted && givenUp === 0 && lastFailure === 'precondition') {
      throw new Error(`batch ${markerPath}: the commit keeps failing its preconditions although no document changed between reads`);
    }

    const commit = buildCommit(plans, keys, input, {
      markerName: wire.documentName(markerPath),
      failuresName,
      commitId,
      migrationId: migration.id,
      runId,
      latencyMs: now() - started,
      counters: { preconditionRetries, transientRetries },
      byteBudget: commitByteBudget(wire.onEmulator),
    });
    try {
      await wire.commit(commit.writes, timeout);
      return { status: 'committed', ...commit.counts, preconditionRetries, transientRetries, latencyMs: now() - started };
    } catch (error) {
      const code = grpcCode(error);
      lastFailure = code === Status.FAILED_PRECONDITION || code === Status.NOT_FOUND ? 'precondition' : 'other';
      if (code === Status.ALREADY_EXISTS) {
        // Only the marker is created with exists=false: the batch has been committed already.
        markerExpected = true;
      } else if (code === Status.FAILED_PRECONDITION || code === Status.NOT_FOUND) {
        // A document changed (or vanished) after it was read; a landed earlier attempt of ours
        // also shows up here. The next read tells which.
        preconditionRetries++;
      } else if (isTransient(error) && (await backoff.wait())) {
        // Possibly landed (e.g. DEADLINE_EXCEEDED after the server committed): the next read's
        // marker settles it.
        transientRetries++;
      } else {
        throw error;
      }
    }
  }
}

function alignDocuments(keys: string[], documents: RawDocument[]): RawDocument[] {
  const byPath = new Map(documents.map((document) => [document.path, document]));
  return keys.map((key) => {
    const document = byPath.get(key);
    if (!document) throw new Error(`the batch's documents do not include ${key}`);
    return document;
  });
}

interface PlanOptions {
  rederive: BatchInput['rederive'];
  /** This run's before-image of the document, when it has written it before and keeps the earliest. */
  earlier: BackupRecord | null;
}

function planMigration(
  ctx: BatchContext,
  document: Extract<RawDocument, { exists: true }>,
  codec: { db: Firestore; databaseName: string },
  backupsName: string,
  options: PlanOptions,
): DocumentPlan {
  const key = document.path;
  const data = decodeFields(document.fields, codec);
  const only = data[ctx.migration.marker.field] === ctx.migration.marker.to ? options.rederive?.(document) : undefined;
  const rederive = only !== undefined && only.length > 0;
  const classification = classifyDocument(ctx.migration, data, { path: key, id: key.slice(key.lastIndexOf('/') + 1) }, {
    validate: ctx.config.migration.validationEnabled,
    rederive: rederive ? { only } : undefined,
  });
  switch (classification.outcome) {
    case 'already-at-target':
      return { kind: 'already' };
    case 'skip':
      return { kind: 'skip' };
    case 'fail':
      return { kind: 'fail', ...classification.failure };
  }
  if (classification.change.kind === 'skip') return { kind: 'skip' };
  let change;
  try {
    change = encodeChange(classification.change, codec.databaseName);
  } catch (error) {
    if (!(error instanceof ValueEncodingError)) throw error;
    return { kind: 'fail', errorClass: 'invalid-result', severity: 'high', message: error.message };
  }
  const name = ctx.wire.documentName(key);
  const update = changeWrite(name, change, document.updateTime);
  // Derived again, the new-shape fields came out as they are: nothing to write.
  if (rederive && changesNothing(document.fields, change)) return { kind: 'already' };
  if (!ctx.config.migration.rollbackEnabled) return { kind: 'migrate', writes: [update], bytes: estimateWriteBytes(update) };
  const image = options.earlier ? widenBeforeImage(options.earlier.image, document.fields, change) : captureBeforeImage(document.fields, change);
  const backup = backupWrites(`${backupsName}/${backupId(key)}`, {
    path: key,
    image,
    beforeUpdateTime: options.earlier?.beforeUpdateTime ?? document.updateTime,
    afterHash: imageHash(applyChange(document.fields, change), image),
    migrationId: ctx.migration.id,
    runId: ctx.runId,
  });
  return { kind: 'migrate', writes: [...backup.writes, update], bytes: estimateWriteBytes(update) + backup.bytes + 512 * backup.writes.length };
}

interface CommitContext {
  markerName: string;
  failuresName: string;
  commitId: string;
  migrationId: string;
  runId: string;
  latencyMs: number;
  counters: { preconditionRetries: number; transientRetries: number };
  byteBudget: number;
}

type Counts = Pick<BatchResult, 'migrated' | 'skipped' | 'alreadyMigrated' | 'failed' | 'firstKey' | 'lastKey' | 'deferredKeys'>;

/** The commit's writes, as many documents as fit (in key order), and the batch marker. */
function buildCommit(plans: DocumentPlan[], keys: string[], input: BatchInput, ctx: CommitContext): { writes: RawWrite[]; counts: Counts } {
  const budget = new CommitBudget(MAX_WRITES_PER_COMMIT, ctx.byteBudget);
  const writes: RawWrite[] = [];
  const counts = { migrated: 0, skipped: 0, alreadyMigrated: 0, failed: 0 };
  let covered = 0;
  for (; covered < plans.length; covered++) {
    const plan = plans[covered];
    const key = keys[covered];
    if (plan.kind === 'migrate') {
      if (!budget.tryAdd(plan.writes.length, plan.bytes, covered === 0)) break;
      writes.push(...plan.writes);
      counts.migrated++;
    } else if (plan.kind === 'fail') {
      if (!budget.tryAdd(1, FAILURE_RECORD_BYTES, covered === 0)) break;
      writes.push(failureWrite(`${ctx.failuresName}/${failureId(key)}`, key, plan, input, ctx));
      counts.failed++;
    } else if (plan.kind === 'already') {
      counts.alreadyMigrated++;
    } else {
      counts.skipped++;
    }
  }
  const firstKey = keys[0];
  const lastKey = keys[covered - 1];
  const markerFields: RawFields = {
    partition: { stringValue: input.partition },
    seq: { integerValue: String(input.seq) },
    firstKey: { stringValue: firstKey },
    lastKey: { stringValue: lastKey },
    migrated: { integerValue: String(counts.migrated) },
    skipped: { integerValue: String(counts.skipped) },
    alreadyMigrated: { integerValue: String(counts.alreadyMigrated) },
    failed: { integerValue: String(counts.failed) },
    // Time from the batch's start to this commit: the commit's own round trip cannot be in it.
    latencyMs: { integerValue: String(Math.round(ctx.latencyMs)) },
    rssMb: { integerValue: String(Math.round(process.memoryUsage.rss() / (1024 * 1024))) },
    preconditionRetries: { integerValue: String(ctx.counters.preconditionRetries) },
    transientRetries: { integerValue: String(ctx.counters.transientRetries) },
    // Input keys after lastKey left for a later batch: a resume must not move its cursor past
    // this batch's lastKey on the strength of later seqs (they may cover later keys only).
    deferred: { integerValue: String(keys.length - covered) },
    commitId: { stringValue: ctx.commitId },
  };
  writes.push({
    update: { name: ctx.markerName, fields: markerFields },
    currentDocument: { exists: false },
    updateTransforms: [{ fieldPath: 'committedAt', setToServerValue: 'REQUEST_TIME' }],
  });
  return { writes, counts: { ...counts, firstKey, lastKey, deferredKeys: keys.slice(covered) } };
}

/**
 * A failure record: path, class, severity and a value-free message; `attempts` counts the
 * committed batches in which the document failed during this run (a server-side increment, so
 * a later sweep adds to it rather than resetting it).
 */
function failureWrite(name: string, path: string, plan: Extract<DocumentPlan, { kind: 'fail' }>, input: BatchInput, ctx: CommitContext): RawWrite {
  const fields: RawFields = {
    path: { stringValue: path },
    errorClass: { stringValue: plan.errorClass },
    severity: { stringValue: plan.severity },
    message: { stringValue: plan.message },
    migrationId: { stringValue: ctx.migrationId },
    runId: { stringValue: ctx.runId },
    partition: { stringValue: input.partition },
    seq: { integerValue: String(input.seq) },
  };
  return {
    update: { name, fields },
    updateMask: { fieldPaths: Object.keys(fields) },
    updateTransforms: [
      { fieldPath: 'attempts', increment: { integerValue: '1' } },
      { fieldPath: 'failedAt', setToServerValue: 'REQUEST_TIME' },
    ],
  };
}

function settledResult(
  marker: RawFields,
  commitId: string,
  keys: string[],
  retries: Pick<BatchResult, 'preconditionRetries' | 'transientRetries' | 'latencyMs'>,
): BatchResult {
  const count = (field: string) => Number(marker[field]?.integerValue ?? 0);
  const lastKey = marker.lastKey?.stringValue ?? keys[keys.length - 1];
  const lastIndex = keys.indexOf(lastKey);
  return {
    status: marker.commitId?.stringValue === commitId ? 'committed' : 'duplicate',
    migrated: count('migrated'),
    skipped: count('skipped'),
    alreadyMigrated: count('alreadyMigrated'),
    failed: count('failed'),
    ...retries,
    firstKey: marker.firstKey?.stringValue ?? keys[0],
    lastKey,
    deferredKeys: lastIndex < 0 ? [] : keys.slice(lastIndex + 1),
  };
}
