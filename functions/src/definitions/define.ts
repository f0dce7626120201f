import { z } from 'zod';
import { computeChecksum } from './checksum';
import { DefinitionError, type DefinitionProblem } from './errors';
import type { Migration, MigrationDefinition, MigrationTarget, TargetFilter } from './types';

const WHERE_OPS = ['<', '<=', '==', '!=', '>=', '>', 'array-contains', 'in', 'not-in', 'array-contains-any'] as const;

// No leading "_" or "-": ids are document ids under the control collection, whose own
// documents (e.g. `_control`) start with "_".
const ID_PATTERN = /^[a-z0-9][a-z0-9_-]*$/;
const VERSION_PATTERN = /^\d+(\.\d+)*$/;

const EXPECTED = {
  id: 'expected an id of lowercase letters, digits, "-" and "_", starting with a letter or digit (e.g. "trades-v2")',
  version: 'expected a version of dot-separated numbers (e.g. "2.0")',
  target: 'expected exactly one of "collection" (a collection path) or "collectionGroup" (a collection id)',
  collection: 'expected a collection path: an odd number of non-empty segments separated by "/" (e.g. "trades" or "users/u1/posts")',
  collectionGroup: 'expected a collection id (non-empty, without "/")',
  op: `expected one of ${WHERE_OPS.map((op) => `"${op}"`).join(', ')}`,
  filterValue: 'expected a value to compare with (undefined is not allowed)',
  markerFrom: 'expected a string, or null when documents in the old shape have no marker field',
  markerTo: 'expected a value different from marker.from',
  schema: 'expected a zod schema (e.g. z.object({...}))',
  transform: 'expected a function (doc, ctx) => result',
  probe: 'expected exactly one of "query" (a function db => Query) or "url" (an http(s) URL)',
} as const;

const nonEmptyString = (what: string) => z.string({ error: `expected ${what}` }).min(1, { error: `expected ${what}` });
const fn = (expected: string) => z.custom<(...args: never[]) => unknown>((value) => typeof value === 'function', { error: expected });
const strictObject = <Shape extends z.ZodRawShape>(shape: Shape, what: string) =>
  z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys' ? `unknown property (${what} has ${Object.keys(shape).join(', ')})` : `expected ${what}`,
  });

// Cross-property checks also run when a property itself is malformed, so one error lists every problem.
const isObjectInput = (payload: { value: unknown }) => typeof payload.value === 'object' && payload.value !== null;

function isZodSchema(value: unknown): boolean {
  // instanceof covers this copy of zod; safeParse covers a migration file that loaded its own copy.
  return value instanceof z.ZodType || (typeof value === 'object' && value !== null && typeof (value as { safeParse?: unknown }).safeParse === 'function');
}

function isCollectionPath(path: string): boolean {
  const segments = path.split('/');
  return segments.length % 2 === 1 && segments.every((segment) => segment.length > 0);
}

const collectionPath = z.string({ error: EXPECTED.collection }).refine(isCollectionPath, { error: EXPECTED.collection });

const filterSchema = strictObject(
  {
    field: nonEmptyString('a field path'),
    op: z.enum(WHERE_OPS, { error: EXPECTED.op }),
    value: z.unknown().refine((value) => value !== undefined, { error: EXPECTED.filterValue }),
  },
  'a filter object',
);

const targetSchema = strictObject(
  {
    collection: collectionPath.optional(),
    collectionGroup: z
      .string({ error: EXPECTED.collectionGroup })
      .refine((id) => id.length > 0 && !id.includes('/'), { error: EXPECTED.collectionGroup })
      .optional(),
    where: z.array(filterSchema, { error: 'expected an array of filters' }).optional(),
  },
  'a target object',
).refine((target) => (target.collection === undefined) !== (target.collectionGroup === undefined), {
  error: EXPECTED.target,
  when: isObjectInput,
});

const markerSchema = strictObject(
  {
    field: nonEmptyString('a top-level field name'),
    from: z.union([z.string(), z.null()], { error: EXPECTED.markerFrom }),
    to: nonEmptyString('a non-empty string'),
  },
  'a marker object',
).refine((marker) => marker.from !== marker.to, { error: EXPECTED.markerTo, path: ['to'], when: isObjectInput });

const probeSchema = strictObject(
  {
    name: nonEmptyString('a non-empty string'),
    query: fn('expected a function db => Query').optional(),
    url: z
      .string({ error: 'expected an http(s) URL' })
      .refine((url) => /^https?:\/\/\S+$/.test(url), { error: 'expected an http(s) URL' })
      .optional(),
  },
  'a probe object',
).refine((probe) => (probe.query === undefined) !== (probe.url === undefined), { error: EXPECTED.probe, when: isObjectInput });

const definitionSchema = strictObject(
  {
    id: z.string({ error: EXPECTED.id }).regex(ID_PATTERN, { error: EXPECTED.id }),
    version: z.string({ error: EXPECTED.version }).regex(VERSION_PATTERN, { error: EXPECTED.version }),
    description: nonEmptyString('a non-empty string'),
    target: targetSchema,
    marker: markerSchema,
    from: z.custom((value) => isZodSchema(value), { error: EXPECTED.schema }),
    to: z.custom((value) => isZodSchema(value), { error: EXPECTED.schema }),
    up: fn(EXPECTED.transform),
    down: fn(EXPECTED.transform).optional(),
    references: z
      .array(
        strictObject(
          { field: nonEmptyString('a field path'), collection: collectionPath, optional: z.boolean({ error: 'expected a boolean' }).optional() },
          'a reference object',
        ),
        { error: 'expected an array of references' },
      )
      .optional(),
    impactQueries: z
      .array(
        strictObject(
          { name: nonEmptyString('a non-empty string'), description: nonEmptyString('a non-empty string'), query: fn('expected a function db => Query') },
          'an impact query object',
        ),
        { error: 'expected an array of impact queries' },
      )
      .optional(),
    probes: z.array(probeSchema, { error: 'expected an array of probes' }).optional(),
    legacyFields: z.array(nonEmptyString('a field name'), { error: 'expected an array of field names' }).optional(),
  },
  'a migration definition object',
);

/**
 * Validates a migration definition and returns it frozen, with its checksum.
 * Throws `DefinitionError` listing every bad property and what is expected there.
 */
export function defineMigration(input: MigrationDefinition): Migration {
  const definition = withoutChecksum(input);
  const parsed = definitionSchema.safeParse(definition);
  if (!parsed.success) {
    throw new DefinitionError(nameOf(definition), parsed.error.issues.flatMap(toProblems));
  }
  const frozen: MigrationDefinition = {
    id: definition.id,
    version: definition.version,
    description: definition.description,
    target: freezeTarget(definition.target),
    marker: Object.freeze({ ...definition.marker }),
    from: definition.from,
    to: definition.to,
    up: definition.up,
    ...(definition.down && { down: definition.down }),
    ...(definition.references && { references: freezeList(definition.references) }),
    ...(definition.impactQueries && { impactQueries: freezeList(definition.impactQueries) }),
    ...(definition.probes && { probes: freezeList(definition.probes) }),
    ...(definition.legacyFields && { legacyFields: Object.freeze([...definition.legacyFields]) as string[] }),
  };
  return Object.freeze({ ...frozen, checksum: computeChecksum(frozen) });
}

/** A migration spread into a new definition (`{ ...tradesV2, to }`) brings its old checksum along. */
function withoutChecksum(input: MigrationDefinition): MigrationDefinition {
  if (typeof input !== 'object' || input === null || !('checksum' in input)) return input;
  const { checksum: _recomputed, ...definition } = input as Migration;
  return definition;
}

function nameOf(definition: unknown): string | undefined {
  const id = typeof definition === 'object' && definition !== null ? (definition as { id?: unknown }).id : undefined;
  return typeof id === 'string' && id.length > 0 ? id : undefined;
}

function toProblems(issue: z.core.$ZodIssue): DefinitionProblem[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), expected: issue.message }));
  }
  return [{ path: formatPath(issue.path), expected: issue.message }];
}

function formatPath(path: ReadonlyArray<PropertyKey>): string {
  if (path.length === 0) return '(definition)';
  return path.map((key, i) => (typeof key === 'number' ? `[${key}]` : `${i === 0 ? '' : '.'}${String(key)}`)).join('');
}

function freezeTarget(target: MigrationTarget): MigrationTarget {
  const where = target.where && freezeList<TargetFilter>(target.where);
  const frozen: MigrationTarget =
    'collection' in target && target.collection !== undefined
      ? { collection: target.collection, ...(where && { where }) }
      : { collectionGroup: (target as { collectionGroup: string }).collectionGroup, ...(where && { where }) };
  return Object.freeze(frozen);
}

function freezeList<T extends object>(items: T[]): T[] {
  return Object.freeze(items.map((item) => Object.freeze({ ...item }))) as T[];
}
