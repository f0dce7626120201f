import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ChecksumMismatchError } from './errors';
import type { Migration, MigrationDefinition } from './types';

/**
 * The checksum of a migration: the full SHA-256 hex digest (64 characters) of a canonical JSON
 * serialisation (object keys sorted) of what decides which documents change and how:
 * id, version, target, marker, the source text of `up`/`down`, the JSON schemas of `from`/`to`
 * (with the source of their refinements and transforms), references and legacy fields.
 * Description, impact queries and probes are left out: editing them changes no data.
 *
 * Known limits, by construction: the source text is the code as it runs (`Function.prototype.toString`),
 * so the same migration compiled by a different toolchain (tsc vs jiti) or instrumented for
 * coverage gets another checksum, and helper functions that `up` calls are not part of it.
 */
export function computeChecksum(definition: MigrationDefinition): string {
  return createHash('sha256').update(checksumInput(definition)).digest('hex');
}

/** The canonical text the checksum is computed over. */
export function checksumInput(definition: MigrationDefinition): string {
  return canonicalJson({
    format: 'firemigrate-checksum/1',
    id: definition.id,
    version: definition.version,
    target: definition.target,
    marker: definition.marker,
    up: definition.up.toString(),
    down: definition.down ? definition.down.toString() : null,
    from: schemaFingerprint(definition.from),
    to: schemaFingerprint(definition.to),
    references: definition.references ?? [],
    legacyFields: definition.legacyFields ?? [],
  });
}

/** Throws `ChecksumMismatchError` when an applied migration's definition has been edited since. */
export function assertChecksumMatches(migration: Migration, appliedChecksum: string): void {
  if (migration.checksum !== appliedChecksum) {
    throw new ChecksumMismatchError(migration.id, appliedChecksum, migration.checksum);
  }
}

type ZodInternals = {
  _zod?: { def?: { type?: string; fn?: unknown; transform?: unknown; checks?: unknown[] }; bag?: { Class?: unknown } };
};

function schemaFingerprint(schema: z.ZodType): unknown {
  try {
    return z.toJSONSchema(schema, {
      // Dates, custom checks and transforms have no JSON Schema; tag them with their zod type and
      // function source so that changing them still changes the checksum.
      unrepresentable: 'any',
      override: (ctx) => {
        const internals = (ctx.zodSchema as unknown as ZodInternals)._zod;
        const def = internals?.def;
        if (!def) return;
        const functions = [def.fn, def.transform, ...(def.checks ?? []).map((check) => (check as ZodInternals)._zod?.def?.fn)]
          .filter((fn): fn is (...args: unknown[]) => unknown => typeof fn === 'function')
          .map((fn) => fn.toString());
        if (Object.keys(ctx.jsonSchema).length === 0) ctx.jsonSchema['x-zod-type'] = def.type;
        if (functions.length > 0) ctx.jsonSchema['x-zod-functions'] = functions;
        const instanceOf = internals?.bag?.Class;
        if (typeof instanceOf === 'function') ctx.jsonSchema['x-zod-instanceof'] = instanceOf.name;
      },
    });
  } catch {
    // Not convertible at all (a schema from another library with only safeParse, or a zod
    // construct toJSONSchema rejects even with `unrepresentable: 'any'`): its kind is all we have.
    const internals = (schema as unknown as ZodInternals)._zod;
    return { unconvertible: schema?.constructor?.name ?? typeof schema, zodType: internals?.def?.type ?? null };
  }
}

/** JSON with object keys sorted at every level, so that the same value always serialises the same. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(canonicalValue(value, new Set()));
}

function canonicalValue(value: unknown, seen: Set<object>): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'bigint') return { $bigint: value.toString() };
  if (typeof value === 'number' && !Number.isFinite(value)) return { $number: String(value) };
  if (typeof value === 'function') return { $function: value.toString() };
  if (typeof value === 'symbol') return { $symbol: value.description ?? '' };
  if (typeof value !== 'object') return value;
  if (seen.has(value)) return { $cycle: true };
  seen.add(value);
  try {
    if (Array.isArray(value)) return value.map((item) => canonicalValue(item, seen));
    if (value instanceof Date) return { $date: value.toISOString() };
    const ctor = (value as { constructor?: { name?: string } }).constructor?.name;
    // A DocumentReference holds its Firestore client; its path is what identifies it.
    if (ctor === 'DocumentReference' && typeof (value as { path?: unknown }).path === 'string') {
      return { $ref: (value as { path: string }).path };
    }
    const out: Record<string, unknown> = {};
    if (ctor && ctor !== 'Object') out.$class = ctor;
    for (const key of Object.keys(value).sort()) {
      const item = (value as Record<string, unknown>)[key];
      if (item !== undefined) out[key] = canonicalValue(item, seen);
    }
    return out;
  } finally {
    seen.delete(value);
  }
}
