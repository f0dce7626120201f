import * as path from 'node:path';
import {
  classifyDocument,
  createRegistry,
  loadMigrationsFrom,
  MigrationLoadError,
} from '../../functions/src/definitions';

const fixtures = path.join(__dirname, '../fixtures/migrations');
const fixture = (name: string) => path.join(fixtures, name);

async function loadError(paths: string[]): Promise<MigrationLoadError> {
  try {
    await loadMigrationsFrom(paths);
  } catch (error) {
    if (error instanceof MigrationLoadError) return error;
    throw error;
  }
  throw new Error('expected loading to fail');
}

describe('loadMigrationsFrom', () => {
  it('loads a TypeScript file without a build, and its transform works', async () => {
    const [users, ...rest] = await loadMigrationsFrom([fixture('ts/users-v2.ts')]);
    expect(rest).toEqual([]);
    expect(users.id).toBe('fixture-users-v2');
    expect(users.target).toEqual({ collection: 'users' });
    expect(users.legacyFields).toEqual(['displayName']);
    expect(users.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(users)).toBe(true);

    // The file's FieldValue.delete() comes from the SDK copy jiti loaded: it must still be a delete.
    const result = classifyDocument(users, { displayName: 'Ada King Lovelace' }, { path: 'users/u1', id: 'u1' }, { validate: true });
    expect(result).toEqual({
      outcome: 'migrate',
      change: {
        kind: 'patch',
        entries: [
          { path: ['firstName'], value: 'Ada', delete: false },
          { path: ['lastName'], value: 'King Lovelace', delete: false },
          { path: ['displayName'], value: undefined, delete: true },
          { path: ['schemaVersion'], value: '2.0', delete: false },
        ],
      },
      after: { firstName: 'Ada', lastName: 'King Lovelace', schemaVersion: '2.0' },
    });
  });

  it('passes a plain definition exported by a CommonJS file through defineMigration', async () => {
    const [orders] = await loadMigrationsFrom([fixture('js/orders-v2.js')]);
    expect(orders.id).toBe('fixture-orders-v2');
    expect(orders.target).toEqual({ collectionGroup: 'orders', where: [{ field: 'archived', op: '==', value: false }] });
    expect(orders.marker).toEqual({ field: 'schemaVersion', from: '1.0', to: '2.0' });
    expect(orders.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(orders)).toBe(true);
    expect(orders.up({ total: 12 }, { path: 'shops/s1/orders/o1', id: 'o1' })).toEqual({ amount: 12 });
  });

  it('loads every migration file of a folder by name, ignoring declaration, test and other files', async () => {
    const loaded = await loadMigrationsFrom([fixture('folder')]);
    // a-profiles.ts (named exports, in declaration order), then b-orders.mjs (default array).
    expect(loaded.map((m) => m.id)).toEqual(['fixture-profiles-v10', 'fixture-profiles-v2', 'fixture-orders-v3']);
    expect(createRegistry(loaded).all().map((m) => m.id)).toEqual(['fixture-profiles-v2', 'fixture-orders-v3', 'fixture-profiles-v10']);
  });

  it('loads several paths, relative to the working directory, once each', async () => {
    const relativeFolder = path.relative(process.cwd(), fixture('folder'));
    const loaded = await loadMigrationsFrom([fixture('ts'), relativeFolder, fixture('folder/a-profiles.ts'), fixture('js/orders-v2.js')]);
    expect(loaded.map((m) => m.id)).toEqual([
      'fixture-users-v2',
      'fixture-profiles-v10',
      'fixture-profiles-v2',
      'fixture-orders-v3',
      'fixture-orders-v2',
    ]);
  });

  it('names the file and every bad property of a malformed definition', async () => {
    const file = fixture('invalid/bad-definition.ts');
    const error = await loadError([file]);
    expect(error.file).toBe(file);
    expect(error.message).toBe(
      [
        `${file}: failed to load: Invalid migration definition "fixture-bad":`,
        '  - version: expected a version of dot-separated numbers (e.g. "2.0")',
        '  - target.collection: expected a collection path: an odd number of non-empty segments separated by "/" (e.g. "trades" or "users/u1/posts")',
        '  - marker.to: expected a value different from marker.from',
      ].join('\n'),
    );
  });

  it('names the file and the export of a malformed plain definition', async () => {
    const file = fixture('invalid/plain-bad-definition.js');
    expect((await loadError([file])).message).toBe(
      [
        `${file}: export default: Invalid migration definition "fixture-plain-bad":`,
        '  - target.collectionGroup: expected a collection id (non-empty, without "/")',
        '  - from: expected a zod schema (e.g. z.object({...}))',
        '  - to: expected a zod schema (e.g. z.object({...}))',
        '  - up: expected a function (doc, ctx) => result',
      ].join('\n'),
    );
  });

  it.each([
    ['invalid/no-migrations.ts', 'exports no migration: export default defineMigration({...}), an array of migrations, or named migrations'],
    ['invalid/throws-on-load.cjs', 'failed to load: database credentials missing'],
    ['invalid/mixed-array.ts', 'export default[1] is not a migration (mixed into an array of migrations)'],
    ['empty-folder', 'folder contains no migration files (.ts .mts .cts .js .mjs .cjs)'],
    ['does-not-exist.ts', 'no such file or folder'],
    ['folder/notes.md', 'not a migration file: expected one of .ts .mts .cts .js .mjs .cjs (not a declaration or test file)'],
    ['folder/c-types.d.ts', 'not a migration file: expected one of .ts .mts .cts .js .mjs .cjs (not a declaration or test file)'],
  ])('refuses %s, naming it', async (name, problem) => {
    const error = await loadError([fixture('ts'), fixture(name)]);
    expect(error.file).toBe(fixture(name));
    expect(error.message).toBe(`${fixture(name)}: ${problem}`);
  });
});
