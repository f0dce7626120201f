import { z } from 'zod';
import { defineMigration, DefinitionError, type MigrationDefinition } from '../../functions/src/definitions';
import { validDefinition } from '../fixtures/migrations/valid-definition';

function errorOf(definition: unknown): DefinitionError {
  try {
    defineMigration(definition as MigrationDefinition);
  } catch (error) {
    if (error instanceof DefinitionError) return error;
    throw error;
  }
  throw new Error('defineMigration accepted the definition');
}

describe('defineMigration', () => {
  it('returns the definition frozen, with a sha256 checksum', () => {
    const definition = validDefinition({ legacyFields: ['name'], target: { collection: 'things', where: [{ field: 'kind', op: '==', value: 'a' }] } });
    const migration = defineMigration(definition);

    expect(migration.id).toBe('things-v2');
    expect(migration.version).toBe('2.0');
    expect(migration.description).toBe('Rename name to title');
    expect(migration.target).toEqual({ collection: 'things', where: [{ field: 'kind', op: '==', value: 'a' }] });
    expect(migration.marker).toEqual({ field: 'schemaVersion', from: null, to: '2.0' });
    expect(migration.from).toBe(definition.from);
    expect(migration.to).toBe(definition.to);
    expect(migration.up).toBe(definition.up);
    expect(migration.legacyFields).toEqual(['name']);
    expect(migration.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(Object.isFrozen(migration)).toBe(true);
    expect(Object.isFrozen(migration.target)).toBe(true);
    expect(Object.isFrozen(migration.target.where)).toBe(true);
    expect(Object.isFrozen(migration.target.where![0])).toBe(true);
    expect(Object.isFrozen(migration.marker)).toBe(true);
    expect(Object.isFrozen(migration.legacyFields)).toBe(true);
  });

  it('copies the definition, so later edits of the object passed in change nothing', () => {
    const definition = validDefinition({ legacyFields: ['name'] });
    const migration = defineMigration(definition);
    (definition.marker as { to: string }).to = '9.0';
    (definition.target as { collection: string }).collection = 'other';
    definition.legacyFields!.push('more');

    expect(migration.marker.to).toBe('2.0');
    expect(migration.target).toEqual({ collection: 'things' });
    expect(migration.legacyFields).toEqual(['name']);
  });

  it('accepts a collection group target, nested collection paths, null and string marker origins and all optional parts', () => {
    const migration = defineMigration(
      validDefinition({
        target: { collectionGroup: 'messages' },
        marker: { field: 'v', from: '1.0', to: '2.0' },
        down: (doc) => ({ name: doc.title }),
        references: [{ field: 'creatorId', collection: 'users', optional: true }, { field: 'shopId', collection: 'regions/eu/shops' }],
        impactQueries: [{ name: 'active', description: 'Active things', query: (db) => db.collection('things') }],
        probes: [
          { name: 'read', query: (db) => db.collection('things').limit(1) },
          { name: 'http', url: 'https://example.com/health' },
        ],
      }),
    );
    expect(migration.target).toEqual({ collectionGroup: 'messages' });
    expect(migration.references).toEqual([
      { field: 'creatorId', collection: 'users', optional: true },
      { field: 'shopId', collection: 'regions/eu/shops' },
    ]);
    expect(migration.probes!.map((probe) => probe.name)).toEqual(['read', 'http']);
    expect(typeof migration.down).toBe('function');
  });

  it('derives a migration from another one spread into a new definition, with its own checksum', () => {
    const original = defineMigration(validDefinition());
    const derived = defineMigration({ ...original, id: 'things-v3', version: '3.0' });
    expect(derived.id).toBe('things-v3');
    expect(derived.up).toBe(original.up);
    expect(derived.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(derived.checksum).not.toBe(original.checksum);
  });

  it('accepts a schema from another zod copy (anything with safeParse)', () => {
    const foreign = { safeParse: (data: unknown) => ({ success: true as const, data }) } as unknown as z.ZodType;
    expect(defineMigration(validDefinition({ from: foreign })).from).toBe(foreign);
  });

  it('lists every bad property, naming the migration and what is expected', () => {
    const error = errorOf({
      ...validDefinition(),
      id: 'Bad Id',
      version: 'v2',
      target: { collection: 'a/b', collectionGroup: 'x', where: [{ field: '', op: 'like' }] },
      marker: { field: 'v', from: '2', to: '2' },
      from: 3,
      up: undefined,
      upp: () => ({}),
    });

    expect(error.migrationId).toBe('Bad Id');
    expect(error.message).toBe(
      [
        'Invalid migration definition "Bad Id":',
        '  - id: expected an id of lowercase letters, digits, "-" and "_", starting with a letter or digit (e.g. "trades-v2")',
        '  - version: expected a version of dot-separated numbers (e.g. "2.0")',
        '  - target.collection: expected a collection path: an odd number of non-empty segments separated by "/" (e.g. "trades" or "users/u1/posts")',
        '  - target.where[0].field: expected a field path',
        '  - target.where[0].op: expected one of "<", "<=", "==", "!=", ">=", ">", "array-contains", "in", "not-in", "array-contains-any"',
        '  - target.where[0].value: expected a value to compare with (undefined is not allowed)',
        '  - target: expected exactly one of "collection" (a collection path) or "collectionGroup" (a collection id)',
        '  - marker.to: expected a value different from marker.from',
        '  - from: expected a zod schema (e.g. z.object({...}))',
        '  - up: expected a function (doc, ctx) => result',
        '  - upp: unknown property (a migration definition object has id, version, description, target, marker, from, to, up, down, references, impactQueries, probes, legacyFields)',
      ].join('\n'),
    );
    expect(error.problems.map((problem) => problem.path)).toEqual([
      'id',
      'version',
      'target.collection',
      'target.where[0].field',
      'target.where[0].op',
      'target.where[0].value',
      'target',
      'marker.to',
      'from',
      'up',
      'upp',
    ]);
  });

  it('calls a definition without a usable id "(unnamed)"', () => {
    expect(errorOf(undefined).message).toBe('Invalid migration definition (unnamed):\n  - (definition): expected a migration definition object');
    const { id: _id, ...withoutId } = validDefinition();
    expect(errorOf(withoutId).message).toBe(
      'Invalid migration definition (unnamed):\n  - id: expected an id of lowercase letters, digits, "-" and "_", starting with a letter or digit (e.g. "trades-v2")',
    );
  });

  it.each([
    [{ target: {} }, 'target: expected exactly one of "collection" (a collection path) or "collectionGroup" (a collection id)'],
    [{ target: { collectionGroup: 'users/u1/posts' } }, 'target.collectionGroup: expected a collection id (non-empty, without "/")'],
    [
      { target: { collection: 'users//posts' } },
      'target.collection: expected a collection path: an odd number of non-empty segments separated by "/" (e.g. "trades" or "users/u1/posts")',
    ],
    [{ target: 'things' }, 'target: expected a target object'],
    [{ target: { collection: 'things', where: { field: 'a' } } }, 'target.where: expected an array of filters'],
    [{ id: '_control' }, 'id: expected an id of lowercase letters, digits, "-" and "_", starting with a letter or digit (e.g. "trades-v2")'],
    [{ version: '2.' }, 'version: expected a version of dot-separated numbers (e.g. "2.0")'],
    [{ description: '' }, 'description: expected a non-empty string'],
    [{ marker: { field: '', from: null, to: '2.0' } }, 'marker.field: expected a top-level field name'],
    [{ marker: { field: 'v', from: 1, to: '2' } }, 'marker.from: expected a string, or null when documents in the old shape have no marker field'],
    [{ marker: { field: 'v', from: null, to: '2', extra: true } }, 'marker.extra: unknown property (a marker object has field, from, to)'],
    [{ to: { parse: (data: unknown) => data } }, 'to: expected a zod schema (e.g. z.object({...}))'],
    [{ down: 'reverse' }, 'down: expected a function (doc, ctx) => result'],
    [{ references: [{ field: 'creatorId', collection: 'users/u1' }] }, 'references[0].collection: expected a collection path: an odd number of non-empty segments separated by "/" (e.g. "trades" or "users/u1/posts")'],
    [{ references: [{ field: 'creatorId', collection: 'users', optional: 'yes' }] }, 'references[0].optional: expected a boolean'],
    [{ impactQueries: [{ name: 'active', description: 'Active', query: 'status == active' }] }, 'impactQueries[0].query: expected a function db => Query'],
    [{ probes: [{ name: 'both', query: () => null, url: 'https://example.com' }] }, 'probes[0]: expected exactly one of "query" (a function db => Query) or "url" (an http(s) URL)'],
    [{ probes: [{ name: 'ftp', url: 'ftp://example.com' }] }, 'probes[0].url: expected an http(s) URL'],
    [{ legacyFields: ['name', ''] }, 'legacyFields[1]: expected a field name'],
    [{ legacyFields: 'name' }, 'legacyFields: expected an array of field names'],
  ])('refuses %j', (overrides, problem) => {
    const definition = { ...validDefinition(), ...overrides };
    const name = typeof definition.id === 'string' ? `"${definition.id}"` : '(unnamed)';
    expect(errorOf(definition).message).toBe(`Invalid migration definition ${name}:\n  - ${problem}`);
  });

  it('refuses a missing marker target and missing transforms together', () => {
    const { up: _up, ...withoutUp } = validDefinition();
    expect(errorOf({ ...withoutUp, marker: { field: 'v', from: null } }).message).toBe(
      [
        'Invalid migration definition "things-v2":',
        '  - marker.to: expected a non-empty string',
        '  - up: expected a function (doc, ctx) => result',
      ].join('\n'),
    );
  });
});
