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
  /**
   * dual-read only: the migrations the sync trigger applies to what clients write in these
   * collections (compat/sync-trigger.ts). Absent or empty: the trigger writes nothing.
   */
  migrations?: string[];
  migrationId?: string;
  /** The run whose start or end made this change (mode-policy.ts); absent for an operator's change. */
  runId?: string;
  changedAt: Timestamp;
  changedBy: string;
  reason: string | null;
}

/** The current mode; the change fields are null while the document has never been written. */
export interface ModeState {
  mode: MigrationMode;
  collections: string[];
  /** The migrations the sync trigger applies (dual-read only). */
  migrations: string[];
  migrationId: string | null;
  runId: string | null;
  changedAt: Timestamp | null;
  changedBy: string | null;
  reason: string | null;
}

export interface ModeChange {
  mode: MigrationMode;
  /** Required (non-empty) for dual-read and maintenance; must be empty or absent for normal. */
  collections?: readonly string[];
  /** dual-read only: the migrations the sync trigger applies (see ModeDocument.migrations). */
  migrations?: readonly string[];
  migrationId?: string;
  runId?: string;
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

const NORMAL: ModeState = { mode: 'normal', collections: [], migrations: [], migrationId: null, runId: null, changedAt: null, changedBy: null, reason: null };

const storedModeSchema = z.object({
  mode: z.enum(MIGRATION_MODES),
  collections: z.array(z.string()),
  migrations: z.array(z.string()).optional(),
  migrationId: z.string().optional(),
  runId: z.string().optional(),
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
    migrations: stored.migrations ?? [],
    migrationId: stored.migrationId ?? null,
    runId: stored.runId ?? null,
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
  const migrations = [...new Set(change.migrations ?? [])];
  if (change.mode !== 'dual-read' && migrations.length > 0) {
    throw new ModeError(`the sync trigger runs in dual-read only; mode ${change.mode} takes no migrations (got ${migrations.join(', ')})`);
  }
  const user = change.user.trim();
  if (!user) throw new ModeError('a mode change needs the user who answers for it');
  const document: ModeDocument = { mode: change.mode, collections, changedAt, changedBy: user, reason: change.reason?.trim() || null };
  if (migrations.length > 0) document.migrations = migrations;
  if (change.migrationId) document.migrationId = change.migrationId;
  if (change.runId) document.runId = change.runId;
  return document;
}

/**
 * Sets the mode (replacing the whole document, so no field of an earlier mode survives) and
 * records a `mode.changed` audit event with the previous and the new mode, in one transaction:
 * the change and its audit event commit together or not at all.
 */
export async function setMode(db: Firestore, change: ModeChange, paths: ControlPaths = new ControlPaths()): Promise<ModeChangeResult> {
  // Checked before the transaction, so a bad change is refused without a read.
  modeDocumentFor(change, Timestamp.now());
  const result = await changeMode(db, () => change, paths);
  return result!;
}

/**
 * Read-decide-write in one transaction: `decide` gets the current mode (null when the document
 * is malformed) and returns the change to make, or null to leave the mode as it is (then nothing
 * is written and null is returned). The change and its `mode.changed` audit event commit together.
 * `decide` may run more than once (transaction retries): it must only compute.
 */
export async function changeMode(
  db: Firestore,
  decide: (previous: ModeState | null) => ModeChange | null,
  paths: ControlPaths = new ControlPaths(),
): Promise<ModeChangeResult | null> {
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
    const change = decide(previous);
    if (!change) return null;
    const document = modeDocumentFor(change, Timestamp.now());
    const current = stateOf(document);
    transaction.set(ref, document);
    const auditEventId = audit.appendIn(transaction, {
      action: 'mode.changed',
      migrationId: document.migrationId ?? null,
      runId: document.runId ?? null,
      user: document.changedBy,
      identity: change.identity ?? 'unknown',
      reason: document.reason,
      details: {
        from: previous ? { mode: previous.mode, collections: previous.collections, migrations: previous.migrations } : 'malformed',
        to: { mode: current.mode, collections: current.collections, migrations: current.migrations },
      },
    });
    return { previous, current, auditEventId };
  });
}
