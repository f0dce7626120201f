import { FieldValue, Timestamp, type Firestore, type Transaction } from '@google-cloud/firestore';
import type { ControlPaths } from './paths';

/** Lifecycle events of a run; rollback and mode changes add their own actions beside these. */
export type RunAuditAction =
  | 'run.requested'
  | 'run.started'
  | 'run.resumed'
  | 'run.paused'
  | 'run.completed'
  | 'run.failed'
  | 'run.stopped'
  | 'run.aborted';

/** Lifecycle events of a rollback run (rollback/): who rolled back what, why, and how it ended. */
export type RollbackAuditAction =
  | 'rollback.started'
  | 'rollback.resumed'
  | 'rollback.paused'
  | 'rollback.stopped'
  | 'rollback.completed'
  | 'rollback.failed';

/** A change of the migration mode (`firemigrate mode`): not part of any run. */
export type ModeAuditAction = 'mode.changed';

/** Before-images deleted after their retention period (`firemigrate cleanup`). */
export type RetentionAuditAction = 'before-images.purged';

/** Managed exports and their imports (`firemigrate backup`, `rollback --backup-id`), and rollback requests an entry point refused. */
export type EntryPointAuditAction = 'backup.started' | 'backup.import-started' | 'rollback.request-refused';

export interface AuditEvent {
  action: RunAuditAction | RollbackAuditAction | ModeAuditAction | EntryPointAuditAction | RetentionAuditAction;
  /** Null for a mode change that names no migration. */
  migrationId: string | null;
  /** Null for events outside a run (mode changes). */
  runId: string | null;
  /** Who acted: `--user`, or the OS user. */
  user: string;
  /** The caller's Google identity, recorded beside `user`. */
  identity: string;
  /** Why: the run's `--reason`, or what caused the event (a signal, an error class). */
  reason: string | null;
  /** Event facts (counters, the lease taken over, the error message) — never document contents. */
  details: Record<string, unknown>;
}

export interface StoredAuditEvent extends AuditEvent {
  /** When the event happened, by this process's clock. */
  at: Timestamp;
  /** When Firestore stored it: orders events of different machines. */
  recordedAt: Timestamp;
}

/**
 * The audit trail `.../_control/audit`: append-only, one document per event under an
 * auto-generated (random) id, so concurrent runs never contend on one document.
 */
export class AuditLog {
  constructor(
    private readonly db: Firestore,
    private readonly paths: ControlPaths,
  ) {}

  async append(event: AuditEvent): Promise<string> {
    const ref = await this.db.collection(this.paths.audit()).add({ ...event, at: Timestamp.now(), recordedAt: FieldValue.serverTimestamp() });
    return ref.id;
  }

  /** Appends `event` inside `tx`: the event commits with the change it records, or neither does. */
  appendIn(tx: Transaction, event: AuditEvent): string {
    const ref = this.db.collection(this.paths.audit()).doc();
    tx.create(ref, { ...event, at: Timestamp.now(), recordedAt: FieldValue.serverTimestamp() });
    return ref.id;
  }

  /** The events of one run in the order they were stored. */
  async forRun(runId: string): Promise<StoredAuditEvent[]> {
    const snapshot = await this.db.collection(this.paths.audit()).where('runId', '==', runId).get();
    return snapshot.docs
      .map((doc) => doc.data() as StoredAuditEvent)
      .sort((a, b) => a.recordedAt.toMillis() - b.recordedAt.toMillis() || a.at.toMillis() - b.at.toMillis());
  }
}
