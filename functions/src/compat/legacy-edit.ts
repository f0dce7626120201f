import type { Firestore } from '@google-cloud/firestore';
import { CLEANUP_MARKER_FIELD } from '../cleanup/cleanup-migration';
import { classifyDocument, type Classification } from '../definitions/classify';
import type { DocData, Migration } from '../definitions/types';
import { changesNothing, encodeChange } from '../engine/before-image';
import { canonicalValue } from '../engine/wire/canonical';
import { decodeFields, encodeFields, encodeValue, ValueEncodingError } from '../engine/wire/codec';
import type { RawFields, RawValue } from '../engine/wire/types';

/**
 * Legacy edits of migrated documents (DESIGN.md "Zero downtime"): an expand migration keeps the
 * legacy fields, so an old client can still change them on a document that is already at the
 * target version — and the new-shape fields derived from them (`participants.participant` from
 * `participantId`) would go stale, with new clients reading the old value. Decided from the
 * write event's before and after alone, on raw values compared canonically (a double 1.0 and an
 * integer 1 differ; map key order does not).
 */

/** What the sync trigger receives of a document version: a snapshot, or anything like one. */
export interface EventSnapshot {
  exists: boolean;
  data(): DocData | undefined;
}

export type LegacyEdit =
  /**
   * The write changed none of the migration's `legacyFields` (or it declares none), or it is the
   * contract step's (`cleanup` removing them, or its rollback putting them back: the cleanup
   * marker changed with them) — the sync trigger stays on while a cleanup runs.
   */
  | { kind: 'none' }
  /** It changed legacy fields and new-shape fields together (a client writing both shapes): left as written. */
  | { kind: 'new-shape-also-written' }
  /** Derived again from the edited legacy fields, the new-shape fields the edit affects come out as they are. */
  | { kind: 'new-shape-in-step' }
  /**
   * Derive the new-shape fields the edit affects again: `affectedFields`, the top-level fields
   * whose `up` result differs between the legacy values before and after the write.
   * `stillAsWritten` gives those of them a document read later still holds as this write left
   * them: one written since (by a client, or by the trigger for a later edit) is not derived again.
   */
  | { kind: 'rederive'; affectedFields: string[]; stillAsWritten: (fields: RawFields) => string[] };

export interface LegacyEditContext {
  /** The codec's Firestore and database name: documents are decoded as the batch core decodes them. */
  db: Firestore;
  databaseName: string;
  /** The document's path, e.g. `trades/abc`. */
  path: string;
}

/**
 * The raw fields of an event's document version, null when it does not exist. firebase-functions
 * builds its event snapshots with the Firestore SDK, which keeps the fields it decoded from the
 * event as `_fieldsProto` (engine/wire/snapshot.ts relies on the same); anything else is encoded
 * from its data, where `data()` has already folded a double 1.0 into the integer 1.
 */
export function eventFields(snapshot: EventSnapshot | undefined, databaseName: string): RawFields | null {
  if (!snapshot?.exists) return null;
  const raw = (snapshot as { _fieldsProto?: RawFields })._fieldsProto;
  if (raw) return raw;
  const data = snapshot.data();
  return data ? encodeFields(data, databaseName) : null;
}

/** Whether the write changed `field` (absent and present differ; values compared canonically). */
export function fieldChanged(before: RawFields | null, after: RawFields, field: string): boolean {
  return canonicalOrAbsent(before?.[field]) !== canonicalOrAbsent(after[field]);
}

/** Whether the write was a legacy edit (see `LegacyEdit` 'none'): cheap, no transform run. */
export function changesLegacyFields(migration: Migration, before: RawFields | null, after: RawFields): boolean {
  if (fieldChanged(before, after, CLEANUP_MARKER_FIELD)) return false;
  return (migration.legacyFields ?? []).some((field) => fieldChanged(before, after, field));
}

/**
 * What a write to a document at the migration's target version means for its new-shape fields.
 * Which write wins: an old client's edit of legacy fields wins over the new-shape fields derived
 * from them (they are derived again from its values) — but only those: a write that changed the
 * new shape too, and a new-shape value written since or not derived from the edited fields (a
 * new client's), stand as written.
 */
export function legacyEditOf(migration: Migration, before: RawFields | null, after: RawFields, ctx: LegacyEditContext): LegacyEdit {
  if (!changesLegacyFields(migration, before, after)) return { kind: 'none' };
  const derive = (fields: RawFields, rederive: true | { only: readonly string[] } = true) =>
    classifyDocument(migration, decodeFields(fields, { db: ctx.db, databaseName: ctx.databaseName }), { path: ctx.path, id: ctx.path.slice(ctx.path.lastIndexOf('/') + 1) }, {
      validate: false,
      rederive,
    });
  const fromAfter = derive(after);
  const fromBefore = before ? derive(before) : null;
  // Where `up` cannot run on the edited document, the fields it wrote on the previous version
  // tell which are new-shape; the batch core then records why the edit cannot be derived.
  const derivedFields = derivedFieldsOf(migration, fromAfter, after) ?? (before && fromBefore ? derivedFieldsOf(migration, fromBefore, before) : null) ?? [];
  if (derivedFields.some((field) => fieldChanged(before, after, field))) return { kind: 'new-shape-also-written' };
  const affectedFields =
    fromAfter.outcome === 'migrate' && fromBefore?.outcome === 'migrate'
      ? derivedFields.filter((field) => !sameDerivedValue(fromBefore.after[field], fromAfter.after[field], ctx.databaseName))
      : derivedFields;
  if (affectedFields.length === 0) return { kind: 'new-shape-in-step' };
  const restricted = derive(after, { only: affectedFields });
  if (restricted.outcome === 'migrate' && restricted.change.kind !== 'skip') {
    try {
      if (changesNothing(after, encodeChange(restricted.change, ctx.databaseName))) return { kind: 'new-shape-in-step' };
    } catch (error) {
      if (!(error instanceof ValueEncodingError)) throw error;
    }
  }
  return {
    kind: 'rederive',
    affectedFields,
    stillAsWritten: (fields) => affectedFields.filter((field) => canonicalOrAbsent(fields[field]) === canonicalOrAbsent(after[field])),
  };
}

/**
 * The top-level fields `up` writes on this document, besides the marker and the legacy fields;
 * for a whole-document result, every field it has or drops. Null when `up` does not migrate it.
 */
function derivedFieldsOf(migration: Migration, classification: Classification, fields: RawFields): string[] | null {
  if (classification.outcome !== 'migrate') return null;
  const { change } = classification;
  const written = change.kind === 'replace' ? [...Object.keys(change.data), ...Object.keys(fields)] : change.kind === 'patch' ? change.entries.map((entry) => entry.path[0]) : [];
  const legacy = migration.legacyFields ?? [];
  return [...new Set(written)].filter((field) => field !== migration.marker.field && !legacy.includes(field));
}

function canonicalOrAbsent(value: RawValue | undefined): string {
  return value === undefined ? '-' : canonicalValue(value);
}

/** Whether `up` produced the same value twice (canonically); one that cannot be written is never the same. */
function sameDerivedValue(a: unknown, b: unknown, databaseName: string): boolean {
  if (a === undefined || b === undefined) return a === b;
  try {
    return canonicalValue(encodeValue(a, databaseName, [])) === canonicalValue(encodeValue(b, databaseName, []));
  } catch (error) {
    if (!(error instanceof ValueEncodingError)) throw error;
    return false;
  }
}
