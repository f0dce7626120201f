import type { Migration } from '../definitions/types';

/** One deployed sync function: its name within the `sync` group and the documents it watches. */
export interface SyncFunctionSpec {
  /** `sync-<name>` once deployed (function group): the collection path, "/" as "-". */
  name: string;
  /** The `onDocumentWritten` path pattern, e.g. `trades/{docId}`. */
  document: string;
}

/**
 * The sync functions the migrations need: one per collection path a migration targets (a
 * collection, without `where` filters: see sync-trigger.ts `targetsDocument`). Collection groups
 * are not covered: a Firestore trigger path cannot match a collection at any depth.
 */
export function syncFunctionSpecs(migrations: readonly Migration[]): SyncFunctionSpec[] {
  const collections = new Set<string>();
  for (const migration of migrations) {
    if ('collection' in migration.target && !migration.target.where?.length) collections.add(migration.target.collection);
  }
  return [...collections].sort().map((collection) => ({
    name: collection.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase(),
    document: `${collection}/{docId}`,
  }));
}
