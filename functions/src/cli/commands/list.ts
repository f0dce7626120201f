import type { Command } from 'commander';
import type { Firestore } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../../config';
import { ControlPaths } from '../../control/paths';
import { RegistryStore, type RegistryEntry } from '../../control/registry-store';
import type { MigrationRegistry } from '../../definitions/registry';
import { loadCliRegistry, loadContextConfig, withFirestore, type GlobalOptions } from '../context';
import { printJson, printLines, renderTable } from '../output';

export interface MigrationListing {
  id: string;
  version: string;
  description: string;
  /** The registry entry's status; `pending` when the migration never ran. */
  status: string;
  appliedAt: string | null;
  appliedBy: string | null;
  lastRunId: string | null;
  checksum: string | null;
  /** The checksum stored by the last run (the applied definition's, once applied). */
  recordedChecksum: string | null;
  /** The definition differs from the one the registry entry records. */
  checksumMismatch: boolean;
  /** False for a registry entry whose definition is not loaded (another service's, or removed). */
  defined: boolean;
}

/** Every known migration with its registry entry, plus entries whose definition is not loaded. */
export async function listMigrations(db: Firestore, registry: MigrationRegistry, config: FiremigrateConfig): Promise<MigrationListing[]> {
  const store = new RegistryStore(db, new ControlPaths(config.migration.controlCollection));
  const entries = new Map((await store.list()).map((entry) => [entry.id, entry]));
  const listings: MigrationListing[] = registry.all().map((migration) => {
    const entry = entries.get(migration.id);
    entries.delete(migration.id);
    return {
      ...fromEntry(entry),
      id: migration.id,
      version: migration.version,
      description: migration.description,
      checksum: migration.checksum,
      checksumMismatch: entry !== undefined && entry.checksum !== migration.checksum,
      defined: true,
    };
  });
  for (const entry of entries.values()) {
    listings.push({ ...fromEntry(entry), id: entry.id, version: entry.version, description: '', checksum: null, checksumMismatch: false, defined: false });
  }
  return listings;
}

function fromEntry(entry: RegistryEntry | undefined) {
  return {
    status: entry?.status ?? 'pending',
    appliedAt: entry?.appliedAt ? entry.appliedAt.toDate().toISOString() : null,
    appliedBy: entry?.appliedBy ?? null,
    lastRunId: entry?.lastRunId ?? null,
    recordedChecksum: entry?.checksum ?? null,
  };
}

const SHORT_CHECKSUM = 12;
const DESCRIPTION_WIDTH = 60;

export function renderMigrationList(listings: readonly MigrationListing[]): string[] {
  if (listings.length === 0) return ['No migrations are registered.'];
  const rows = listings.map((listing) => [
    listing.id,
    listing.version,
    listing.status,
    listing.appliedAt ?? '-',
    listing.appliedBy ?? '-',
    checksumCell(listing),
    listing.defined ? truncate(listing.description, DESCRIPTION_WIDTH) : '(definition not loaded)',
  ]);
  const lines = renderTable(['ID', 'VERSION', 'STATUS', 'APPLIED AT', 'BY', 'CHECKSUM', 'DESCRIPTION'], rows);
  const mismatched = listings.filter((listing) => listing.checksumMismatch);
  if (mismatched.length > 0) {
    lines.push('', `! ${mismatched.map((listing) => listing.id).join(', ')}: the definition changed since the checksum recorded by its last run.`);
  }
  return lines;
}

function checksumCell(listing: MigrationListing): string {
  const short = (checksum: string | null) => (checksum ? checksum.slice(0, SHORT_CHECKSUM) : '-');
  if (!listing.checksumMismatch) return short(listing.checksum ?? listing.recordedChecksum);
  return `${short(listing.checksum)} MISMATCH (recorded ${short(listing.recordedChecksum)})`;
}

function truncate(text: string, width: number): string {
  return text.length <= width ? text : `${text.slice(0, width - 1)}…`;
}

export function register(program: Command): void {
  program
    .command('list')
    .description('List the migrations with their state (pending, running, applied, failed, rolled_back), when and by whom, and checksum')
    .action(async (_options: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const config = loadContextConfig();
      const registry = await loadCliRegistry(globals.migrations);
      const listings = await withFirestore(globals, ({ db }) => listMigrations(db, registry, config));
      if (globals.json) printJson({ migrations: listings });
      else printLines(renderMigrationList(listings));
    });
}
