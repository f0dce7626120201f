/**
 * Managed backups: a Firestore managed export started before a run (`firemigrate backup`), and
 * the backup-restoration rollback strategy (`firemigrate rollback --backup-id`), which imports
 * one. An import overwrites every exported document by id and leaves documents created since the
 * export alone: it is NOT exact (app writes since the export are lost, new documents stay), so
 * its entry point asks for an extra confirmation and says so.
 *
 * Without an Admin API (`admin: null`: the Firestore emulator has none) both flows report what
 * they would do and write nothing.
 */
import { randomBytes } from 'node:crypto';
import { FieldValue, Timestamp, type Firestore } from '@google-cloud/firestore';
import { AuditLog } from '../../control/audit';
import type { ControlPaths } from '../../control/paths';
import type { Migration } from '../../definitions/types';
import type { DatabaseName, ManagedBackupAdmin } from './admin-port';
import { outputUriPrefix, type ExportLocation } from './export-location';

/** An import started from a backup (a backup-restoration rollback). */
export interface BackupImport {
  operationName: string;
  inputUriPrefix: string;
  collectionIds: string[];
  migrationId: string;
  user: string;
  identity: string;
  reason: string;
  at: Timestamp;
}

/** `.../_control/managed-backups/{backupId}`. */
export interface BackupRecord {
  backupId: string;
  database: DatabaseName;
  /** Collection ids exported; empty: every collection. */
  collectionIds: string[];
  /** The folder the export was asked to write to (the finished operation confirms it). */
  outputUriPrefix: string;
  /** The Admin API's long-running operation: its state says whether the export finished. */
  operationName: string;
  user: string;
  identity: string;
  reason: string | null;
  createdAt: Timestamp;
  imports: BackupImport[];
}

export interface ManagedBackupsDeps {
  db: Firestore;
  paths: ControlPaths;
  database: DatabaseName;
  /** Null where there is no Admin API (the emulator): the flows only report. */
  admin: ManagedBackupAdmin | null;
}

export interface Actor {
  user: string;
  identity: string;
}

/** What an export or import would do, as reported on the emulator and before it starts. */
export interface ExportPlan {
  backupId: string;
  database: DatabaseName;
  collectionIds: string[];
  outputUriPrefix: string;
}

export type BackupStarted = { executed: false; plan: ExportPlan; why: string } | { executed: true; plan: ExportPlan; record: BackupRecord };

export interface ImportPlan {
  backupId: string;
  database: DatabaseName;
  collectionIds: string[];
  /** Null when the backup is not recorded (on the emulator none can be: it has no Admin API). */
  inputUriPrefix: string | null;
  /** What backup restoration cannot do: the operator confirms having read it. */
  inexact: string;
}

export type ImportStarted = { executed: false; plan: ImportPlan; why: string } | { executed: true; plan: ImportPlan; import: BackupImport };

export const NO_ADMIN_API =
  'the Firestore emulator has no Admin API (exportDocuments/importDocuments): nothing was exported, imported or recorded';

export const INEXACT_RESTORE =
  'backup restoration imports a managed export: every exported document of these collections is overwritten by id with its ' +
  'state AT THE EXPORT (app writes made since then are lost), documents created since the export are kept, and values are ' +
  'not checked against before-images — it is not an exact rollback';

export class ManagedBackupError extends Error {
  override readonly name = 'ManagedBackupError';
}

/** `bk-20261129-142501-3fa9c2`: sorts by creation time; doubles as the export's folder name. */
export function newBackupId(now: Date = new Date()): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  return `bk-${stamp}-${randomBytes(3).toString('hex')}`;
}

/** The collection id an import of `migration`'s target names (an import by id covers every collection of that id). */
export function targetCollectionId(migration: Migration): string {
  if ('collectionGroup' in migration.target) return migration.target.collectionGroup;
  const segments = migration.target.collection.split('/');
  return segments[segments.length - 1];
}

export class ManagedBackups {
  private readonly audit: AuditLog;

  constructor(private readonly deps: ManagedBackupsDeps) {
    this.audit = new AuditLog(deps.db, deps.paths);
  }

  private ref(backupId: string) {
    return this.deps.db.collection(this.deps.paths.managedBackups()).doc(backupId);
  }

  async get(backupId: string): Promise<BackupRecord | undefined> {
    const snapshot = await this.ref(backupId).get();
    return snapshot.exists ? (snapshot.data() as BackupRecord) : undefined;
  }

  /**
   * Starts an export of `collectionIds` (empty: all) into `gs://bucket/prefix/<backupId>` and
   * records it (operation, output URI, who and why) with its audit event. The export runs on in
   * Google's side; a restore checks that it finished.
   */
  async start(request: { collectionIds: string[]; location: ExportLocation; actor: Actor; reason: string | null }): Promise<BackupStarted> {
    const backupId = newBackupId();
    const plan: ExportPlan = {
      backupId,
      database: this.deps.database,
      collectionIds: [...new Set(request.collectionIds)],
      outputUriPrefix: outputUriPrefix(request.location, backupId),
    };
    if (!this.deps.admin) return { executed: false, plan, why: NO_ADMIN_API };
    const { operationName } = await this.deps.admin.startExport({ database: plan.database, collectionIds: plan.collectionIds, outputUriPrefix: plan.outputUriPrefix });
    const record: BackupRecord = {
      backupId,
      database: plan.database,
      collectionIds: plan.collectionIds,
      outputUriPrefix: plan.outputUriPrefix,
      operationName,
      user: request.actor.user,
      identity: request.actor.identity,
      reason: request.reason,
      createdAt: Timestamp.now(),
      imports: [],
    };
    await this.deps.db.runTransaction(async (tx) => {
      tx.create(this.ref(backupId), record);
      this.audit.appendIn(tx, {
        action: 'backup.started',
        migrationId: null,
        runId: null,
        user: record.user,
        identity: record.identity,
        reason: record.reason,
        details: { backupId, operationName, outputUriPrefix: record.outputUriPrefix, collectionIds: record.collectionIds },
      });
    });
    return { executed: true, plan, record };
  }

  /** What a backup restoration of `migration` would import (writes nothing, calls no Admin API). */
  async planRestore(backupId: string, migration: Migration): Promise<{ plan: ImportPlan; record: BackupRecord | undefined }> {
    const record = await this.get(backupId);
    const plan: ImportPlan = {
      backupId,
      database: record?.database ?? this.deps.database,
      collectionIds: [targetCollectionId(migration)],
      inputUriPrefix: record?.outputUriPrefix ?? null,
      inexact: INEXACT_RESTORE,
    };
    return { plan, record };
  }

  /**
   * Backup restoration of `migration`: imports the target's collection id from the backup's
   * finished export, and records the import in the backup record and the audit trail. Refused
   * (ManagedBackupError) when the backup is unknown, its export has not finished or failed, or
   * it does not hold the target's collection.
   */
  async restore(request: { backupId: string; migration: Migration; actor: Actor; reason: string }): Promise<ImportStarted> {
    const { plan, record } = await this.planRestore(request.backupId, request.migration);
    const collectionIds = plan.collectionIds;
    if (!this.deps.admin) return { executed: false, plan, why: NO_ADMIN_API };
    if (!record) throw new ManagedBackupError(`backup ${request.backupId} is not recorded in ${this.deps.paths.managedBackups()} (list them with: firemigrate backup --list)`);
    const missing = record.collectionIds.length > 0 ? collectionIds.filter((id) => !record.collectionIds.includes(id)) : [];
    if (missing.length > 0) {
      throw new ManagedBackupError(
        `backup ${record.backupId} exported ${record.collectionIds.join(', ')} only; migration "${request.migration.id}" targets ${missing.join(', ')}`,
      );
    }
    const state = await this.deps.admin.exportState(record.operationName);
    if (state.error) throw new ManagedBackupError(`the export of backup ${record.backupId} failed (${state.error}): it cannot be imported`);
    if (!state.done || !state.outputUriPrefix) {
      throw new ManagedBackupError(`the export of backup ${record.backupId} (operation ${record.operationName}) has not finished yet: try again once it has`);
    }
    const { operationName } = await this.deps.admin.startImport({ database: record.database, collectionIds, inputUriPrefix: state.outputUriPrefix });
    const started: BackupImport = {
      operationName,
      inputUriPrefix: state.outputUriPrefix,
      collectionIds,
      migrationId: request.migration.id,
      user: request.actor.user,
      identity: request.actor.identity,
      reason: request.reason,
      at: Timestamp.now(),
    };
    await this.deps.db.runTransaction(async (tx) => {
      tx.update(this.ref(record.backupId), { imports: FieldValue.arrayUnion(started) });
      this.audit.appendIn(tx, {
        action: 'backup.import-started',
        migrationId: request.migration.id,
        runId: null,
        user: started.user,
        identity: started.identity,
        reason: started.reason,
        details: { backupId: record.backupId, operationName, inputUriPrefix: started.inputUriPrefix, collectionIds, strategy: 'backup-restoration', exact: false },
      });
    });
    return { executed: true, plan: { ...plan, inputUriPrefix: state.outputUriPrefix }, import: started };
  }

  /** The newest backup records first. */
  async list(limit = 20): Promise<BackupRecord[]> {
    const snapshot = await this.deps.db.collection(this.deps.paths.managedBackups()).orderBy('createdAt', 'desc').limit(limit).get();
    return snapshot.docs.map((doc) => doc.data() as BackupRecord);
  }
}
