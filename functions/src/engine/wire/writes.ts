import { formatFieldPath } from './field-path';
import { mapFields, type RawFields, type RawTimestamp, type RawValue, type RawWrite } from './types';

/** One field of a patch in raw form: `value` undefined deletes the field. */
export interface RawEntry {
  path: readonly string[];
  value?: RawValue;
}

export type Precondition = { updateTime: RawTimestamp } | { exists: boolean };

/**
 * An update that sets/deletes exactly the entries' paths (the update mask) and leaves every other
 * field alone. Paths must not overlap (one a prefix of another): Firestore refuses such masks.
 */
export function patchWrite(name: string, entries: readonly RawEntry[], precondition?: Precondition): RawWrite {
  return {
    update: { name, fields: nestEntries(entries) },
    updateMask: { fieldPaths: entries.map((entry) => formatFieldPath(entry.path)) },
    ...(precondition && { currentDocument: precondition }),
  };
}

/** Writes the whole document: every field not in `fields` is gone afterwards. */
export function replaceWrite(name: string, fields: RawFields, precondition?: Precondition): RawWrite {
  return { update: { name, fields }, ...(precondition && { currentDocument: precondition }) };
}

/** The `fields` of a masked update: each set entry's value at its path, parents as maps. */
export function nestEntries(entries: readonly RawEntry[]): RawFields {
  const root: RawFields = {};
  for (const entry of entries) {
    if (entry.value === undefined) continue;
    let node = root;
    for (let i = 0; i < entry.path.length - 1; i++) {
      const segment = entry.path[i];
      let child = node[segment];
      if (child === undefined) {
        child = { mapValue: { fields: {} } };
        node[segment] = child;
      }
      node = mapFields(child);
    }
    node[entry.path[entry.path.length - 1]] = entry.value;
  }
  return root;
}

/** The value at a path, or undefined when there is none (missing, or under a non-map value). */
export function valueAt(fields: RawFields, path: readonly string[]): RawValue | undefined {
  let node: RawFields | undefined = fields;
  for (let i = 0; i < path.length; i++) {
    const value: RawValue | undefined = node[path[i]];
    if (value === undefined) return undefined;
    if (i === path.length - 1) return value;
    if (!value.mapValue) return undefined;
    node = mapFields(value);
  }
  return undefined;
}

/**
 * The document after a patch, as Firestore computes it: setting a nested path creates the maps
 * it needs (replacing a non-map value in the way); deleting under a missing or non-map parent
 * does nothing. Copy-on-write: `fields` is not modified.
 */
export function applyEntries(fields: RawFields, entries: readonly RawEntry[]): RawFields {
  let root = fields;
  for (const entry of entries) root = applyEntry(root, entry.path, 0, entry.value);
  return root;
}

function applyEntry(node: RawFields, path: readonly string[], depth: number, value: RawValue | undefined): RawFields {
  const segment = path[depth];
  const current = node[segment];
  if (depth === path.length - 1) {
    if (value === undefined) {
      if (current === undefined) return node;
      const { [segment]: _removed, ...rest } = node;
      return rest;
    }
    return { ...node, [segment]: value };
  }
  if (current?.mapValue) {
    return { ...node, [segment]: { mapValue: { fields: applyEntry(mapFields(current), path, depth + 1, value) } } };
  }
  if (value === undefined) return node;
  return { ...node, [segment]: { mapValue: { fields: applyEntry({}, path, depth + 1, value) } } };
}
