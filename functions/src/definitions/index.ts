/** The public API for writing, loading and checking migrations. */
export { defineMigration } from './define';
export { skip, patchPaths, replaceDocument } from './results';
export { computeChecksum, assertChecksumMatches } from './checksum';
export { createRegistry, compareVersions, type MigrationRegistry } from './registry';
export { loadMigrationsFrom, MIGRATION_FILE_EXTENSIONS } from './loader';
export { normalizeTransformResult, applyChange, type NormalizedChange, type ChangeEntry } from './normalize';
export {
  classifyDocument,
  FAILURE_SEVERITY,
  type Classification,
  type ClassificationFailure,
  type FailureClass,
  type FailureSeverity,
} from './classify';
export * from './errors';
export type * from './types';
