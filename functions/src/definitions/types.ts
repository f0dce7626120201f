import type { z } from 'zod';
import type { Firestore, Query, WhereFilterOp } from '@google-cloud/firestore';

/** A document's data as the Node SDK reads it (plain values, Timestamp, GeoPoint, …). */
export type DocData = Record<string, unknown>;

/** What a migration walks: one collection (by path) or every collection with one id. */
export type MigrationTarget =
  | { collection: string; where?: TargetFilter[] }
  | { collectionGroup: string; where?: TargetFilter[] };

export interface TargetFilter {
  field: string;
  op: WhereFilterOp;
  value: unknown;
}

/**
 * The version marker the engine writes with every migrated document. A document whose marker
 * already equals `to` is at the target shape; anything else is in the old shape.
 */
export interface VersionMarker {
  field: string;
  /** The marker value of the old shape; `null` means the field is absent. */
  from: string | null;
  to: string;
}

/** The field path of a patch entry: segments are literal, so `'a.b'` is one field named "a.b". */
export type FieldSegments = readonly string[];

/** `up` or `down` declined this document; the reason is reported by plan and run. */
export interface SkipResult {
  readonly kind: 'skip';
  readonly reason: string;
}

/** Set (or delete, with `FieldValue.delete()`) the given paths; other fields are untouched. */
export interface PatchResult {
  readonly kind: 'patch';
  readonly entries: ReadonlyArray<readonly [FieldSegments, unknown]>;
}

/** Replace the whole document; its before-image is then the whole document. */
export interface ReplaceResult {
  readonly kind: 'replace';
  readonly data: DocData;
}

/**
 * What `up`/`down` return: a plain object (top-level field name → new value or
 * `FieldValue.delete()`; keys are literal field names, never split on dots), or one of the
 * explicit results built with `patchPaths`, `replaceDocument` and `skip`.
 */
export type TransformResult = DocData | PatchResult | ReplaceResult | SkipResult;

export interface TransformContext {
  /** Full document path, e.g. `trades/abc`. */
  path: string;
  id: string;
}

export type Transform = (doc: DocData, ctx: TransformContext) => TransformResult;

/** A declared reference checked for orphans: the value at `field` names a document in `collection`. */
export interface ReferenceDeclaration {
  /**
   * Dotted path of the value (`participants.creator`); a trailing `[]` (`participantIds[]`) makes
   * every element of the array at that path a reference.
   */
  field: string;
  collection: string;
  /** A missing or null value is not an orphan. */
  optional?: boolean;
}

/** A query whose matches measure who a rollback would affect (e.g. active trades). */
export interface ImpactQuery {
  name: string;
  description: string;
  query: (db: Firestore) => Query;
}

/** A read of the app's own data whose latency and success measure service availability. */
export type ServiceProbe =
  | { name: string; query: (db: Firestore) => Query }
  | { name: string; url: string };

export interface MigrationDefinition {
  id: string;
  /** Orders migrations (numeric-aware: '2.0' < '10.0'); ties are ordered by id. */
  version: string;
  description: string;
  target: MigrationTarget;
  marker: VersionMarker;
  /** The old shape: a document that does not parse cannot be migrated (a recorded failure). */
  from: z.ZodType;
  /** The new shape: every written document is validated against it (MIGRATION_VALIDATION_ENABLED). */
  to: z.ZodType;
  up: Transform;
  down?: Transform;
  references?: ReferenceDeclaration[];
  impactQueries?: ImpactQuery[];
  probes?: ServiceProbe[];
  /** Legacy fields removed by the contract step (`firemigrate cleanup`). */
  legacyFields?: string[];
}

/** A definition that passed `defineMigration`: frozen, with its checksum. */
export interface Migration extends Readonly<MigrationDefinition> {
  readonly checksum: string;
}
