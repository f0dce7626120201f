import type { Firestore, Query } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import { classifyDocument } from '../definitions/classify';
import type { DocData, Migration, MigrationTarget } from '../definitions/types';
import { diffDocuments, formatFieldChange, type FieldChange } from './document-diff';
import { streamDocuments } from './key-stream';
import { RAMP_START_OPS_PER_SECOND, durationForWrites } from './ramp';

/**
 * The dry run: reads every target document once through one streaming query, classifies it
 * exactly as the engine would, and reports what a run would do. It writes nothing, not even
 * control documents. Memory is bounded: counters, at most `sampleSize` diffs, at most
 * `failurePathLimit` paths per failure class and `SKIP_REASON_LIMIT` distinct skip reasons.
 */
export interface PlanOptions {
  /** Include document values in the sample diffs (personal data: off by default). */
  showValues?: boolean;
  /** Before/after samples of documents that would migrate. */
  sampleSize?: number;
  /** Paths listed per failure class; the counts are always exact. */
  failurePathLimit?: number;
  restartEveryMs?: number;
  /** Called every `progressEvery` documents with the running counts. */
  onProgress?: (counts: PlanCounts) => void;
  progressEvery?: number;
}

export const DEFAULT_SAMPLE_SIZE = 3;
export const DEFAULT_FAILURE_PATH_LIMIT = 20;
/** Skip reasons come from `up`; if one embeds an id, distinct reasons would grow with the data. */
export const SKIP_REASON_LIMIT = 50;
/** Messages name array indices (`participants[3].id`), so distinct messages are capped too. */
export const MESSAGE_LIMIT = 10;
/** Documents examined for new change shapes before the samples settle for what they found. */
export const SAMPLE_SEARCH_LIMIT = 1000;
/** Firestore's documented limit of writes in one commit (client libraries). */
export const MAX_WRITES_PER_COMMIT = 500;

export interface PlanCounts {
  total: number;
  migrate: number;
  alreadyAtTarget: number;
  skipped: number;
  fail: number;
}

export interface PlanFailureClass {
  errorClass: string;
  severity: string;
  count: number;
  /** The first `failurePathLimit` paths in key order. */
  paths: string[];
  /**
   * Distinct messages (built from schema paths and issue codes, never from document values) with
   * their counts and first path, the first MESSAGE_LIMIT of them in order of appearance.
   */
  messages: Array<{ message: string; count: number; firstPath: string }>;
  /** Documents of this class whose message was not listed because MESSAGE_LIMIT was reached. */
  otherMessages: number;
}

export interface PlanSample {
  path: string;
  changes: FieldChange[];
}

export interface ProductionEstimate {
  /** Documents read by one full scan of the target. */
  reads: number;
  writes: {
    updates: number;
    /** One per updated document while MIGRATION_ROLLBACK_ENABLED is on. */
    beforeImages: number;
    /** One per commit: ⌈updates / documentsPerBatch⌉. */
    batchMarkers: number;
    failureRecords: number;
    total: number;
  };
  documentsPerBatch: number;
  quotaSafety: number;
  /** Ramp start after the safety factor. */
  startOpsPerSecond: number;
  /** Seconds the writes take at the 500/50/5 ramp's limit (a lower bound). */
  durationSeconds: number;
}

export interface PlanReport {
  migrationId: string;
  version: string;
  description: string;
  checksum: string;
  target: { kind: 'collection' | 'collectionGroup'; name: string; where: NonNullable<MigrationTarget['where']> };
  validationEnabled: boolean;
  showValues: boolean;
  counts: PlanCounts;
  skipReasons: Array<{ reason: string; count: number }>;
  /** Skipped documents whose reason was not listed because SKIP_REASON_LIMIT was reached. */
  skippedOtherReasons: number;
  failures: PlanFailureClass[];
  samples: PlanSample[];
  estimate: ProductionEstimate;
  /** How long this dry run took (measured). */
  elapsedMs: number;
}

/** The query over a migration's target: its collection or collection group, with its filters. */
export function targetQuery(db: Firestore, target: MigrationTarget): Query {
  let query: Query = 'collection' in target ? db.collection(target.collection) : db.collectionGroup(target.collectionGroup);
  for (const filter of target.where ?? []) query = query.where(filter.field, filter.op, filter.value);
  return query;
}

export async function planMigration(
  db: Firestore,
  migration: Migration,
  config: FiremigrateConfig,
  options: PlanOptions = {},
): Promise<PlanReport> {
  const startedAt = Date.now();
  const showValues = options.showValues ?? false;
  const sampleSize = options.sampleSize ?? DEFAULT_SAMPLE_SIZE;
  const failurePathLimit = options.failurePathLimit ?? DEFAULT_FAILURE_PATH_LIMIT;
  const progressEvery = options.progressEvery ?? 5000;
  const validate = config.migration.validationEnabled;

  const counts: PlanCounts = { total: 0, migrate: 0, alreadyAtTarget: 0, skipped: 0, fail: 0 };
  const skipReasons = new Map<string, number>();
  let skippedOtherReasons = 0;
  const failures = new Map<string, PlanFailureClass>();
  const samples = new SampleCollector(sampleSize, showValues);

  const documents = streamDocuments(targetQuery(db, migration.target), { restartEveryMs: options.restartEveryMs });
  for await (const snapshot of documents) {
    counts.total++;
    const path = snapshot.ref.path;
    const before = snapshot.data();
    const outcome = classifyDocument(migration, before, { path, id: snapshot.id }, { validate });
    switch (outcome.outcome) {
      case 'already-at-target':
        counts.alreadyAtTarget++;
        break;
      case 'skip': {
        counts.skipped++;
        const known = skipReasons.get(outcome.reason);
        if (known !== undefined) skipReasons.set(outcome.reason, known + 1);
        else if (skipReasons.size < SKIP_REASON_LIMIT) skipReasons.set(outcome.reason, 1);
        else skippedOtherReasons++;
        break;
      }
      case 'fail': {
        counts.fail++;
        const { errorClass, severity, message } = outcome.failure;
        let entry = failures.get(errorClass);
        if (!entry) {
          entry = { errorClass, severity, count: 0, paths: [], messages: [], otherMessages: 0 };
          failures.set(errorClass, entry);
        }
        entry.count++;
        if (entry.paths.length < failurePathLimit) entry.paths.push(path);
        const known = entry.messages.find((item) => item.message === message);
        if (known) known.count++;
        else if (entry.messages.length < MESSAGE_LIMIT) entry.messages.push({ message, count: 1, firstPath: path });
        else entry.otherMessages++;
        break;
      }
      case 'migrate':
        counts.migrate++;
        samples.offer(path, before, outcome.after);
        break;
    }
    if (options.onProgress && counts.total % progressEvery === 0) options.onProgress({ ...counts });
  }

  const target = migration.target;
  return {
    migrationId: migration.id,
    version: migration.version,
    description: migration.description,
    checksum: migration.checksum,
    target:
      'collection' in target
        ? { kind: 'collection', name: target.collection, where: target.where ?? [] }
        : { kind: 'collectionGroup', name: target.collectionGroup, where: target.where ?? [] },
    validationEnabled: validate,
    showValues,
    counts,
    skipReasons: [...skipReasons].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count),
    skippedOtherReasons,
    failures: [...failures.values()].sort((a, b) => b.count - a.count),
    samples: samples.result(),
    estimate: estimateProduction(counts, config.migration),
    elapsedMs: Date.now() - startedAt,
  };
}

/**
 * Keeps the first document of each distinct change shape (the diff's lines without values), so
 * the samples show the variety of the data — e.g. a trade whose participant is null beside one
 * whose participant is set — and fills up with the first of the rest when there are fewer shapes
 * among the first SAMPLE_SEARCH_LIMIT documents that would migrate.
 */
class SampleCollector {
  private readonly distinct: PlanSample[] = [];
  private readonly others: PlanSample[] = [];
  private readonly shapes = new Set<string>();
  private examined = 0;

  constructor(
    private readonly size: number,
    private readonly showValues: boolean,
  ) {}

  offer(path: string, before: DocData, after: DocData): void {
    if (this.distinct.length >= this.size || this.examined++ >= SAMPLE_SEARCH_LIMIT) return;
    const shapeOnly = diffDocuments(before, after, { showValues: false });
    const shape = shapeOnly.map(formatFieldChange).join('\n');
    const changes = this.showValues ? diffDocuments(before, after, { showValues: true }) : shapeOnly;
    if (!this.shapes.has(shape)) {
      this.shapes.add(shape);
      this.distinct.push({ path, changes });
    } else if (this.others.length < this.size) {
      this.others.push({ path, changes });
    }
  }

  result(): PlanSample[] {
    return [...this.distinct, ...this.others.slice(0, this.size - this.distinct.length)];
  }
}

/**
 * Documents per commit: at most MIGRATION_BATCH_SIZE, and few enough that the updates, their
 * before-images and the one batch marker stay within 500 writes.
 */
export function documentsPerBatch(batchSize: number, rollbackEnabled: boolean): number {
  const writesPerDocument = rollbackEnabled ? 2 : 1;
  return Math.min(batchSize, Math.floor((MAX_WRITES_PER_COMMIT - 1) / writesPerDocument));
}

/** What the run would cost in production, from the plan's counts. */
export function estimateProduction(
  counts: Pick<PlanCounts, 'total' | 'migrate' | 'fail'>,
  migration: Pick<FiremigrateConfig['migration'], 'batchSize' | 'rollbackEnabled' | 'quotaSafety'>,
): ProductionEstimate {
  const perBatch = documentsPerBatch(migration.batchSize, migration.rollbackEnabled);
  const updates = counts.migrate;
  const beforeImages = migration.rollbackEnabled ? updates : 0;
  const batchMarkers = Math.ceil(updates / perBatch);
  const failureRecords = counts.fail;
  const total = updates + beforeImages + batchMarkers + failureRecords;
  return {
    reads: counts.total,
    writes: { updates, beforeImages, batchMarkers, failureRecords, total },
    documentsPerBatch: perBatch,
    quotaSafety: migration.quotaSafety,
    startOpsPerSecond: RAMP_START_OPS_PER_SECOND * migration.quotaSafety,
    durationSeconds: durationForWrites(total, migration.quotaSafety),
  };
}
