import { randomBytes } from 'node:crypto';
import { FieldPath, type Firestore, type Query, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { Migration } from '../definitions/types';
import { targetQuery } from '../engine/planner';

const AUTO_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';

/** A random key shaped like Firestore's auto ids: a start point spread over the key space. */
export function randomStartKey(): string {
  return [...randomBytes(20)].map((byte) => AUTO_ID_ALPHABET[byte % AUTO_ID_ALPHABET.length]).join('');
}

/**
 * Up to `size` documents of `query` over a collection, read from a random key onward and wrapping
 * around to the start: two bounded reads, never a scan. A collection-group target has no single
 * key space to start in, so it is sampled from its first key.
 */
export async function sampleDocuments(migration: Migration, query: Query, size: number, startKey: string = randomStartKey()): Promise<QueryDocumentSnapshot[]> {
  if (!('collection' in migration.target)) return (await query.limit(size).get()).docs;
  const ordered = query.orderBy(FieldPath.documentId());
  const after = (await ordered.startAt(startKey).limit(size).get()).docs;
  if (after.length >= size) return after;
  const before = (await ordered.endBefore(startKey).limit(size - after.length).get()).docs;
  return [...after, ...before];
}

/** The migration's target documents at the target version (marker field equals `marker.to`). */
export function atTargetQuery(db: Firestore, migration: Migration): Query {
  return targetQuery(db, migration.target).where(migration.marker.field, '==', migration.marker.to);
}
