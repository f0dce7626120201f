/**
 * Integrity: sampled documents at the target version parse with the migration's `to` schema;
 * their declared references name existing documents (orphans); and the run's counts add up —
 * at target + failed + skipped + remaining = total (aggregate count queries), with the documents
 * at target equal to those found there when the run started plus those its batch markers migrated.
 */
import type { Firestore, QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { AlertThresholds } from '../../config';
import type { DocData, Migration, ReferenceDeclaration } from '../../definitions/types';
import { evaluateBelow, formatRatio } from '../evaluate';
import type { CheckResult } from '../types';

export function schemaCheck(sampled: number, valid: number, firstIssues: string | null, thresholds: AlertThresholds, marker: string): CheckResult {
  if (sampled === 0) {
    return {
      name: 'schemaCompliance', dimension: 'integrity', status: 'not-checkable', value: null, threshold: null, unit: 'ratio',
      message: `not measured: no document carries the target version marker "${marker}" yet`, recommendedAction: null,
    };
  }
  const share = valid / sampled;
  const verdict = evaluateBelow(share, thresholds.integrity);
  return {
    name: 'schemaCompliance', dimension: 'integrity', status: verdict.status, value: share, threshold: verdict.threshold, unit: 'ratio',
    message: `${valid} of ${sampled} sampled documents at version "${marker}" parse with the target schema (${formatRatio(share)})${firstIssues ? `; first problem: ${firstIssues}` : ''}`,
    recommendedAction: verdict.status === 'ok' ? null : 'Migrated documents do not match the target schema: stop the run and check up() and MIGRATION_VALIDATION_ENABLED, or roll back (firemigrate rollback).',
  };
}

/** The values at a reference's field: one, or every element of the array for a `[]` path. */
export function referenceValues(doc: DocData, reference: ReferenceDeclaration): unknown[] {
  const isArray = reference.field.endsWith('[]');
  const segments = (isArray ? reference.field.slice(0, -2) : reference.field).split('.');
  let value: unknown = doc;
  for (const segment of segments) {
    value = value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as DocData)[segment] : undefined;
  }
  if (!isArray) return [value];
  return Array.isArray(value) ? value : [undefined];
}

/** A Firestore document id: a non-empty string without '/', not '.' or '..'. */
function isDocumentId(value: unknown): value is string {
  return typeof value === 'string' && value.length > 0 && !value.includes('/') && value !== '.' && value !== '..';
}

export interface OrphanCount {
  /** Sampled documents with at least one reference to a missing document. */
  orphanDocuments: number;
  /** Dangling references per declared field. */
  byField: Record<string, number>;
  /** Paths of the first orphan documents (at most 10), for the message. */
  examples: string[];
}

const GET_ALL_CHUNK = 100;

/** Reads every distinct referenced document once (existence only) and counts the sampled documents that point at a missing one. */
export async function countOrphans(db: Firestore, docs: readonly QueryDocumentSnapshot[], references: readonly ReferenceDeclaration[]): Promise<OrphanCount> {
  const wanted = new Set<string>();
  for (const doc of docs) {
    for (const reference of references) {
      for (const value of referenceValues(doc.data(), reference)) if (isDocumentId(value)) wanted.add(`${reference.collection}/${value}`);
    }
  }
  const existing = new Set<string>();
  const paths = [...wanted];
  for (let i = 0; i < paths.length; i += GET_ALL_CHUNK) {
    const refs = paths.slice(i, i + GET_ALL_CHUNK).map((path) => db.doc(path));
    // An empty field mask: existence only, no user data read.
    for (const snapshot of await db.getAll(...refs, { fieldMask: [] })) if (snapshot.exists) existing.add(snapshot.ref.path);
  }
  const result: OrphanCount = { orphanDocuments: 0, byField: Object.fromEntries(references.map((reference) => [reference.field, 0])), examples: [] };
  for (const doc of docs) {
    let orphan = false;
    for (const reference of references) {
      for (const value of referenceValues(doc.data(), reference)) {
        const absent = value === undefined || value === null;
        if (absent && reference.optional) continue;
        if (!absent && isDocumentId(value) && existing.has(`${reference.collection}/${value}`)) continue;
        result.byField[reference.field]++;
        orphan = true;
      }
    }
    if (orphan) {
      result.orphanDocuments++;
      if (result.examples.length < 10) result.examples.push(doc.ref.path);
    }
  }
  return result;
}

export function orphanCheck(migration: Migration, sampled: number, orphans: OrphanCount | null): CheckResult {
  if (!orphans) {
    return {
      name: 'orphans', dimension: 'integrity', status: 'not-checkable', value: null, threshold: null, unit: 'count',
      message: migration.references?.length ? 'not measured: no document at the target version to sample' : 'not measured: the migration declares no references',
      recommendedAction: null,
    };
  }
  const fields = Object.entries(orphans.byField).map(([field, count]) => `${field}: ${count}`).join(', ');
  return {
    name: 'orphans', dimension: 'integrity', status: orphans.orphanDocuments > 0 ? 'warning' : 'ok', value: orphans.orphanDocuments, threshold: 0, unit: 'count',
    message: `${orphans.orphanDocuments} of ${sampled} sampled documents reference a missing document (${fields})${orphans.examples.length ? `, e.g. ${orphans.examples.join(', ')}` : ''}`,
    recommendedAction: orphans.orphanDocuments > 0 ? 'Dangling references predate or survive the migration: fix or remove the referenced ids in the app\'s data; the migration carries them over unchanged.' : null,
  };
}

export interface CountFigures {
  total: number;
  atTarget: number;
  /** Failure records of the run (one per failed document). */
  failed: number;
  /** Documents `up` skipped, from the run's batch markers. */
  skipped: number;
  /** Documents migrated, from the run's batch markers. */
  migratedByMarkers: number;
  /** Documents at the target version when the run started; null when the run did not count them. */
  atTargetBefore: number | null;
  runCompleted: boolean;
}

export function countsCheck(figures: CountFigures): CheckResult {
  const remaining = figures.total - figures.atTarget - figures.failed - figures.skipped;
  const expectedAtTarget = figures.atTargetBefore === null ? null : figures.atTargetBefore + figures.migratedByMarkers;
  const problems: string[] = [];
  if (remaining < 0) problems.push(`${-remaining} more documents are accounted for than exist (failed documents fixed since, or documents deleted)`);
  if (expectedAtTarget !== null && expectedAtTarget !== figures.atTarget) {
    problems.push(`${figures.atTarget} at target by count, ${expectedAtTarget} by the run (${figures.atTargetBefore} before it + ${figures.migratedByMarkers} migrated): the app wrote or deleted documents at the target version`);
  }
  if (figures.runCompleted && remaining > 0) problems.push(`${remaining} documents left in the old shape although the run completed`);
  const equation = `total ${figures.total} = at target ${figures.atTarget} + failed ${figures.failed} + skipped ${figures.skipped} + remaining ${remaining}`;
  const before = expectedAtTarget === null ? '; at-target count before the run not recorded' : `; markers: ${figures.atTargetBefore} at target before the run + ${figures.migratedByMarkers} migrated`;
  return {
    name: 'counts', dimension: 'integrity', status: problems.length > 0 ? 'warning' : 'ok', value: remaining, threshold: null, unit: 'docs',
    message: `${equation}${before}${problems.length ? `; ${problems.join('; ')}` : ''}`,
    recommendedAction: problems.length > 0 ? 'Run firemigrate report <run> to re-validate the target, and resume the run if documents are left in the old shape.' : null,
  };
}
