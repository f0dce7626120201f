import { DocumentReference, FieldValue, GeoPoint, Timestamp, VectorValue } from '@google-cloud/firestore';
import { TransformResultError } from './errors';
import { isPatch, isReplace, isSkip } from './results';
import type { DocData } from './types';

/** One field write: `path` segments are literal field names; `delete` removes the field. */
export interface ChangeEntry {
  path: string[];
  value: unknown;
  delete: boolean;
}

/** A transform result in the one shape the planner, the engine and the validator consume. */
export type NormalizedChange =
  | { kind: 'skip'; reason: string }
  | { kind: 'patch'; entries: ChangeEntry[] }
  | { kind: 'replace'; data: DocData };

export interface NormalizeContext {
  /** Which transform produced the result, for error messages. */
  transform: 'up' | 'down';
}

type Segment = string | number;

/**
 * Checks and copies what `up`/`down` returned. Values are deep-copied (so a transform that
 * returns parts of its input cannot alias the document) and `Date`s become `Timestamp`s, which
 * is what Firestore stores and what `to` sees when the written document is read back.
 * Throws `TransformResultError` naming the field for anything that cannot be written exactly:
 * `undefined`, functions, class instances that are no Firestore value, FieldValue sentinels
 * other than `FieldValue.delete()` (they cannot be validated or restored), a delete nested in a
 * value, nested arrays, and patch entries where one path contains another.
 */
export function normalizeTransformResult(result: unknown, ctx: NormalizeContext): NormalizedChange {
  const fail = (path: Segment[] | undefined, problem: string): never => {
    throw new TransformResultError(ctx.transform, path && formatFieldPath(path), problem);
  };
  if (result === null || typeof result !== 'object' || Array.isArray(result) || isThenable(result)) {
    return fail(undefined, `${describe(result)} is not a result; return a plain object of fields, patchPaths(...), replaceDocument(...) or skip(reason)`);
  }
  const candidate = result as Parameters<typeof isSkip>[0];
  if (isSkip(candidate)) return { kind: 'skip', reason: candidate.reason };
  if (isReplace(candidate)) {
    if (!isPlainObject(candidate.data)) return fail(undefined, `replaceDocument() needs a plain object, got ${describe(candidate.data)}`);
    return { kind: 'replace', data: copyMap(candidate.data, [], fail) };
  }
  const rawEntries: ReadonlyArray<readonly [readonly unknown[], unknown]> = isPatch(candidate)
    ? candidate.entries
    : isPlainObject(result)
      ? Object.entries(result).map(([key, value]) => [[key], value] as const)
      : fail(undefined, `${describe(result)} is not a result; return a plain object of fields, patchPaths(...), replaceDocument(...) or skip(reason)`);
  const entries = rawEntries.map(([path, value]): ChangeEntry => {
    if (!Array.isArray(path) || path.length === 0 || !path.every((s) => typeof s === 'string' && s.length > 0)) {
      return fail(undefined, 'a patch path must be a non-empty array of non-empty field names');
    }
    const segments = path as string[];
    if (isDeleteSentinel(value)) return { path: [...segments], value: undefined, delete: true };
    return { path: [...segments], value: copyValue(value, segments, fail), delete: false };
  });
  assertNoOverlap(entries, fail);
  return { kind: 'patch', entries };
}

/**
 * The document as it reads after the change (a deep copy; the input is untouched). Nested set
 * paths create the maps they need, replacing a non-map value in the way, as Firestore does.
 */
export function applyChange(doc: DocData, change: NormalizedChange): DocData {
  if (change.kind === 'replace') return cloneDocument(change.data);
  const after = cloneDocument(doc);
  if (change.kind === 'skip') return after;
  for (const entry of change.entries) {
    const parentPath = entry.path.slice(0, -1);
    const leaf = entry.path[entry.path.length - 1];
    let parent: DocData | undefined = after;
    for (const segment of parentPath) {
      const next: unknown = parent[segment];
      if (!isPlainObject(next)) {
        if (entry.delete) {
          parent = undefined;
          break;
        }
        parent[segment] = {};
      }
      parent = parent[segment] as DocData;
    }
    if (!parent) continue;
    if (entry.delete) delete parent[leaf];
    else parent[leaf] = cloneValue(entry.value);
  }
  return after;
}

/** `FieldValue.delete()`, also from another copy of the SDK (an app's own firebase-admin). */
export function isDeleteSentinel(value: unknown): boolean {
  return FieldValue.delete().isEqual(value as FieldValue) || sentinelName(value) === 'FieldValue.delete';
}

/** `a.b[2].\`x.y\``: array indices in brackets, field names that are not identifiers in backticks. */
export function formatFieldPath(path: ReadonlyArray<Segment>): string {
  return path
    .map((segment, i) => {
      if (typeof segment === 'number') return `[${segment}]`;
      const name = /^[A-Za-z_][A-Za-z0-9_]*$/.test(segment) ? segment : `\`${segment.replace(/[`\\]/g, '\\$&')}\``;
      return i === 0 ? name : `.${name}`;
    })
    .join('');
}

type Fail = (path: Segment[] | undefined, problem: string) => never;

function copyValue(input: unknown, path: Segment[], fail: Fail): unknown {
  switch (typeof input) {
    case 'string':
    case 'boolean':
    case 'number':
    case 'bigint':
      return input;
    case 'undefined':
      return fail(path, 'undefined is not a Firestore value; leave the field out, or remove it with FieldValue.delete()');
    case 'function':
    case 'symbol':
      return fail(path, `a ${typeof input} is not a Firestore value`);
  }
  const value = input as object | null;
  if (value === null) return null;
  if (Array.isArray(value)) {
    return value.map((item, i) => {
      if (Array.isArray(item)) return fail([...path, i], 'Firestore does not store arrays directly inside arrays; wrap the inner array in a map');
      return copyValue(item, [...path, i], fail);
    });
  }
  if (isPlainObject(value)) return copyMap(value, path, fail);
  if (isDate(value)) {
    if (Number.isNaN(value.getTime())) return fail(path, 'an invalid Date is not a Firestore value');
    return Timestamp.fromDate(value);
  }
  if (isBytes(value)) return Buffer.from(value);
  if (isFirestoreValueType(value)) return value;
  const sentinel = sentinelName(value);
  if (sentinel === 'FieldValue.delete') {
    return fail(path, 'FieldValue.delete() is only allowed as a whole field entry, not inside a map or array value; delete the nested path with patchPaths([[path, FieldValue.delete()]])');
  }
  if (sentinel) return fail(path, `${sentinel}() is refused: results may contain only plain values and FieldValue.delete(), which can be validated and restored exactly`);
  return fail(path, `${describe(value)} is not a Firestore value`);
}

function copyMap(map: DocData, path: Segment[], fail: Fail): DocData {
  const copy: DocData = {};
  for (const [key, item] of Object.entries(map)) {
    if (key.length === 0) return fail(path.length ? path : undefined, 'a field name must not be empty');
    copy[key] = copyValue(item, [...path, key], fail);
  }
  return copy;
}

function assertNoOverlap(entries: ChangeEntry[], fail: Fail): void {
  const keyOf = (path: string[]) => JSON.stringify(path);
  const byKey = new Map<string, string[]>();
  for (const entry of entries) {
    if (byKey.has(keyOf(entry.path))) fail(entry.path, 'this field is written by two patch entries');
    byKey.set(keyOf(entry.path), entry.path);
  }
  for (const entry of entries) {
    for (let length = 1; length < entry.path.length; length++) {
      const prefix = byKey.get(keyOf(entry.path.slice(0, length)));
      if (prefix) {
        fail(entry.path, `overlaps the patch entry ${formatFieldPath(prefix)}, which already sets the whole map; write either the map or its nested fields`);
      }
    }
  }
}

/** Deep copy of maps, arrays and bytes; Timestamps, GeoPoints and references are immutable and shared. */
export function cloneDocument(doc: DocData): DocData {
  return cloneValue(doc) as DocData;
}

function cloneValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(cloneValue);
  if (isPlainObject(value)) return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, cloneValue(item)]));
  if (isBytes(value)) return Buffer.from(value);
  return value;
}

// Realm- and copy-independent checks: migration files loaded through jiti (and under jest) run
// with other copies of the SDK and other global prototypes than this module sees.

export function isPlainObject(value: unknown): value is DocData {
  if (typeof value !== 'object' || value === null) return false;
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || (Object.getPrototypeOf(proto) === null && (proto as { constructor?: { name?: string } }).constructor?.name === 'Object');
}

function isDate(value: object): value is Date {
  return Object.prototype.toString.call(value) === '[object Date]';
}

function isBytes(value: unknown): value is Uint8Array {
  return ArrayBuffer.isView(value) && Object.prototype.toString.call(value) === '[object Uint8Array]';
}

const FIRESTORE_VALUE_TYPES = [Timestamp, GeoPoint, DocumentReference, VectorValue];

function isFirestoreValueType(value: object): boolean {
  const name = value.constructor?.name;
  return FIRESTORE_VALUE_TYPES.some((type) => value instanceof type || type.name === name);
}

const SENTINEL_CLASSES = ['DeleteTransform', 'ServerTimestampTransform', 'NumericIncrementTransform', 'ArrayUnionTransform', 'ArrayRemoveTransform'];

function sentinelName(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || isPlainObject(value)) return undefined;
  if (!(value instanceof FieldValue) && !SENTINEL_CLASSES.includes((value as object).constructor?.name)) return undefined;
  const name = (value as { methodName?: unknown }).methodName;
  return typeof name === 'string' ? name : 'FieldValue';
}

function isThenable(value: object): boolean {
  return typeof (value as { then?: unknown }).then === 'function';
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value !== 'object') return typeof value === 'undefined' ? 'undefined' : `a ${typeof value}`;
  if (isThenable(value)) return 'a Promise (transforms must be synchronous)';
  const name = value.constructor?.name;
  return name && name !== 'Object' ? `a ${name} instance` : 'an object';
}
