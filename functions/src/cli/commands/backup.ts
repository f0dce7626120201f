/**
 * `firemigrate backup`: starts a Firestore managed export (before a run) and records it in the
 * control collection, so `firemigrate rollback <migration> --backup-id <id>` can import it later.
 * On the emulator (no Admin API) it prints what it would do and does nothing.
 */
import type { Command } from 'commander';
import { ControlPaths } from '../../control/paths';
import type { ManagedBackupAdmin } from '../../rollback/backup/admin-port';
import { ExportLocationError, exportLocation } from '../../rollback/backup/export-location';
import { FirestoreAdminBackups } from '../../rollback/backup/firestore-admin';
import { ManagedBackups, type BackupRecord } from '../../rollback/backup/managed-backups';
import type { FiremigrateConfig } from '../../config';
import { CliError, EXIT_USAGE, loadContextConfig, withFirestore, type FirestoreConnection, type GlobalOptions } from '../context';
import { printJson, printLines, renderTable } from '../output';
import { cliCaller } from './run';

interface BackupFlags {
  collections?: string[];
  bucket?: string;
  prefix?: string;
  reason?: string;
  list?: boolean;
}

const COLLECTION_ID = /^[^/\s]+$/;

/**
 * Runs `work` with the Admin API adapter — none on the emulator — and closes the adapter after
 * it (its gRPC channels would keep the process alive).
 */
export async function withBackupAdmin<T>(config: FiremigrateConfig, work: (admin: ManagedBackupAdmin | null) => Promise<T>): Promise<T> {
  if (config.emulator.firestoreHost) return work(null);
  const admin = new FirestoreAdminBackups();
  try {
    return await work(admin);
  } finally {
    await admin.close();
  }
}

export function managedBackups(connection: FirestoreConnection, paths: ControlPaths, admin: ManagedBackupAdmin | null): ManagedBackups {
  return new ManagedBackups({ db: connection.db, paths, database: { projectId: connection.projectId, databaseId: '(default)' }, admin });
}

function renderRecords(records: readonly BackupRecord[]): string[] {
  if (records.length === 0) return ['No managed backups recorded.'];
  return renderTable(
    ['backup id', 'created', 'collections', 'output', 'by', 'imports'],
    records.map((record) => [
      record.backupId,
      record.createdAt.toDate().toISOString(),
      record.collectionIds.length > 0 ? record.collectionIds.join(',') : '(all)',
      record.outputUriPrefix,
      record.user,
      record.imports.length,
    ]),
  );
}

export function register(program: Command): void {
  program
    .command('backup')
    .description(
      'Start a Firestore managed export (Admin API exportDocuments) into gs://<bucket>/<prefix>/<backupId> and record it in the ' +
        'control collection and the audit trail; `firemigrate rollback <migration> --backup-id <id>` imports it (backup restoration: ' +
        'not exact). The export runs on in Google Cloud; needs roles/datastore.importExportAdmin and bucket access. ' +
        'On the emulator it prints what it would do and does nothing.',
    )
    .option('--collections <ids...>', 'collection ids to export (default: every collection)')
    .option('--bucket <gs://bucket>', 'Cloud Storage bucket of the export (default: FIREMIGRATE_BACKUP_BUCKET)')
    .option('--prefix <path>', 'folder inside the bucket (default: FIREMIGRATE_BACKUP_PREFIX, else firemigrate-backups)')
    .option('--reason <text>', 'why (recorded with the backup and in the audit trail)')
    .option('--list', 'list the recorded backups instead (newest first)')
    .action(async (flags: BackupFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const config = loadContextConfig();
      const paths = new ControlPaths(config.migration.controlCollection);
      await withFirestore(globals, async (connection) => {
        if (flags.list) {
          const records = await managedBackups(connection, paths, null).list();
          if (globals.json) printJson({ backups: records.map((record) => ({ ...record, createdAt: record.createdAt.toDate().toISOString() })) });
          else printLines(renderRecords(records));
          return;
        }
        const collectionIds = flags.collections ?? [];
        const bad = collectionIds.find((id) => !COLLECTION_ID.test(id));
        if (bad !== undefined) throw new CliError(`--collections "${bad}" is not a collection id (an id such as trades, without "/")`, EXIT_USAGE);
        let location;
        try {
          location = exportLocation(flags);
        } catch (error) {
          if (error instanceof ExportLocationError) throw new CliError(error.message, EXIT_USAGE);
          throw error;
        }
        const caller = await cliCaller(globals, connection, flags.reason);
        const started = await withBackupAdmin(config, (admin) =>
          managedBackups(connection, paths, admin).start({ collectionIds, location, actor: caller, reason: caller.reason }),
        );
        const { plan } = started;
        const what = `export of ${plan.collectionIds.length > 0 ? plan.collectionIds.join(', ') : 'every collection'} of ${plan.database.projectId} into ${plan.outputUriPrefix}`;
        if (globals.json) {
          printJson(started.executed ? { executed: true, ...plan, operationName: started.record.operationName } : { executed: false, ...plan, why: started.why });
          return;
        }
        if (!started.executed) {
          printLines([`Would start backup ${plan.backupId}: ${what}.`, `Nothing done: ${started.why}.`]);
          return;
        }
        printLines([
          `Backup ${plan.backupId} started: ${what}.`,
          `Operation: ${started.record.operationName} (it runs on in Google Cloud; gcloud firestore operations describe <operation> shows its state).`,
          `Recorded in ${paths.managedBackups()}/${plan.backupId}. Restore it (not exact) with: firemigrate rollback <migration> --backup-id ${plan.backupId} --accept-inexact --execute`,
        ]);
      });
    });
}
