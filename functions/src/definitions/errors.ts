/** One bad property of a migration definition: where it is and what was expected there. */
export interface DefinitionProblem {
  /** Property path, e.g. `target.where[0].op`; `(definition)` for the definition itself. */
  path: string;
  expected: string;
}

/** A migration definition that `defineMigration` (or the registry) refuses. */
export class DefinitionError extends Error {
  override readonly name = 'DefinitionError';
  constructor(
    readonly migrationId: string | undefined,
    readonly problems: DefinitionProblem[],
  ) {
    const who = migrationId === undefined ? '(unnamed)' : `"${migrationId}"`;
    super(`Invalid migration definition ${who}:\n${problems.map((p) => `  - ${p.path}: ${p.expected}`).join('\n')}`);
  }
}

/** The definition of an applied migration changed after it was applied. */
export class ChecksumMismatchError extends Error {
  override readonly name = 'ChecksumMismatchError';
  constructor(
    readonly migrationId: string,
    readonly appliedChecksum: string,
    readonly currentChecksum: string,
  ) {
    super(
      `Migration "${migrationId}" was applied with checksum ${appliedChecksum}, but its definition now has checksum ` +
        `${currentChecksum}: it was edited after it was applied. Restore the applied definition and write the change ` +
        `as a new migration (new id and version) instead of editing an applied one.`,
    );
  }
}

export class DuplicateMigrationError extends Error {
  override readonly name = 'DuplicateMigrationError';
  constructor(readonly migrationId: string) {
    super(`Migration id "${migrationId}" is defined more than once; every migration needs its own id.`);
  }
}

export class UnknownMigrationError extends Error {
  override readonly name = 'UnknownMigrationError';
  constructor(
    readonly migrationId: string,
    readonly knownIds: string[],
  ) {
    const known = knownIds.length === 0 ? 'no migrations are registered' : `known: ${knownIds.join(', ')}`;
    super(`Unknown migration "${migrationId}" (${known}).`);
  }
}

/** A migration file or folder that cannot be loaded, or that exports no migration. */
export class MigrationLoadError extends Error {
  override readonly name = 'MigrationLoadError';
  constructor(
    readonly file: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problem}`, options);
  }
}

/** What `up`/`down` returned cannot be written (a refused sentinel, `undefined`, a class instance, …). */
export class TransformResultError extends Error {
  override readonly name = 'TransformResultError';
  constructor(
    readonly transform: 'up' | 'down',
    /** Field path of the offending value (e.g. `skills[2].level`); undefined for the result as a whole. */
    readonly fieldPath: string | undefined,
    problem: string,
  ) {
    super(`${transform}() result${fieldPath === undefined ? '' : ` at ${fieldPath}`}: ${problem}`);
  }
}

// Branded with a registry symbol rather than checked with instanceof: migration files loaded
// through jiti may carry their own copy of this module.
const TRANSFORM_ERROR_BRAND = Symbol.for('firemigrate.TransformError');

/**
 * Throw from `up`/`down` to fail a document with a message that is recorded in the failure
 * record. Other errors are recorded by class name and location only, since their messages may
 * quote document values; write this message without any document value.
 */
export class TransformError extends Error {
  override readonly name = 'TransformError';
  readonly [TRANSFORM_ERROR_BRAND] = true;
}

export function isTransformError(error: unknown): error is TransformError {
  return typeof error === 'object' && error !== null && (error as Record<symbol, unknown>)[TRANSFORM_ERROR_BRAND] === true;
}
