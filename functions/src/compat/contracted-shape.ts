import { z } from 'zod';
import type { DocData, Migration } from '../definitions/types';

/**
 * The shape after the contract step (`firemigrate cleanup`): the migration's `to` without its
 * `legacyFields`. Derived from `to`, so it needs an object schema; null when there is nothing to
 * contract (no legacy fields) or `to` is not an object schema.
 */
const contracted = new WeakMap<Migration, z.ZodType | null>();

export function contractedSchema(migration: Migration): z.ZodType | null {
  if (!contracted.has(migration)) {
    const legacy = migration.legacyFields ?? [];
    const to = migration.to;
    let schema: z.ZodType | null = null;
    if (legacy.length > 0 && to instanceof z.ZodObject) {
      const mask = Object.fromEntries(legacy.filter((field) => field in to.shape).map((field) => [field, true] as const));
      schema = to.omit(mask as never);
    }
    contracted.set(migration, schema);
  }
  return contracted.get(migration)!;
}

/** Whether a document holds none of the migration's legacy fields (top-level names, literal). */
export function lacksLegacyFields(migration: Migration, doc: DocData): boolean {
  return (migration.legacyFields ?? []).every((field) => !Object.prototype.hasOwnProperty.call(doc, field));
}
