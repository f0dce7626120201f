/**
 * Where firemigrate keeps its control data. Everything lives under one configurable root
 * collection (MIGRATION_CONTROL_COLLECTION, default `_migrations`) so several services can share
 * a project; the mode document sits at a fixed path of its own because security rules cannot
 * read configuration (see DESIGN.md "Control collection").
 */
export const DEFAULT_CONTROL_COLLECTION = '_migrations';
/** Fixed path read by the rule functions in firestore.rules: keep the two in step. */
export const MODE_DOCUMENT_PATH = '_firemigrate_mode/current';

/**
 * The before-image subcollection's id. Its fields are exempted from indexing in
 * firestore.indexes.json by collection group, so the id is one no app collection would use.
 */
export const BACKUPS_COLLECTION_ID = 'firemigrate_backups';

export class ControlPaths {
  constructor(readonly root: string = DEFAULT_CONTROL_COLLECTION) {}

  /** Registry entry: version, checksum, status, last run, applied at/by. */
  migration(migrationId: string): string {
    return `${this.root}/${migrationId}`;
  }
  runs(migrationId: string): string {
    return `${this.migration(migrationId)}/runs`;
  }
  run(migrationId: string, runId: string): string {
    return `${this.runs(migrationId)}/${runId}`;
  }
  partitions(migrationId: string, runId: string): string {
    return `${this.run(migrationId, runId)}/partitions`;
  }
  /** Batch markers, created (never overwritten) in the same commit as the batch's writes. */
  batches(migrationId: string, runId: string): string {
    return `${this.run(migrationId, runId)}/batches`;
  }
  backups(migrationId: string, runId: string): string {
    return `${this.run(migrationId, runId)}/${BACKUPS_COLLECTION_ID}`;
  }
  failures(migrationId: string, runId: string): string {
    return `${this.run(migrationId, runId)}/failures`;
  }
  /** Audit events of every run, stop and rollback, across migrations. */
  audit(): string {
    return `${this.root}/_control/audit`;
  }
  healthSnapshots(): string {
    return `${this.root}/_control/health`;
  }
  /** Managed exports (`firemigrate backup`): operation, output URI, who, and the imports made from each. */
  managedBackups(): string {
    return `${this.root}/_control/managed-backups`;
  }
  /** Handled `migration-rollback` Pub/Sub events, by event id (created once: de-duplication). */
  rollbackRequestEvents(): string {
    return `${this.root}/_control/rollback-requests`;
  }
}
