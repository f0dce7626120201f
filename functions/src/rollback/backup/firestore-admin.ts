import { v1 } from '@google-cloud/firestore';
import type { DatabaseName, ExportRequest, ExportState, ImportRequest, ManagedBackupAdmin, StartedOperation } from './admin-port';

type AdminClient = InstanceType<typeof v1.FirestoreAdminClient>;

/**
 * The managed-backup port on Google's Firestore Admin API (`v1.FirestoreAdminClient` of
 * @google-cloud/firestore, Application Default Credentials). The caller needs
 * `roles/datastore.importExportAdmin` on the project and write (export) or read (import) access
 * to the bucket; Firestore's service agent writes the files.
 */
export class FirestoreAdminBackups implements ManagedBackupAdmin {
  constructor(private readonly client: AdminClient = new v1.FirestoreAdminClient()) {}

  async startExport(request: ExportRequest): Promise<StartedOperation> {
    const [operation] = await this.client.exportDocuments({
      name: this.databasePath(request.database),
      collectionIds: request.collectionIds,
      outputUriPrefix: request.outputUriPrefix,
    });
    return { operationName: requireName(operation.name, 'exportDocuments') };
  }

  async exportState(operationName: string): Promise<ExportState> {
    const operation = await this.client.checkExportDocumentsProgress(operationName);
    const done = operation.done === true;
    // gax types an operation's unpacked result as `{}`; for an export it is an ExportDocumentsResponse.
    const response = operation.result as { outputUriPrefix?: string | null } | null;
    return {
      done,
      error: operation.error ? operation.error.message : null,
      outputUriPrefix: done ? response?.outputUriPrefix || null : null,
    };
  }

  async startImport(request: ImportRequest): Promise<StartedOperation> {
    const [operation] = await this.client.importDocuments({
      name: this.databasePath(request.database),
      collectionIds: request.collectionIds,
      inputUriPrefix: request.inputUriPrefix,
    });
    return { operationName: requireName(operation.name, 'importDocuments') };
  }

  /** Ends the client's channels (a CLI process would otherwise stay alive). */
  close(): Promise<void> {
    return this.client.close();
  }

  private databasePath(database: DatabaseName): string {
    return this.client.databasePath(database.projectId, database.databaseId);
  }
}

function requireName(name: string | undefined, call: string): string {
  if (!name) throw new Error(`the Firestore Admin API answered ${call} without an operation name`);
  return name;
}
