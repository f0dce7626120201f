import { Timestamp } from '@google-cloud/firestore';
import type { ImpactQuery, ServiceProbe } from '../../definitions/types';

/** Trades whose parties a rollback would disturb mid-deal. */
export const ACTIVE_TRADE_STATUSES = ['active', 'in_progress'] as const;
/** "Active users" for impact assessment: seen by the app within this window. */
export const RECENTLY_ACTIVE_WINDOW_MS = 15 * 60 * 1000;
/**
 * The user the per-user probes ask for. Nobody has this id: the probes take the index path of the
 * app's per-user screens without depending on any one user's data.
 */
export const PROBE_USER_ID = 'firemigrate-probe-user';
/** The page size of the app's list screens. */
export const PROBE_PAGE_SIZE = 20;

export const activeTrades: ImpactQuery = {
  name: 'active-trades',
  description: `trades with status ${ACTIVE_TRADE_STATUSES.join(' or ')}`,
  query: (db) => db.collection('trades').where('status', 'in', [...ACTIVE_TRADE_STATUSES]),
};

export const activeUsers: ImpactQuery = {
  name: 'active-users',
  description: 'users whose lastActiveAt is within the last 15 minutes',
  // The window is measured when the query is built, i.e. at each assessment.
  query: (db) =>
    db.collection('users').where('lastActiveAt', '>=', Timestamp.fromMillis(Date.now() - RECENTLY_ACTIVE_WINDOW_MS)),
};

/** Needs the composite index trades (status ASC, createdAt DESC). */
export const recentOpenTrades: ServiceProbe = {
  name: 'recent-open-trades',
  query: (db) => db.collection('trades').where('status', '==', 'open').orderBy('createdAt', 'desc').limit(PROBE_PAGE_SIZE),
};

/** Needs the composite index trades (creatorId ASC, createdAt DESC). */
export const userTrades: ServiceProbe = {
  name: 'user-trades',
  query: (db) =>
    db.collection('trades').where('creatorId', '==', PROBE_USER_ID).orderBy('createdAt', 'desc').limit(PROBE_PAGE_SIZE),
};

/** Needs the composite index conversations (participantIds CONTAINS, updatedAt DESC). */
export const userConversations: ServiceProbe = {
  name: 'user-conversations',
  query: (db) =>
    db
      .collection('conversations')
      .where('participantIds', 'array-contains', PROBE_USER_ID)
      .orderBy('updatedAt', 'desc')
      .limit(PROBE_PAGE_SIZE),
};
