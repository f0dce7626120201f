import { Timestamp, type DocumentReference, type Firestore, type Transaction } from '@google-cloud/firestore';
import { assertChecksumMatches } from '../definitions/checksum';
import type { Migration } from '../definitions/types';
import type { ControlPaths } from './paths';
import type { RunLease } from './runs';

export type RegistryStatus = 'pending' | 'running' | 'applied' | 'failed' | 'rolled_back';

/**
 * `_migrations/{migrationId}`. `status` is `running` from a run's start until it completes or
 * fails — also while that run is paused, since it is still in progress. `activeRunId` and `lease`
 * say which run may work on the migration right now (see lease.ts).
 */
export interface RegistryEntry {
  id: string;
  version: string;
  /** Checksum of the definition last run; once `applied`, the applied definition's checksum. */
  checksum: string;
  status: RegistryStatus;
  lastRunId: string | null;
  appliedAt: Timestamp | null;
  appliedBy: string | null;
  updatedAt: Timestamp;
  activeRunId: string | null;
  lease: RunLease | null;
}

export class RegistryStore {
  constructor(
    private readonly db: Firestore,
    private readonly paths: ControlPaths,
  ) {}

  ref(migrationId: string): DocumentReference {
    return this.db.doc(this.paths.migration(migrationId));
  }

  async get(migrationId: string): Promise<RegistryEntry | undefined> {
    const snapshot = await this.ref(migrationId).get();
    return snapshot.exists ? (snapshot.data() as RegistryEntry) : undefined;
  }

  async getIn(tx: Transaction, migrationId: string): Promise<RegistryEntry | undefined> {
    const snapshot = await tx.get(this.ref(migrationId));
    return snapshot.exists ? (snapshot.data() as RegistryEntry) : undefined;
  }

  /** Every registry entry (one per migration ever run). */
  async list(): Promise<RegistryEntry[]> {
    const snapshot = await this.db.collection(this.paths.root).get();
    return snapshot.docs.map((doc) => doc.data() as RegistryEntry).filter((entry) => typeof entry.id === 'string');
  }

  /**
   * Refuses to run a migration whose definition changed after it was applied
   * (`ChecksumMismatchError`); a rolled-back or never-applied migration may be run as it is now.
   */
  assertRunnable(entry: RegistryEntry | undefined, migration: Migration): void {
    if (entry?.status === 'applied') assertChecksumMatches(migration, entry.checksum);
  }

  /** Writes the entry of a run that takes the migration (creating the entry on the first run). */
  writeRunStart(tx: Transaction, entry: RegistryEntry | undefined, migration: Migration, runId: string, lease: RunLease): void {
    const now = Timestamp.now();
    const next: RegistryEntry = {
      id: migration.id,
      version: migration.version,
      checksum: migration.checksum,
      status: 'running',
      lastRunId: runId,
      appliedAt: entry?.appliedAt ?? null,
      appliedBy: entry?.appliedBy ?? null,
      updatedAt: now,
      activeRunId: runId,
      lease,
    };
    tx.set(this.ref(migration.id), next);
  }

  /** The changes that record a completed run: the migration is applied, by whom, with which definition. */
  appliedChanges(checksum: string, user: string): Partial<RegistryEntry> {
    return { status: 'applied', checksum, appliedAt: Timestamp.now(), appliedBy: user };
  }

  failedChanges(): Partial<RegistryEntry> {
    return { status: 'failed' };
  }
}
