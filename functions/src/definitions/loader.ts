import * as fs from 'node:fs';
import * as path from 'node:path';
import { createJiti } from 'jiti';
import { defineMigration } from './define';
import { MigrationLoadError } from './errors';
import { isPlainObject } from './normalize';
import { isMigration } from './registry';
import type { Migration, MigrationDefinition } from './types';

export const MIGRATION_FILE_EXTENSIONS = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs'] as const;

/**
 * Loads migrations from files and folders (a folder: its migration files, not recursive, by
 * name; declaration files and `*.test.*` are ignored). TypeScript loads without a build (jiti).
 * A module may export a migration as default, an array of them, a default object holding them
 * (`module.exports = { a, b }`), or named exports; plain definition objects are passed through
 * `defineMigration`. Every problem is a `MigrationLoadError` naming the file.
 */
export async function loadMigrationsFrom(paths: readonly string[]): Promise<Migration[]> {
  const files = [...new Map(paths.flatMap(expandPath).map((file) => [path.resolve(file), file])).values()];
  // Without interopDefault, jiti hands back the module's own exports rather than Proxies around them.
  const jiti = createJiti(__filename, { interopDefault: false });
  const migrations: Migration[] = [];
  for (const file of files) {
    let namespace: unknown;
    try {
      namespace = await jiti.import(path.resolve(file));
    } catch (error) {
      throw new MigrationLoadError(file, `failed to load: ${messageOf(error)}`, { cause: error });
    }
    for (const migration of migrationsIn(namespace, file)) {
      if (!migrations.includes(migration)) migrations.push(migration);
    }
  }
  return migrations;
}

function expandPath(given: string): string[] {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(given);
  } catch {
    throw new MigrationLoadError(given, 'no such file or folder');
  }
  if (stat.isDirectory()) {
    const files = fs
      .readdirSync(given, { withFileTypes: true })
      .filter((entry) => entry.isFile() && isMigrationFileName(entry.name))
      .map((entry) => entry.name)
      .sort()
      .map((name) => path.join(given, name));
    if (files.length === 0) {
      throw new MigrationLoadError(given, `folder contains no migration files (${MIGRATION_FILE_EXTENSIONS.join(' ')})`);
    }
    return files;
  }
  if (!isMigrationFileName(path.basename(given))) {
    throw new MigrationLoadError(given, `not a migration file: expected one of ${MIGRATION_FILE_EXTENSIONS.join(' ')} (not a declaration or test file)`);
  }
  return [given];
}

function isMigrationFileName(name: string): boolean {
  return (
    MIGRATION_FILE_EXTENSIONS.some((extension) => name.endsWith(extension)) &&
    !/\.d\.[mc]?ts$/.test(name) &&
    !/\.test\./.test(name)
  );
}

function migrationsIn(namespace: unknown, file: string): Migration[] {
  const found: Migration[] = [];
  const add = (migration: Migration) => {
    if (!found.includes(migration)) found.push(migration);
  };
  // The same definition object may be reachable twice (a named export also held by the default).
  const defined = new Map<object, Migration>();
  const define = (definition: object, where: string) => {
    const known = defined.get(definition);
    if (known) return add(known);
    try {
      const migration = defineMigration(definition as MigrationDefinition);
      defined.set(definition, migration);
      add(migration);
    } catch (error) {
      throw new MigrationLoadError(file, `export ${where}: ${messageOf(error)}`, { cause: error });
    }
  };
  const visit = (value: unknown, where: string, isDefault: boolean) => {
    if (isMigration(value)) return add(value);
    if (looksLikeDefinition(value)) return define(value, where);
    if (Array.isArray(value) && value.some((item) => isMigration(item) || looksLikeDefinition(item))) {
      value.forEach((item, i) => {
        if (isMigration(item)) add(item);
        else if (looksLikeDefinition(item)) define(item, `${where}[${i}]`);
        else throw new MigrationLoadError(file, `export ${where}[${i}] is not a migration (mixed into an array of migrations)`);
      });
      return;
    }
    // `module.exports = { tradesV2, conversationsV2 }` arrives as a default holding the migrations.
    if (isDefault && isPlainObject(value)) {
      for (const [key, item] of Object.entries(value)) visit(item, `${where}.${key}`, false);
    }
  };
  // Depending on the runtime's interop, a CommonJS module arrives as `{ default: module.exports }`
  // or as `module.exports` itself.
  if (isMigration(namespace) || looksLikeDefinition(namespace) || Array.isArray(namespace)) {
    visit(namespace, 'default', true);
  } else if (typeof namespace === 'object' && namespace !== null) {
    for (const [key, value] of Object.entries(namespace)) visit(value, key, key === 'default');
  }
  if (found.length === 0) {
    throw new MigrationLoadError(
      file,
      'exports no migration: export default defineMigration({...}), an array of migrations, or named migrations',
    );
  }
  return found;
}

// Not `instanceof Error`: a loaded module may run in another realm (jest) with its own Error.
function messageOf(error: unknown): string {
  const message = (error as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? message : String(error);
}

/** A plain object meant as a migration definition that has not been through `defineMigration`. */
function looksLikeDefinition(value: unknown): value is object {
  return isPlainObject(value) && ('up' in value || ('id' in value && ('target' in value || 'marker' in value)));
}
