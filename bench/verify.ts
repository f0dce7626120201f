import type { Firestore, QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { DocData, Migration } from '../functions/src/definitions/types';
import { updateTimeKey } from './app-writer';

export interface Verification {
  /** Trades with the marker at the target version. */
  atTarget: number;
  expectedAtTarget: number;
  /**
   * Migrated trades whose v2 fields do not derive from their current source fields although the
   * migration wrote them last: the migration computed them from a stale read (a lost app write).
   */
  stale: number;
  /** Trades the app changed after the migration wrote them (the dual-read trigger's job, not a lost write). */
  changedAfter: number;
}

/** Plain data as text with sorted keys: Firestore does not keep map key order through a write. */
function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value && typeof value === 'object') {
    const record = value as DocData;
    return `{${Object.keys(record).sort().map((key) => `${JSON.stringify(key)}:${canonical(record[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/** Whether the fields `up()` added equal what `up()` makes of the document's current source fields. */
function derivedFieldsCurrent(migration: Migration, snapshot: QueryDocumentSnapshot): boolean {
  const data = snapshot.data();
  let expected;
  try {
    expected = migration.up(data, { path: snapshot.ref.path, id: snapshot.id }) as DocData;
  } catch {
    return false;
  }
  return Object.keys(expected).every((field) => canonical(data[field]) === canonical(expected[field]));
}

/**
 * Reads the whole collection after a contender (one stream) and checks its work: every document
 * that should be at the target version is, and — for the migrated ones — the new fields match
 * the source fields, unless the app writer wrote the document last (`lastWrites`).
 */
export async function verifyMigration(
  db: Firestore,
  collection: string,
  migration: Migration,
  expectedAtTarget: number,
  lastWrites: ReadonlyMap<string, string> = new Map(),
): Promise<Verification> {
  const result: Verification = { atTarget: 0, expectedAtTarget, stale: 0, changedAfter: 0 };
  for await (const snapshot of db.collection(collection).stream() as AsyncIterable<QueryDocumentSnapshot>) {
    if (snapshot.get(migration.marker.field) !== migration.marker.to) continue;
    result.atTarget++;
    if (derivedFieldsCurrent(migration, snapshot)) continue;
    if (lastWrites.get(snapshot.ref.path) === updateTimeKey(snapshot.updateTime)) result.changedAfter++;
    else result.stale++;
  }
  return result;
}

/**
 * A contender's work checks out when exactly the documents it reports migrated (plus those already
 * at target) are at target, and — on a quiet collection — when it migrated every legacy document
 * with the values `up()` gives. With the app writer, the engine may leave documents that kept
 * changing to the final sweep (precondition-exhausted failure records): they are not at target,
 * and not counted as migrated.
 */
export function verificationPassed(verification: Verification, run: { quiet: boolean; migrated: number; alreadyAtTarget: number }): boolean {
  if (verification.atTarget !== run.migrated + run.alreadyAtTarget) return false;
  return !run.quiet || (verification.atTarget === verification.expectedAtTarget && verification.stale + verification.changedAfter === 0);
}

export interface RollbackVerification {
  /** Trades with the marker at the target version after the rollback. */
  atTarget: number;
  /** The trades seeded already at target: the only ones a complete rollback leaves there. */
  expectedAtTarget: number;
  /** Conflicts the rollback listed and left alone (still at target by design). */
  conflicts: number;
}

/** Reads the whole collection after a rollback (one stream) and counts the trades still at the target version. */
export async function verifyRollback(db: Firestore, collection: string, migration: Migration, expectedAtTarget: number, conflicts: number): Promise<RollbackVerification> {
  let atTarget = 0;
  for await (const snapshot of db.collection(collection).select(migration.marker.field).stream() as AsyncIterable<QueryDocumentSnapshot>) {
    if (snapshot.get(migration.marker.field) === migration.marker.to) atTarget++;
  }
  return { atTarget, expectedAtTarget, conflicts };
}

/**
 * A rollback checks out when it completed and every trade the migration moved is back in the
 * old shape: only the seeded already-at-target trades (and conflicts, listed and left alone) remain at target.
 */
export function rollbackPassed(status: string, verification: RollbackVerification): boolean {
  return status === 'completed' && verification.atTarget === verification.expectedAtTarget + verification.conflicts;
}
