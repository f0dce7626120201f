import type { Firestore, QueryDocumentSnapshot } from '@google-cloud/firestore';
import type { Migration } from '../definitions/types';
import { PROBE_PAGE_SIZE } from '../migrations/tradeya/app-queries';
import { conversationsV2 } from '../migrations/tradeya/conversations';
import { tradesV2 } from '../migrations/tradeya/trades';
import { compareNewestFirst, mergeNewestFirst } from './query-merge';
import { readInNewShape, type NewShapeRead } from './reader';

/**
 * The TradeYa app's per-user lists while a v2 migration is under way, when some documents are
 * still legacy and some are v2: every document of the user once, newest first, in the v2 shape.
 * Server-side (Admin SDK): the legacy conversation scan reads other users' conversations, which
 * client rules rightly refuse.
 */

/** A document of a list: where it is, and what `readInNewShape` made of it. */
export type ListedDocument = NewShapeRead & { id: string; path: string };

/** Trade fields that name a party: v2 first, then the legacy ones old clients still write. */
export const TRADE_PARTY_FIELDS = ['participants.creator', 'participants.participant', 'creatorId', 'participantId'] as const;

/** The default `limit` and `legacyScanLimit`. */
export const DEFAULT_LIST_LIMIT = PROBE_PAGE_SIZE;
export const DEFAULT_LEGACY_SCAN_LIMIT = 200;

function assertLimit(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be an integer of ${min} or more, got ${String(value)}`);
}

function listed(migration: Migration, snapshot: QueryDocumentSnapshot): ListedDocument {
  return { id: snapshot.id, path: snapshot.ref.path, ...readInNewShape(migration, snapshot) };
}

/**
 * The newest `limit` trades in which `userId` is the creator or the participant, in either shape:
 * one query per party field (`TRADE_PARTY_FIELDS`, each `== userId`, `createdAt` descending,
 * limited), merged without repeats. A trade is the user's when any of the four fields names them.
 * The page is exact: each of the user's first `limit` trades is among the first `limit` matches
 * of a query for a field naming them. Trades without `createdAt` are not listed (as in the app's
 * own query). Indexes: `(field ASC, createdAt DESC)` for each of the four fields (firestore.indexes.json).
 * A malformed trade is listed with `shape: 'invalid'` and its issues; the app decides what to show.
 */
export async function listUserTrades(db: Firestore, userId: string, options: { limit?: number } = {}): Promise<ListedDocument[]> {
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  assertLimit('limit', limit, 1);
  const trades = db.collection('trades');
  const pages = await Promise.all(
    TRADE_PARTY_FIELDS.map(async (field) => (await trades.where(field, '==', userId).orderBy('createdAt', 'desc').limit(limit).get()).docs),
  );
  return mergeNewestFirst(pages, 'createdAt', limit).map((snapshot) => listed(tradesV2, snapshot));
}

export interface UserConversations {
  conversations: ListedDocument[];
  /**
   * True when no legacy conversation of the user can be missing from the page: the scan reached
   * the end of the collection, or the page is full and the scan reached past its last entry.
   * False means an older legacy conversation might belong on the page (raise `legacyScanLimit`,
   * or wait for the migration to finish).
   */
  complete: boolean;
  /** Conversations the legacy scan read (other users' included). */
  legacyScanned: number;
}

/**
 * The `limit` most recently updated conversations of `userId`, in either shape.
 *
 * v2 conversations are found by `participantIds array-contains userId` (`updatedAt` descending;
 * index `(participantIds CONTAINS, updatedAt DESC)`). A legacy conversation cannot be found by
 * member: its `participants` is an array of maps, and `array-contains` only matches a whole map.
 * So the legacy ones come from a BOUNDED scan of the `legacyScanLimit` most recently updated
 * conversations (any user's; the automatic single-field index on `updatedAt`), keeping those
 * without `participantIds` that list the user (`id` or `userId`) — `participantIds` is
 * authoritative whenever present, as in firestore.rules. Conversations updated before the scan's
 * horizon are not seen: `complete` says whether that could have changed the page. Each call costs
 * up to `legacyScanLimit` extra reads; once the migration has completed (every conversation has
 * `participantIds`), pass `legacyScanLimit: 0` (then `complete` is false: legacy ones were not
 * looked for). Conversations without `updatedAt` are not listed (as in the app's own query).
 */
export async function listUserConversations(
  db: Firestore,
  userId: string,
  options: { limit?: number; legacyScanLimit?: number } = {},
): Promise<UserConversations> {
  const limit = options.limit ?? DEFAULT_LIST_LIMIT;
  const scanLimit = options.legacyScanLimit ?? DEFAULT_LEGACY_SCAN_LIMIT;
  assertLimit('limit', limit, 1);
  assertLimit('legacyScanLimit', scanLimit, 0);
  const conversations = db.collection('conversations');
  const [members, scanned] = await Promise.all([
    conversations.where('participantIds', 'array-contains', userId).orderBy('updatedAt', 'desc').limit(limit).get(),
    scanLimit > 0 ? conversations.orderBy('updatedAt', 'desc').limit(scanLimit).get() : Promise.resolve(undefined),
  ]);
  const scannedDocs = scanned?.docs ?? [];
  const legacy = scannedDocs.filter((snapshot) => snapshot.get('participantIds') === undefined && listsLegacyMember(snapshot.get('participants'), userId));
  const page = mergeNewestFirst([members.docs, legacy], 'updatedAt', limit);

  const horizon = scannedDocs[scannedDocs.length - 1];
  const last = page[page.length - 1];
  const complete =
    scanned !== undefined &&
    (scannedDocs.length < scanLimit || (page.length === limit && horizon !== undefined && compareNewestFirst('updatedAt')(last, horizon) <= 0));
  return { conversations: page.map((snapshot) => listed(conversationsV2, snapshot)), complete, legacyScanned: scannedDocs.length };
}

/** Whether a legacy `participants` array names the user, by `id` or `userId` (the ids the migration collects). */
function listsLegacyMember(participants: unknown, userId: string): boolean {
  if (!Array.isArray(participants)) return false;
  return participants.some(
    (participant) => typeof participant === 'object' && participant !== null && ((participant as Record<string, unknown>).id === userId || (participant as Record<string, unknown>).userId === userId),
  );
}
