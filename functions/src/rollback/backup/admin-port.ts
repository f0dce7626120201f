/**
 * The managed-backup port: the three calls of the Firestore Admin API that firemigrate makes
 * (export, the state of an export, import). One adapter talks to Google (firestore-admin.ts);
 * the Firestore emulator has no Admin API, so on the emulator nothing is wired to this port and
 * the flows report what they would do (managed-backups.ts).
 */

/** `projects/{project}/databases/{database}`, the resource both calls act on. */
export interface DatabaseName {
  projectId: string;
  /** `(default)` unless the project has named databases. */
  databaseId: string;
}

export interface ExportRequest {
  database: DatabaseName;
  /** Collection ids (collection groups: every collection of that id) to export; empty: all. */
  collectionIds: string[];
  /** `gs://bucket/path`: where the export's files go. */
  outputUriPrefix: string;
}

export interface ImportRequest {
  database: DatabaseName;
  /** Collection ids to import from the export; empty: everything the export holds. */
  collectionIds: string[];
  /** The export's output URI prefix as the finished export reported it. */
  inputUriPrefix: string;
}

/** A long-running operation the Admin API started: its name is how it is looked up later. */
export interface StartedOperation {
  operationName: string;
}

export interface ExportState {
  done: boolean;
  /** The operation's error message when it failed (or was cancelled). */
  error: string | null;
  /** Where the finished export's files are (what an import must name); null until done. */
  outputUriPrefix: string | null;
}

export interface ManagedBackupAdmin {
  startExport(request: ExportRequest): Promise<StartedOperation>;
  exportState(operationName: string): Promise<ExportState>;
  startImport(request: ImportRequest): Promise<StartedOperation>;
}
