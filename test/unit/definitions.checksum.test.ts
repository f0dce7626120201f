import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { z } from 'zod';
import {
  assertChecksumMatches,
  ChecksumMismatchError,
  defineMigration,
  loadMigrationsFrom,
  type MigrationDefinition,
  type Transform,
} from '../../functions/src/definitions';
import { canonicalJson, checksumInput } from '../../functions/src/definitions/checksum';
import { validDefinition } from '../fixtures/migrations/valid-definition';

const checksumOf = (overrides: Partial<MigrationDefinition> & Record<string, unknown> = {}) => defineMigration(validDefinition(overrides)).checksum;

describe('migration checksum', () => {
  it('is the same for the same definition, defined twice', () => {
    expect(checksumOf()).toBe(checksumOf());
    expect(checksumOf()).toMatch(/^[0-9a-f]{64}$/);
  });

  it('keeps its format: a change here changes the checksum of every applied migration', () => {
    // Transforms built from source text so the test does not depend on how jest compiles this file.
    const up = new Function('doc', 'return { title: doc.name };') as Transform;
    const migration = defineMigration({
      id: 'golden',
      version: '1.0',
      description: 'Golden checksum',
      target: { collection: 'things', where: [{ field: 'kind', op: 'in', value: ['a', 'b'] }] },
      marker: { field: 'schemaVersion', from: null, to: '1.0' },
      from: z.object({ name: z.string().min(1) }),
      to: z.object({ title: z.string(), schemaVersion: z.literal('1.0') }),
      up,
      references: [{ field: 'ownerId', collection: 'users', optional: true }],
      legacyFields: ['name'],
    });
    const expectedInput =
      '{"down":null,"format":"firemigrate-checksum/1",' +
      '"from":{"$schema":"https://json-schema.org/draft/2020-12/schema","additionalProperties":false,"properties":{"name":{"minLength":1,"type":"string"}},"required":["name"],"type":"object"},' +
      '"id":"golden","legacyFields":["name"],"marker":{"field":"schemaVersion","from":null,"to":"1.0"},' +
      '"references":[{"collection":"users","field":"ownerId","optional":true}],' +
      '"target":{"collection":"things","where":[{"field":"kind","op":"in","value":["a","b"]}]},' +
      '"to":{"$schema":"https://json-schema.org/draft/2020-12/schema","additionalProperties":false,"properties":{"schemaVersion":{"const":"1.0","type":"string"},"title":{"type":"string"}},"required":["title","schemaVersion"],"type":"object"},' +
      '"up":"function anonymous(doc\\n) {\\nreturn { title: doc.name };\\n}","version":"1.0"}';
    expect(checksumInput(migration)).toBe(expectedInput);
    expect(migration.checksum).toBe(createHash('sha256').update(expectedInput).digest('hex'));
  });

  it('is the same in another process loading the same file', async () => {
    const file = path.join(__dirname, '../fixtures/migrations/ts/users-v2.ts');
    const [inProcess] = await loadMigrationsFrom([file]);
    const script = `require('jiti').createJiti(${JSON.stringify(__filename)}).import(${JSON.stringify(file)}).then((m) => process.stdout.write(m.default.checksum))`;
    const inChild = execFileSync(process.execPath, ['-e', script], { cwd: path.join(__dirname, '../..'), encoding: 'utf8' });
    expect(inChild).toBe(inProcess.checksum);
  });

  it.each<[string, Partial<MigrationDefinition>]>([
    ['id', { id: 'things-v2b' }],
    ['version', { version: '2.1' }],
    ['target collection', { target: { collection: 'others' } }],
    ['target kind', { target: { collectionGroup: 'things' } }],
    ['target filters', { target: { collection: 'things', where: [{ field: 'kind', op: '==', value: 'a' }] } }],
    ['marker', { marker: { field: 'schemaVersion', from: '1.0', to: '2.0' } }],
    ['up', { up: (doc) => ({ title: String(doc.name).trim() }) }],
    ['down', { down: (doc) => ({ name: doc.title }) }],
    ['from field type', { from: z.object({ name: z.number() }) }],
    ['from refinement', { from: z.object({ name: z.string().refine((name) => name.length > 2) }) }],
    ['to', { to: z.object({ title: z.string().min(1), schemaVersion: z.literal('2.0') }) }],
    ['to unrepresentable type', { to: z.object({ title: z.date(), schemaVersion: z.literal('2.0') }) }],
    ['to transform', { to: z.object({ title: z.string().transform((title) => title.length), schemaVersion: z.literal('2.0') }) }],
    ['to instanceof', { to: z.object({ title: z.instanceof(Map), schemaVersion: z.literal('2.0') }) }],
    ['references', { references: [{ field: 'ownerId', collection: 'users' }] }],
    ['legacyFields', { legacyFields: ['name'] }],
  ])('changes when the %s changes', (_what, overrides) => {
    expect(checksumOf(overrides)).not.toBe(checksumOf());
  });

  it('tells apart schemas that only differ in an unrepresentable part', () => {
    const withDate = checksumOf({ to: z.object({ title: z.date() }) });
    const withCustom = checksumOf({ to: z.object({ title: z.custom(() => true) }) });
    const withOtherInstance = checksumOf({ to: z.object({ title: z.instanceof(Set) }) });
    expect(new Set([withDate, withCustom, withOtherInstance]).size).toBe(3);
  });

  it('does not change with the description, impact queries or probes (they change no data)', () => {
    expect(
      checksumOf({
        description: 'Another description',
        impactQueries: [{ name: 'active', description: 'Active things', query: (db) => db.collection('things') }],
        probes: [{ name: 'http', url: 'https://example.com/health' }],
      }),
    ).toBe(checksumOf());
  });

  it('handles a schema that cannot be converted to JSON Schema', () => {
    const foreign = { safeParse: (data: unknown) => ({ success: true as const, data }) } as unknown as z.ZodType;
    expect(checksumOf({ from: foreign })).toMatch(/^[0-9a-f]{64}$/);
    expect(checksumOf({ from: foreign })).toBe(checksumOf({ from: foreign }));
  });

  it('serialises with sorted keys at every level', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { f: 1, e: undefined }], c: null } })).toBe('{"a":{"c":null,"d":[2,{"f":1}]},"b":1}');
    expect(canonicalJson({ n: 10n, d: new Date(0), i: Infinity })).toBe('{"d":{"$date":"1970-01-01T00:00:00.000Z"},"i":{"$number":"Infinity"},"n":{"$bigint":"10"}}');
  });
});

describe('assertChecksumMatches', () => {
  const migration = defineMigration(validDefinition());

  it('accepts the checksum the migration was applied with', () => {
    expect(() => assertChecksumMatches(migration, migration.checksum)).not.toThrow();
  });

  it('refuses an edited migration, naming both checksums and what to do', () => {
    const applied = '0'.repeat(64);
    let error: unknown;
    try {
      assertChecksumMatches(migration, applied);
    } catch (thrown) {
      error = thrown;
    }
    expect(error).toBeInstanceOf(ChecksumMismatchError);
    expect((error as ChecksumMismatchError).message).toBe(
      `Migration "things-v2" was applied with checksum ${applied}, but its definition now has checksum ${migration.checksum}: ` +
        'it was edited after it was applied. Restore the applied definition and write the change as a new migration ' +
        '(new id and version) instead of editing an applied one.',
    );
    expect((error as ChecksumMismatchError).appliedChecksum).toBe(applied);
    expect((error as ChecksumMismatchError).currentChecksum).toBe(migration.checksum);
  });
});
