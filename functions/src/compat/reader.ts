import type { z } from 'zod';
import { classifyDocument, type FailureClass } from '../definitions/classify';
import { cloneDocument, formatFieldPath, isPlainObject } from '../definitions/normalize';
import type { DocData, Migration, TransformContext } from '../definitions/types';
import { contractedSchema, lacksLegacyFields } from './contracted-shape';

/**
 * How the stored document was found: `new` (the migration's target shape, as stored), `legacy`
 * (the old shape, upgraded in memory by the migration's own `up`), or `invalid` (it can be read in
 * neither shape).
 */
export type ReadShape = 'new' | 'legacy' | 'invalid';

/**
 * Why a document cannot be read in the new shape: the classification's failure classes, plus
 * `invalid-target` (it carries the target marker but does not match `to`) and `skipped` (`up`
 * declined it).
 */
export type InvalidReason = FailureClass | 'invalid-target' | 'skipped';

/** One zod issue, as its field path and code only: never the value found there. */
export interface ReadIssue {
  /** `participants[1].id`, or `(document)` for the document as a whole. */
  path: string;
  code: string;
}

export type NewShapeRead =
  /** `data` matches the migration's `to` schema — or, once cleaned up, `to` without the legacy fields. */
  | { shape: 'new' | 'legacy'; data: DocData }
  | {
      shape: 'invalid';
      /** The document as stored (a copy): NOT in the new shape. */
      data: DocData;
      reason: InvalidReason;
      /** The schema's issues; empty when the failure is not a schema mismatch (`up` threw or skipped). */
      issues: ReadIssue[];
      /** Value-free, for logs: field paths, issue codes and error class names only. */
      message: string;
    };

/**
 * What the reader accepts besides plain data: a document snapshot of @google-cloud/firestore or
 * firebase-admin (the migrations' schemas expect their Timestamp class).
 */
export interface SnapshotLike {
  readonly id: string;
  readonly ref: { readonly path: string };
  data(): DocData | undefined;
}

export class MissingDocumentError extends Error {
  override readonly name = 'MissingDocumentError';
  constructor(readonly path: string) {
    super(`${path} does not exist: only an existing document can be read in the new shape`);
  }
}

/**
 * Any document, legacy or new, in the migration's new shape — what application code reads while
 * a migration expands a collection, so it can drop its legacy code paths before the run ends.
 * Pure: the document is upgraded in memory with the migration's own `up` (the same classification
 * and change application as the engine, so the result is exactly what the engine will write),
 * nothing is written. Every `new`/`legacy` result has been checked against `to`.
 *
 * `ctx` (the document's path and id, which `up` may read) is taken from a snapshot; plain data
 * needs it.
 */
export function readInNewShape(migration: Migration, snapshot: SnapshotLike, ctx?: TransformContext): NewShapeRead;
export function readInNewShape(migration: Migration, data: DocData, ctx: TransformContext): NewShapeRead;
export function readInNewShape(migration: Migration, input: SnapshotLike | DocData, ctx?: TransformContext): NewShapeRead {
  const { doc, context } = documentOf(input, ctx);
  // Validation is done here rather than inside the classification, to report the `to` issues.
  const classification = classifyDocument(migration, doc, context, { validate: false });
  switch (classification.outcome) {
    case 'already-at-target': {
      const issues = schemaIssues(migration.to, doc);
      if (issues.length === 0) return { shape: 'new', data: cloneDocument(doc) };
      // Cleaned up (the contract step removed the legacy fields): the new shape without them.
      const contracted = contractedSchema(migration);
      if (contracted && lacksLegacyFields(migration, doc) && schemaIssues(contracted, doc).length === 0) return { shape: 'new', data: cloneDocument(doc) };
      return invalid(doc, 'invalid-target', issues, `carries the version marker "${migration.marker.to}" but does not match the target schema`);
    }
    case 'migrate': {
      const issues = schemaIssues(migration.to, classification.after);
      if (issues.length === 0) return { shape: 'legacy', data: classification.after };
      return invalid(doc, 'invalid-result', issues, 'the migrated document does not match the target schema');
    }
    case 'skip':
      return { shape: 'invalid', data: cloneDocument(doc), reason: 'skipped', issues: [], message: `up() skipped the document: ${classification.reason}` };
    case 'fail': {
      const { errorClass, message } = classification.failure;
      const issues = errorClass === 'invalid-source' ? schemaIssues(migration.from, doc) : [];
      return { shape: 'invalid', data: cloneDocument(doc), reason: errorClass, issues, message };
    }
  }
}

function documentOf(input: SnapshotLike | DocData, ctx: TransformContext | undefined): { doc: DocData; context: TransformContext } {
  // A function is no Firestore value, so data never looks like a snapshot.
  const snapshot = input as Partial<SnapshotLike>;
  if (typeof snapshot.data === 'function' && typeof snapshot.ref?.path === 'string' && typeof snapshot.id === 'string') {
    const data = snapshot.data();
    if (data === undefined) throw new MissingDocumentError(snapshot.ref.path);
    return { doc: data, context: ctx ?? { path: snapshot.ref.path, id: snapshot.id } };
  }
  if (!isPlainObject(input)) throw new TypeError('readInNewShape: expected a document snapshot or plain document data');
  if (!ctx) throw new TypeError('readInNewShape: plain document data needs its context ({ path, id }) as the third argument');
  return { doc: input, context: ctx };
}

function invalid(doc: DocData, reason: InvalidReason, issues: ReadIssue[], what: string): NewShapeRead {
  const listed = issues.map((issue) => `${issue.path}: ${issue.code}`).join('; ');
  return { shape: 'invalid', data: cloneDocument(doc), reason, issues, message: `${what}: ${listed}` };
}

function schemaIssues(schema: z.ZodType, data: DocData): ReadIssue[] {
  let parsed: ReturnType<z.ZodType['safeParse']>;
  try {
    parsed = schema.safeParse(data);
  } catch {
    // e.g. an async refinement, which safeParse refuses: the document cannot be vouched for.
    return [{ path: '(document)', code: 'schema-threw' }];
  }
  if (parsed.success) return [];
  return parsed.error.issues.map((issue) => ({
    path: issue.path.length ? formatFieldPath(issue.path.map((key) => (typeof key === 'symbol' ? String(key) : key))) : '(document)',
    code: issue.code,
  }));
}
