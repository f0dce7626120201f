import * as path from 'node:path';
import type { z } from 'zod';
import { isTransformError, TransformResultError } from './errors';
import { applyChange, cloneDocument, formatFieldPath, isPlainObject, normalizeTransformResult, type NormalizedChange } from './normalize';
import type { DocData, Migration, TransformContext, VersionMarker } from './types';

export type FailureClass = 'invalid-source' | 'transform-error' | 'invalid-result';
export type FailureSeverity = 'low' | 'medium' | 'high' | 'critical';

/**
 * How serious each failure class is. A document that does not match `from` is data the migration
 * was not written for (medium: report and move on); a transform that throws or produces a shape
 * that is not `to` is a bug in the migration itself, which would recur on every similar document (high).
 */
export const FAILURE_SEVERITY: Readonly<Record<FailureClass, FailureSeverity>> = Object.freeze({
  'invalid-source': 'medium',
  'transform-error': 'high',
  'invalid-result': 'high',
});

export interface ClassificationFailure {
  errorClass: FailureClass;
  severity: FailureSeverity;
  /** Built from field paths, zod issue codes and error class names only: never document values. */
  message: string;
}

export type Classification =
  | { outcome: 'already-at-target' }
  | { outcome: 'skip'; reason: string }
  | { outcome: 'fail'; failure: ClassificationFailure }
  /** `change` includes the marker entry; `after` is the document as it will read once written. */
  | { outcome: 'migrate'; change: NormalizedChange; after: DocData };

export interface ClassifyOptions {
  /** Validate the written document against `to` (MIGRATION_VALIDATION_ENABLED). */
  validate: boolean;
  /**
   * Classify a document already at the target version like one in the old shape: `up` derives
   * its new-shape fields again from the legacy fields it still carries (an expand migration keeps
   * them). The dual-read sync trigger's answer to a legacy client editing a migrated document.
   * `only`: keep just the change's entries under these top-level fields (and the marker) — the
   * new-shape fields a legacy edit affects; a whole-document result is kept whole.
   */
  rederive?: true | { only: readonly string[] };
}

/** The one decision about a document, shared by the dry-run planner and the engine. */
export function classifyDocument(migration: Migration, target: DocData, ctx: TransformContext, opts: ClassifyOptions): Classification {
  const atTarget = target[migration.marker.field] === migration.marker.to;
  if (atTarget && !opts.rederive) return { outcome: 'already-at-target' };
  const doc = atTarget ? withOldMarker(target, migration.marker) : target;

  const source = checkSchema(migration.from, doc);
  if (source) return failure('invalid-source', `does not match the source schema: ${source}`);

  let result: unknown;
  try {
    // up() gets its own copy: a transform that mutates its input must not change what we validate.
    result = migration.up(cloneDocument(doc), { ...ctx });
  } catch (error) {
    return failure('transform-error', describeThrown(error));
  }

  let change: NormalizedChange;
  try {
    const normalized = normalizeTransformResult(result, { transform: 'up' });
    if (normalized.kind === 'skip') return { outcome: 'skip', reason: normalized.reason };
    change = withMarker(atTarget && opts.rederive !== true && opts.rederive ? restrictChange(normalized, opts.rederive.only) : normalized, migration.marker);
  } catch (error) {
    if (error instanceof TransformResultError) return failure('invalid-result', error.message);
    throw error;
  }

  const after = applyChange(doc, change);
  if (opts.validate) {
    const target = checkSchema(migration.to, after);
    if (target) return failure('invalid-result', `the migrated document does not match the target schema: ${target}`);
  }
  return { outcome: 'migrate', change, after };
}

/**
 * Adds `marker.field = marker.to` to a change. A transform may set the marker itself, but only
 * to `marker.to`: any other value, a delete or a nested path under it is refused.
 */
export function withMarker(change: Exclude<NormalizedChange, { kind: 'skip' }>, marker: VersionMarker): NormalizedChange {
  const refuse = (problem: string): never => {
    throw new TransformResultError('up', formatFieldPath([marker.field]), `${problem}; the engine writes the version marker "${marker.to}" itself`);
  };
  if (change.kind === 'replace') {
    const current = change.data[marker.field];
    if (current !== undefined && current !== marker.to) refuse('sets the version marker field to another value');
    return { kind: 'replace', data: { ...change.data, [marker.field]: marker.to } };
  }
  const entries = change.entries.filter((entry) => {
    if (entry.path[0] !== marker.field) return true;
    if (entry.path.length > 1) refuse('writes inside the version marker field');
    if (entry.delete || entry.value !== marker.to) refuse('sets the version marker field to another value');
    return false;
  });
  return { kind: 'patch', entries: [...entries, { path: [marker.field], value: marker.to, delete: false }] };
}

function restrictChange(change: Exclude<NormalizedChange, { kind: 'skip' }>, fields: readonly string[]): Exclude<NormalizedChange, { kind: 'skip' }> {
  if (change.kind === 'replace') return change;
  return { kind: 'patch', entries: change.entries.filter((entry) => fields.includes(entry.path[0])) };
}

/** The document with the marker of the old shape (absent when `from` is null), for `from` and `up`. */
function withOldMarker(doc: DocData, marker: VersionMarker): DocData {
  const { [marker.field]: _target, ...rest } = doc;
  return marker.from === null ? rest : { ...rest, [marker.field]: marker.from };
}

function failure(errorClass: FailureClass, message: string): Classification {
  return { outcome: 'fail', failure: { errorClass, severity: FAILURE_SEVERITY[errorClass], message } };
}

const MAX_ISSUES = 10;

/** Undefined when `data` matches; otherwise the issues as `path: code (expected …)`, value-free. */
function checkSchema(schema: z.ZodType, data: DocData): string | undefined {
  let parsed: ReturnType<z.ZodType['safeParse']>;
  try {
    parsed = schema.safeParse(data);
  } catch (error) {
    // e.g. an async refinement, which safeParse refuses.
    return `the schema check threw ${errorName(error)}`;
  }
  if (parsed.success) return undefined;
  const issues = parsed.error.issues.map((issue) => describeIssue(issue as z.core.$ZodIssue, data));
  const more = issues.length > MAX_ISSUES ? `; and ${issues.length - MAX_ISSUES} more` : '';
  return issues.slice(0, MAX_ISSUES).join('; ') + more;
}

/**
 * Only structural facts: the issue's path, code and what the schema expected (its own literals,
 * bounds and formats), plus the type found. Messages are left out because a custom refinement's
 * message may quote the value it rejected.
 */
function describeIssue(issue: z.core.$ZodIssue, data: DocData): string {
  const where = issue.path.length ? formatFieldPath(issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key))) : '(document)';
  return `${where}: ${issue.code}${issueDetail(issue, data)}`;
}

function issueDetail(issue: z.core.$ZodIssue, data: DocData): string {
  switch (issue.code) {
    case 'invalid_type':
      return ` (expected ${issue.expected}, got ${typeName(valueAt(data, issue.path))})`;
    case 'too_small':
      return ` (${issue.origin} minimum ${String(issue.minimum)}${issue.inclusive === false ? ', exclusive' : ''})`;
    case 'too_big':
      return ` (${issue.origin} maximum ${String(issue.maximum)}${issue.inclusive === false ? ', exclusive' : ''})`;
    case 'invalid_value':
      return ` (expected ${issue.values.map((v) => JSON.stringify(typeof v === 'bigint' ? String(v) : v)).join(' | ')})`;
    case 'invalid_format':
      return ` (expected format ${issue.format})`;
    case 'not_multiple_of':
      return ` (expected a multiple of ${String(issue.divisor)})`;
    case 'unrecognized_keys':
      return ` (${issue.keys.map((key) => formatFieldPath([key])).join(', ')})`;
    case 'invalid_union':
      return ' (no alternative matched)';
    default:
      return '';
  }
}

function valueAt(data: unknown, issuePath: ReadonlyArray<PropertyKey>): unknown {
  let current = data;
  for (const key of issuePath) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

function typeName(value: unknown): string {
  if (value === undefined) return 'nothing (missing)';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value !== 'object') return typeof value;
  if (isPlainObject(value)) return 'map';
  return value.constructor?.name ?? 'object';
}

/**
 * What a thrown error may tell the failure record. Messages of arbitrary errors can quote data
 * (`"x7@ex.com" is not valid JSON`, `Cannot convert abc to a BigInt`, an author's template
 * string), and failure records are kept and shown to operators, so only the class name and the
 * throwing source location are recorded — except for `TransformError`, whose message the
 * transform author writes for this record.
 */
function describeThrown(error: unknown): string {
  if (isTransformError(error)) return `up() rejected the document: ${truncate(error.message, 200)}`;
  const location = error instanceof Error || (typeof error === 'object' && error !== null && 'stack' in error) ? throwLocation(error) : undefined;
  return (
    `up() threw ${errorName(error)}${location ? ` at ${location}` : ''} ` +
    '(message not recorded: it may contain document values; throw TransformError for a recorded message)'
  );
}

function errorName(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const name = (error as { name?: unknown }).name;
    if (typeof name === 'string' && name.length > 0) return name;
    return error.constructor?.name ?? 'an object';
  }
  return `a ${typeof error} (not an Error)`;
}

/** The first stack frame with a source file, relative to the working directory. */
function throwLocation(error: unknown): string | undefined {
  const stack = (error as { stack?: unknown }).stack;
  if (typeof stack !== 'string') return undefined;
  for (const line of stack.split('\n')) {
    const match = /^\s+at (?:.*\()?((?:file:\/\/)?\/[^()]*?):(\d+):(\d+)\)?$/.exec(line);
    if (match) {
      const file = match[1].replace(/^file:\/\//, '');
      return `${path.relative(process.cwd(), file) || file}:${match[2]}:${match[3]}`;
    }
  }
  return undefined;
}

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}
