import { Timestamp, type Firestore } from '@google-cloud/firestore';
import { z } from 'zod';
import { AuditLog } from '../control/audit';
import { ControlPaths, MODE_DOCUMENT_PATH } from '../control/paths';

/**
 * The migration mode, in the fixed-path document `_firemigrate_mode/current` that firestore.rules
 * reads (`firemigrateMode()`, `migrationAllowsWrite()`: the fields `mode` and `collections`).
 *  - normal: no migration affects clients.
 *  - dual-read: the listed collections hold both shapes; clients read through the compatibility
 *    reader and keep writing (the migration's trigger upgrades what legacy clients write).
 *  - maintenance: the rules deny client writes to the listed collections.
 * A missing document means normal, for the rules and for `getMode`.
 */
export const MIGRATION_MODES = ['normal', 'dual-read', 'maintenance'] as const;
export type MigrationMode = (typeof MIGRATION_MODES)[number];

/** The mode document as stored. */
export interface ModeDocument {
  mode: MigrationMode;
  /** Collection ids, as the app's rules pass them to `migrationAllowsWrite('<id>')`. */
  collections: string[];
  migrationId?: string;
  changedAt: Timestamp;
  changedBy: string;
  reason: string | null;
}

/** The current mode; the change fields are null while the document has never been written. */
export interface ModeState {
  mode: MigrationMode;
  collections: string[];
  migrationId: string | null;
  changedAt: Timestamp | null;
  changedBy: string | null;
  reason: string | null;
}

export interface ModeChange {
  mode: MigrationMode;
  /** Required (non-empty) for dual-read and maintenance; must be empty or absent for normal. */
  collections?: readonly string[];
  migrationId?: string;
  /** Who answers for the change (`--user`, or the OS user). */
  user: string;
  /** The caller's Google identity, recorded in the audit event beside `user`. */
  identity?: string;
  reason?: string | null;
}

export interface ModeChangeResult {
  /** Null when the previous mode document was malformed (this change replaced it). */
  previous: ModeState | null;
  current: ModeState;
  /** The id of the `mode.changed` audit event. */
  auditEventId: string;
}

/** A mode change that cannot be made as asked, or a mode document that cannot be read. */
export class ModeError extends Error {
  override readonly name = 'ModeError';
}

const NORMAL: ModeState = { mode: 'normal', collections: [], migrationId: null, changedAt: null, changedBy: null, reason: null };

const storedModeSchema = z.object({
  mode: z.enum(MIGRATION_MODES),
  collections: z.array(z.string()),
  migrationId: z.string().optional(),
  changedAt: z.instanceof(Timestamp).optional(),
  changedBy: z.string().optional(),
  reason: z.string().nullable().optional(),
});

/** A collection id as rules compare it: one path segment. */
const COLLECTION_ID = /^[^/]+$/;

function stateOf(data: unknown): ModeState {
  const parsed = storedModeSchema.safeParse(data);
  if (!parsed.success) {
    // Rules treat anything but mode 'maintenance' with a list of collections as open: say exactly what is off.
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(document)'}: ${issue.code}`).join('; ');
    throw new ModeError(
      `${MODE_DOCUMENT_PATH} is malformed (${problems}); expected { mode: ${MIGRATION_MODES.join(' | ')}, collections: string[] } — ` +
        'set the mode again with `firemigrate mode`',
    );
  }
  const stored = parsed.data;
  return {
    mode: stored.mode,
    collections: stored.collections,
    migrationId: stored.migrationId ?? null,
    changedAt: stored.changedAt ?? null,
    changedBy: stored.changedBy ?? null,
    reason: stored.reason ?? null,
  };
}

/** The current mode: normal when the mode document does not exist. */
export async function getMode(db: Firestore): Promise<ModeState> {
  const snapshot = await db.doc(MODE_DOCUMENT_PATH).get();
  return snapshot.exists ? stateOf(snapshot.data()) : { ...NORMAL };
}

/** Checks a change and returns the document to store; throws ModeError naming what is wrong. */
function modeDocumentFor(change: ModeChange, changedAt: Timestamp): ModeDocument {
  if (!(MIGRATION_MODES as readonly string[]).includes(change.mode)) {
    throw new ModeError(`unknown mode "${String(change.mode)}": expected one of ${MIGRATION_MODES.join(', ')}`);
  }
  const collections = [...new Set((change.collections ?? []).map((name) => name.trim()))];
  const bad = collections.filter((name) => !COLLECTION_ID.test(name));
  if (bad.length > 0) {
    throw new ModeError(`invalid collection id(s) ${bad.map((name) => JSON.stringify(name)).join(', ')}: expected one path segment, as passed to migrationAllowsWrite('<id>')`);
  }
  if (change.mode === 'normal' && collections.length > 0) {
    throw new ModeError(`mode normal applies to no collections; got ${collections.join(', ')}`);
  }
  if (change.mode !== 'normal' && collections.length === 0) {
    throw new ModeError(`mode ${change.mode} needs the collections it applies to`);
  }
  const user = change.user.trim();
  if (!user) throw new ModeError('a mode change needs the user who answers for it');
  const document: ModeDocument = { mode: change.mode, collections, changedAt, changedBy: user, reason: change.reason?.trim() || null };
  if (change.migrationId) document.migrationId = change.migrationId;
  return document;
}

/**
 * Sets the mode (replacing the whole document, so no field of an earlier mode survives) and
 * records a `mode.changed` audit event with the previous and the new mode, in one transaction:
 * the change and its audit event commit together or not at all.
 */
export async function setMode(db: Firestore, change: ModeChange, paths: ControlPaths = new ControlPaths()): Promise<ModeChangeResult> {
  const document = modeDocumentFor(change, Timestamp.now());
  const current = stateOf(document);
  const ref = db.doc(MODE_DOCUMENT_PATH);
  const audit = new AuditLog(db, paths);
  return db.runTransaction(async (transaction) => {
    const snapshot = await transaction.get(ref);
    let previous: ModeState | null;
    try {
      previous = snapshot.exists ? stateOf(snapshot.data()) : { ...NORMAL };
    } catch (error) {
      // A malformed document is what this change repairs: recorded as such rather than refused.
      if (!(error instanceof ModeError)) throw error;
      previous = null;
    }
    transaction.set(ref, document);
    const auditEventId = audit.appendIn(transaction, {
      action: 'mode.changed',
      migrationId: document.migrationId ?? null,
      runId: null,
      user: document.changedBy,
      identity: change.identity ?? 'unknown',
      reason: document.reason,
      details: {
        from: previous ? { mode: previous.mode, collections: previous.collections } : 'malformed',
        to: { mode: current.mode, collections: current.collections },
      },
    });
    return { previous, current, auditEventId };
  });
}
