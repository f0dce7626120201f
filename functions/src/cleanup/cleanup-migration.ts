import { FieldValue } from '@google-cloud/firestore';
import { z } from 'zod';
import { contractedSchema } from '../compat/contracted-shape';
import { defineMigration } from '../definitions/define';
import type { MigrationRegistry } from '../definitions/registry';
import type { DocData, Migration } from '../definitions/types';

/**
 * The contract step of a migration as a migration of its own, run by the normal engine (before-
 * images, preconditions, batch markers, final sweep) and so rolled back by the normal rollback.
 *
 * Its marker is a field of its own, `firemigrateCleanup` = the migration's `marker.to`: the
 * migration's marker (`schemaVersion: '2.0'`) stays, so the migration, its sync trigger and the
 * app still see every cleaned document as "at target", and the compatibility reader reads it in
 * the new shape (compat/contracted-shape.ts). `from` is the migration's `to` (or it without the
 * legacy fields, for documents new clients wrote): a document still in the old shape fails as
 * `invalid-source` and is left alone. `to` is `to` without the legacy fields, none present.
 */
export const CLEANUP_MARKER_FIELD = 'firemigrateCleanup';

export class CleanupError extends Error {
  override readonly name = 'CleanupError';
}

const CLEANUP_SUFFIX = '-cleanup';

export function cleanupMigrationId(migrationId: string): string {
  return `${migrationId}${CLEANUP_SUFFIX}`;
}

export function cleanupMigrationFor(migration: Migration): Migration {
  const legacy = [...(migration.legacyFields ?? [])];
  if (legacy.length === 0) throw new CleanupError(`migration "${migration.id}" declares no legacyFields: there is nothing to clean up`);
  const contracted = contractedSchema(migration);
  if (!contracted) {
    throw new CleanupError(`migration "${migration.id}": cleanup derives the contracted shape from \`to\`, which must be an object schema (z.object / z.looseObject)`);
  }
  const missing = legacy.filter((field) => !(field in (migration.to as z.ZodObject).shape));
  if (missing.length > 0) throw new CleanupError(`migration "${migration.id}": legacyFields ${missing.join(', ')} are not fields of its \`to\` schema`);
  const removeLegacy = (doc: DocData): DocData => {
    const removed: DocData = {};
    for (const field of legacy) if (Object.prototype.hasOwnProperty.call(doc, field)) removed[field] = FieldValue.delete();
    return removed;
  };
  return defineMigration({
    id: cleanupMigrationId(migration.id),
    version: migration.version,
    description: `Contract step of ${migration.id}: removes ${legacy.join(', ')} from documents at ${migration.marker.field} = ${migration.marker.to}.`,
    target: migration.target,
    marker: { field: CLEANUP_MARKER_FIELD, from: null, to: migration.marker.to },
    from: z.union([migration.to, contracted]),
    to: contracted.refine((doc) => legacy.every((field) => !Object.prototype.hasOwnProperty.call(doc as object, field)), {
      message: `the legacy fields ${legacy.join(', ')} must be gone`,
    }),
    up: removeLegacy,
  });
}

/**
 * The registry plus the cleanup migrations (`<id>-cleanup`) of its migrations that declare legacy
 * fields: what the rollback engine and the `rollback` command need to roll a cleanup back. `all()`
 * stays the registry's own list, so `run` never starts a cleanup by itself.
 */
export function withCleanupMigrations(registry: MigrationRegistry): MigrationRegistry {
  const derived = new Map<string, Migration>();
  const cleanupOf = (id: string): Migration | undefined => {
    if (!id.endsWith(CLEANUP_SUFFIX)) return undefined;
    const base = id.slice(0, -CLEANUP_SUFFIX.length);
    if (!registry.has(base) || !(registry.get(base).legacyFields?.length)) return undefined;
    if (!derived.has(id)) derived.set(id, cleanupMigrationFor(registry.get(base)));
    return derived.get(id);
  };
  return {
    all: () => registry.all(),
    get: (id) => (registry.has(id) ? registry.get(id) : cleanupOf(id) ?? registry.get(id)),
    has: (id) => registry.has(id) || cleanupOf(id) !== undefined,
  };
}
