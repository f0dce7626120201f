import { Timestamp, type QueryDocumentSnapshot } from '@google-cloud/firestore';

/**
 * Merging the pages of several queries that share one `orderBy(field, 'desc')`. The merged page
 * is exact (the first `limit` documents of the union of the queries' matches) when each query
 * was limited to `limit` and the merge uses the order Firestore used: the field's value
 * descending, then the document name descending (Firestore's implicit tie-break follows the
 * direction of the last `orderBy`).
 */

/** Firestore's order of value types: null, booleans, numbers, timestamps, strings, bytes, references, geo points, arrays, maps. */
function typeRank(value: unknown): number {
  if (value === null) return 0;
  if (typeof value === 'boolean') return 1;
  if (typeof value === 'number' || typeof value === 'bigint') return 2;
  if (isTimestamp(value)) return 3;
  if (typeof value === 'string') return 4;
  if (Buffer.isBuffer(value) || value instanceof Uint8Array) return 5;
  const name = (value as object).constructor?.name;
  if (name === 'DocumentReference') return 6;
  if (name === 'GeoPoint') return 7;
  if (Array.isArray(value)) return 8;
  return 9;
}

/** Also a Timestamp of another copy of the SDK (an app's own firebase-admin). */
function isTimestamp(value: unknown): value is Timestamp {
  return value instanceof Timestamp || (typeof value === 'object' && value !== null && value.constructor?.name === 'Timestamp');
}

/** UTF-8 byte order, as Firestore compares strings (JavaScript's `<` compares UTF-16 code units). */
export function compareUtf8(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Ascending order of two values of an `orderBy` field. Values of the same type compare by value
 * for the types a sort field plausibly holds (booleans, numbers, timestamps, strings); other
 * types compare equal among themselves and fall through to the document name.
 */
export function compareOrderValues(a: unknown, b: unknown): number {
  const rank = typeRank(a) - typeRank(b);
  if (rank !== 0) return rank;
  if (typeof a === 'boolean') return Number(a) - Number(b as boolean);
  if (typeof a === 'number' || typeof a === 'bigint') {
    const [x, y] = [Number(a), Number(b)];
    // Firestore orders NaN before every other number.
    if (Number.isNaN(x) || Number.isNaN(y)) return Number(!Number.isNaN(x)) - Number(!Number.isNaN(y));
    return x < y ? -1 : x > y ? 1 : 0;
  }
  if (isTimestamp(a)) {
    const other = b as Timestamp;
    return a.seconds - other.seconds || a.nanoseconds - other.nanoseconds;
  }
  if (typeof a === 'string') return compareUtf8(a, b as string);
  return 0;
}

/** Newest first by `field`, then by document name descending: the order of `orderBy(field, 'desc')`. */
export function compareNewestFirst(field: string): (a: QueryDocumentSnapshot, b: QueryDocumentSnapshot) => number {
  return (a, b) => compareOrderValues(b.get(field), a.get(field)) || compareUtf8(b.ref.path, a.ref.path);
}

/** The union of `pages` without repeats (by document path), in `orderBy(field, 'desc')` order, cut to `limit`. */
export function mergeNewestFirst(pages: ReadonlyArray<readonly QueryDocumentSnapshot[]>, field: string, limit: number): QueryDocumentSnapshot[] {
  const byPath = new Map<string, QueryDocumentSnapshot>();
  for (const page of pages) for (const snapshot of page) byPath.set(snapshot.ref.path, snapshot);
  return [...byPath.values()].sort(compareNewestFirst(field)).slice(0, limit);
}
