import { DefinitionError, DuplicateMigrationError, UnknownMigrationError } from './errors';
import type { Migration } from './types';

export interface MigrationRegistry {
  /** Every migration, ordered by version (numeric-aware), then id. */
  all(): Migration[];
  /** Throws `UnknownMigrationError` (listing the known ids) when there is none with this id. */
  get(id: string): Migration;
  has(id: string): boolean;
}

export function createRegistry(migrations: readonly Migration[]): MigrationRegistry {
  const byId = new Map<string, Migration>();
  migrations.forEach((migration, index) => {
    if (!isMigration(migration)) {
      throw new DefinitionError(undefined, [
        { path: `registry entry [${index}]`, expected: 'expected a migration returned by defineMigration (with a checksum)' },
      ]);
    }
    if (byId.has(migration.id)) throw new DuplicateMigrationError(migration.id);
    byId.set(migration.id, migration);
  });
  const ordered = [...byId.values()].sort(compareMigrations);
  return {
    all: () => [...ordered],
    get(id) {
      const migration = byId.get(id);
      if (!migration) throw new UnknownMigrationError(id, ordered.map((m) => m.id));
      return migration;
    },
    has: (id) => byId.has(id),
  };
}

/** A value that went through `defineMigration` (possibly in another copy of this module). */
export function isMigration(value: unknown): value is Migration {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Migration).checksum === 'string' &&
    typeof (value as Migration).id === 'string' &&
    typeof (value as Migration).up === 'function'
  );
}

export function compareMigrations(a: Migration, b: Migration): number {
  return compareVersions(a.version, b.version) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** Numeric-aware: '2.0' < '10.0' < '10.1'; missing parts count as 0, so '2' equals '2.0'. */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.').map(Number);
  const right = b.split('.').map(Number);
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const difference = (left[i] ?? 0) - (right[i] ?? 0);
    if (difference !== 0) return Math.sign(difference);
  }
  return 0;
}
