/**
 * Post-migration validation: ONE streaming scan of the whole target (bounded memory, like the
 * planner's) that
 * - parses every document at the target version with the migration's `to` schema — every
 *   migrated document, not a sample;
 * - classifies every document still in the old shape exactly as the engine would: skipped by
 *   `up()`, failed (with its class and severity), or still migratable ("remaining": left behind);
 * and reports the counts before and after the run, so that
 *   migrated + already at target + skipped + failed + remaining = total.
 * `migrated` is the run's own count (its batch markers: each migration committed once, G2);
 * "already at target" is the rest of the documents at the target version (at target before the
 * run, or written in the new shape by the app). The report passes when every document at the
 * target parses and none is left behind; recorded failures do not fail it — they are listed.
 * Failure messages are built from schema paths and issue codes, never document values.
 */
import type { Firestore } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import type { ControlPaths } from '../control/paths';
import { countFailureRecords } from '../control/progress';
import { RunStore, type RunDocument } from '../control/runs';
import { classifyDocument, type FailureSeverity } from '../definitions/classify';
import { formatFieldPath } from '../definitions/normalize';
import type { DocData, Migration } from '../definitions/types';
import { totalsByPhase } from './final-sweep';
import { streamDocuments } from './key-stream';
import { targetQuery } from './planner';

/** A document at the target version that does not parse with `to`: the app would read a broken document. */
export const INVALID_TARGET_CLASS = 'invalid-target';
const INVALID_TARGET_SEVERITY: FailureSeverity = 'critical';
export const DEFAULT_REPORT_PATH_LIMIT = 20;
/** Zod issue lists are capped in the message, like the engine's failure records. */
const MAX_ISSUES = 5;

export interface ReportFailureClass {
  errorClass: string;
  severity: FailureSeverity;
  count: number;
  /** The first `pathLimit` paths in key order; `count` is exact. */
  paths: string[];
  /** The message of the first document of the class (paths and issue codes only). */
  firstMessage: string;
}

export interface ValidationReport {
  migrationId: string;
  runId: string;
  /** The definition validated against; `definitionMatchesRun` is false when the run used another. */
  checksum: string;
  definitionMatchesRun: boolean;
  /** ISO time the scan ended. */
  validatedAt: string;
  elapsedMs: number;
  /** Every document at the target parses with `to`, and none is left in the old shape that would migrate. */
  ok: boolean;
  /** The target when the run started (counts taken then; atTarget null where the count needed an index). */
  before: { total: number | null; atTarget: number | null; oldShape: number | null };
  after: {
    total: number;
    atTarget: number;
    /** Migrated by this run: the sum of its batch markers' `migrated`. */
    migrated: number;
    /** At the target version and not migrated by this run. */
    alreadyAtTarget: number;
    skipped: number;
    failed: number;
    /** Still in the old shape and migratable now: left behind. */
    remaining: number;
  };
  /** Documents at the target version checked with `to`: all of them. */
  integrity: { checked: number; valid: number; invalid: number };
  /** The run's failure records: documents that failed at least once (some may have migrated since). */
  failureRecords: number;
  failures: ReportFailureClass[];
  /** The first `pathLimit` documents left behind. */
  remainingPaths: string[];
}

export interface ValidationOptions {
  /** Paths listed per failure class and for `remaining` (default DEFAULT_REPORT_PATH_LIMIT). */
  pathLimit?: number;
  restartEveryMs?: number;
  /** Called every `progressEvery` documents with the number scanned. */
  onProgress?: (scanned: number) => void;
  progressEvery?: number;
}

export interface ValidationContext {
  db: Firestore;
  migration: Migration;
  config: FiremigrateConfig;
  paths: ControlPaths;
  run: RunDocument;
}

class FailureTally {
  private readonly byClass = new Map<string, ReportFailureClass>();

  constructor(private readonly pathLimit: number) {}

  add(errorClass: string, severity: FailureSeverity, message: string, path: string): void {
    let entry = this.byClass.get(errorClass);
    if (!entry) {
      entry = { errorClass, severity, count: 0, paths: [], firstMessage: message };
      this.byClass.set(errorClass, entry);
    }
    entry.count++;
    if (entry.paths.length < this.pathLimit) entry.paths.push(path);
  }

  result(): ReportFailureClass[] {
    return [...this.byClass.values()].sort((a, b) => b.count - a.count);
  }
}

function integrityMessage(migration: Migration, data: DocData): string {
  let parsed;
  try {
    parsed = migration.to.safeParse(data);
  } catch (error) {
    return `the target schema check threw ${(error as Error)?.name ?? 'an error'}`;
  }
  if (parsed.success) return '';
  const issues = parsed.error.issues.map(
    (issue) => `${issue.path.length ? formatFieldPath(issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key))) : '(document)'}: ${issue.code}`,
  );
  const more = issues.length > MAX_ISSUES ? `; and ${issues.length - MAX_ISSUES} more` : '';
  return `at the target version but does not match the target schema: ${issues.slice(0, MAX_ISSUES).join('; ')}${more}`;
}

/** Scans the run's target and builds its report (writes nothing; see `storeReport`). */
export async function validateRun(ctx: ValidationContext, options: ValidationOptions = {}): Promise<ValidationReport> {
  const started = Date.now();
  const { db, migration, config, paths, run } = ctx;
  const pathLimit = options.pathLimit ?? DEFAULT_REPORT_PATH_LIMIT;
  const progressEvery = options.progressEvery ?? 10_000;
  const { field, to } = migration.marker;
  const failures = new FailureTally(pathLimit);
  const remainingPaths: string[] = [];
  let total = 0;
  let atTarget = 0;
  let invalid = 0;
  let skipped = 0;
  let failed = 0;
  let remaining = 0;
  for await (const snapshot of streamDocuments(targetQuery(db, migration.target), { restartEveryMs: options.restartEveryMs })) {
    total++;
    const data = snapshot.data();
    const path = snapshot.ref.path;
    if (data[field] === to) {
      atTarget++;
      const message = integrityMessage(migration, data);
      if (message) {
        invalid++;
        failures.add(INVALID_TARGET_CLASS, INVALID_TARGET_SEVERITY, message, path);
      }
    } else {
      const outcome = classifyDocument(migration, data, { path, id: snapshot.id }, { validate: config.migration.validationEnabled });
      if (outcome.outcome === 'fail') {
        failed++;
        failures.add(outcome.failure.errorClass, outcome.failure.severity, outcome.failure.message, path);
      } else if (outcome.outcome === 'skip') {
        skipped++;
      } else {
        remaining++;
        if (remainingPaths.length < pathLimit) remainingPaths.push(path);
      }
    }
    if (options.onProgress && total % progressEvery === 0) options.onProgress(total);
  }
  // The partitions' and the sweep's markers: every migration the run committed, each once.
  const [byPhase, failureRecords] = await Promise.all([
    totalsByPhase(db, paths, run.migrationId, run.runId),
    countFailureRecords(db, paths, run.migrationId, run.runId),
  ]);
  const migrated = byPhase.partitions.migrated + byPhase.sweep.migrated;
  const before = run.before ?? null;
  return {
    migrationId: migration.id,
    runId: run.runId,
    checksum: migration.checksum,
    definitionMatchesRun: migration.checksum === run.checksum,
    validatedAt: new Date().toISOString(),
    elapsedMs: Date.now() - started,
    ok: invalid === 0 && remaining === 0,
    before: {
      total: before?.total ?? null,
      atTarget: before?.atTarget ?? null,
      oldShape: before && before.atTarget !== null ? before.total - before.atTarget : null,
    },
    after: { total, atTarget, migrated, alreadyAtTarget: Math.max(0, atTarget - migrated), skipped, failed, remaining },
    integrity: { checked: atTarget, valid: atTarget - invalid, invalid },
    failureRecords,
    failures: failures.result(),
    remainingPaths,
  };
}

/** Stores the report in the run document (`report`). */
export async function storeReport(db: Firestore, paths: ControlPaths, report: ValidationReport): Promise<void> {
  await new RunStore(db, paths).update(report.migrationId, report.runId, { report });
}
