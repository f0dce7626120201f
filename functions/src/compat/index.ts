/**
 * firemigrate's compatibility layer for application code, importable on its own
 * (`firemigrate/compat`): read any document in a migration's new shape while a migration is under
 * way, the TradeYa dual-shape list queries, and the migration mode the security rules enforce.
 * Nothing here writes application data.
 */
export { readInNewShape, MissingDocumentError, type NewShapeRead, type ReadShape, type ReadIssue, type InvalidReason, type SnapshotLike } from './reader';
export {
  listUserTrades,
  listUserConversations,
  TRADE_PARTY_FIELDS,
  DEFAULT_LIST_LIMIT,
  DEFAULT_LEGACY_SCAN_LIMIT,
  type ListedDocument,
  type UserConversations,
} from './tradeya-queries';
export {
  getMode,
  setMode,
  MIGRATION_MODES,
  ModeError,
  type MigrationMode,
  type ModeState,
  type ModeChange,
  type ModeChangeResult,
  type ModeDocument,
} from './modes';
