import { DocumentReference, GeoPoint, Timestamp } from '@google-cloud/firestore';
import type { DocData } from '../definitions/types';

/**
 * Before/after differences of one document as field names and value TYPES. Document data is
 * personal data (DESIGN.md "Security"): values are rendered only when the caller asks for them
 * (`--show-values`); without that, no value leaves this module.
 */
export interface FieldChange {
  /** Literal field-name segments (a segment may contain dots). */
  path: string[];
  kind: 'added' | 'removed' | 'changed';
  beforeType?: string;
  afterType?: string;
  /** Rendered values, present only when values were asked for. */
  before?: string;
  after?: string;
}

export interface DiffOptions {
  showValues: boolean;
}

const VALUE_TEXT_LIMIT = 80;

export function diffDocuments(before: DocData, after: DocData, options: DiffOptions): FieldChange[] {
  const changes: FieldChange[] = [];
  diffMaps([], before, after, options, changes);
  return changes;
}

function diffMaps(prefix: string[], before: DocData, after: DocData, options: DiffOptions, out: FieldChange[]): void {
  const keys = [...Object.keys(before), ...Object.keys(after).filter((key) => !(key in before))];
  for (const key of keys) {
    const path = [...prefix, key];
    const inBefore = Object.prototype.hasOwnProperty.call(before, key);
    const inAfter = Object.prototype.hasOwnProperty.call(after, key);
    const a = before[key];
    const b = after[key];
    if (inBefore && inAfter) {
      if (isPlainMap(a) && isPlainMap(b)) diffMaps(path, a, b, options, out);
      else if (!valuesEqual(a, b)) out.push(change(path, 'changed', { a, b }, options));
    } else if (inAfter) {
      leaves(path, b, (leafPath, value) => out.push(change(leafPath, 'added', { b: value }, options)));
    } else {
      leaves(path, a, (leafPath, value) => out.push(change(leafPath, 'removed', { a: value }, options)));
    }
  }
}

/** An added or removed map is listed field by field (`participants.creator: string`). */
function leaves(path: string[], value: unknown, visit: (path: string[], value: unknown) => void): void {
  if (isPlainMap(value) && Object.keys(value).length > 0) {
    for (const [key, inner] of Object.entries(value)) leaves([...path, key], inner, visit);
  } else {
    visit(path, value);
  }
}

function change(
  path: string[],
  kind: FieldChange['kind'],
  values: { a?: unknown; b?: unknown },
  options: DiffOptions,
): FieldChange {
  const result: FieldChange = { path, kind };
  if (kind !== 'added') result.beforeType = describeType(values.a);
  if (kind !== 'removed') result.afterType = describeType(values.b);
  if (options.showValues) {
    if (kind !== 'added') result.before = renderValue(values.a);
    if (kind !== 'removed') result.after = renderValue(values.b);
  }
  return result;
}

/** `string`, `map`, `array<string|map>`, `timestamp`, … — the shape of a value without its content. */
export function describeType(value: unknown): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return 'array(empty)';
    const elements = [...new Set(value.map(scalarType))];
    return `array<${elements.join('|')}>`;
  }
  if (isPlainMap(value) && Object.keys(value).length === 0) return 'map(empty)';
  return scalarType(value);
}

function scalarType(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'absent';
  if (Array.isArray(value)) return 'array';
  switch (typeof value) {
    case 'string':
      return 'string';
    case 'boolean':
      return 'boolean';
    case 'number':
      return 'number';
    case 'bigint':
      return 'integer';
  }
  if (value instanceof Timestamp) return 'timestamp';
  if (value instanceof GeoPoint) return 'geopoint';
  if (value instanceof DocumentReference) return 'reference';
  if (value instanceof Uint8Array) return 'bytes';
  if (isPlainMap(value)) return 'map';
  return (value as object).constructor?.name ?? 'object';
}

/** A short, single-line rendering of a value (only ever called when values were asked for). */
export function renderValue(value: unknown): string {
  const text = render(value);
  return text.length > VALUE_TEXT_LIMIT ? `${text.slice(0, VALUE_TEXT_LIMIT - 1)}…` : text;
}

function render(value: unknown): string {
  if (value === undefined) return 'absent';
  if (value === null || typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Timestamp) return value.toDate().toISOString();
  if (value instanceof GeoPoint) return `geo(${value.latitude}, ${value.longitude})`;
  if (value instanceof DocumentReference) return `ref(${value.path})`;
  if (value instanceof Uint8Array) return `bytes(${value.length})`;
  if (Array.isArray(value)) return `[${value.map(render).join(', ')}]`;
  if (isPlainMap(value)) {
    return `{${Object.entries(value)
      .map(([key, inner]) => `${formatFieldPath([key])}: ${render(inner)}`)
      .join(', ')}}`;
  }
  return scalarType(value);
}

/** Firestore's field-path notation: segments that are not simple identifiers are back-quoted. */
export function formatFieldPath(segments: readonly string[]): string {
  return segments.map((segment) => (/^[A-Za-z_][A-Za-z0-9_]*$/.test(segment) ? segment : `\`${segment.replace(/[`\\]/g, '\\$&')}\``)).join('.');
}

/**
 * One line per change: `+ skillsOffered: array<map>`, `- legacy: string`, `~ status: string → number`;
 * with values: `+ schemaVersion: string = "2.0"`, `~ status: string = "open" → "active"`.
 */
export function formatFieldChange(change: FieldChange): string {
  const name = formatFieldPath(change.path);
  const withValue = (type: string | undefined, value: string | undefined) => (value === undefined ? `${type}` : `${type} = ${value}`);
  switch (change.kind) {
    case 'added':
      return `+ ${name}: ${withValue(change.afterType, change.after)}`;
    case 'removed':
      return `- ${name}: ${withValue(change.beforeType, change.before)}`;
    case 'changed': {
      const showsValues = change.before !== undefined || change.after !== undefined;
      if (change.beforeType === change.afterType) {
        return showsValues
          ? `~ ${name}: ${change.beforeType} = ${change.before} → ${change.after}`
          : `~ ${name}: ${change.beforeType} (value changed)`;
      }
      return showsValues
        ? `~ ${name}: ${change.beforeType} = ${change.before} → ${change.afterType} = ${change.after}`
        : `~ ${name}: ${change.beforeType} → ${change.afterType}`;
    }
  }
}

function isPlainMap(value: unknown): value is DocData {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const prototype = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** Deep equality of Firestore values: map key order does not matter, typed values compare by content. */
export function valuesEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== 'object') return Number.isNaN(a) && Number.isNaN(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((item, i) => valuesEqual(item, b[i]));
  }
  if (a instanceof Timestamp || a instanceof GeoPoint || a instanceof DocumentReference) {
    return (a as { isEqual(other: unknown): boolean }).isEqual(b);
  }
  if (a instanceof Uint8Array) {
    return b instanceof Uint8Array && a.length === b.length && a.every((byte, i) => byte === b[i]);
  }
  if (isPlainMap(a) && isPlainMap(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && valuesEqual(a[key], b[key]));
  }
  return false;
}
