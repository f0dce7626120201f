import type { google } from '@google-cloud/firestore/types/protos/firestore_v1_proto_api';

/**
 * Firestore's own value representation (google.firestore.v1.Value) as the v1 client decodes it:
 * int64 as decimal strings, bytes as Buffers, a `valueType` naming the set member. Values kept in
 * this form never pass through JavaScript numbers, so a double `1.0` stays a double and an int64
 * keeps every digit.
 */
export type RawValue = google.firestore.v1.IValue & { valueType?: string };
export type RawFields = Record<string, RawValue>;
export type RawTimestamp = google.protobuf.ITimestamp;
export type RawWrite = google.firestore.v1.IWrite;

/** One document of a batch read, in the order the paths were asked for. */
export type RawDocument =
  | { path: string; exists: true; fields: RawFields; updateTime: RawTimestamp; createTime: RawTimestamp }
  | { path: string; exists: false };

export interface CommitResult {
  commitTime: RawTimestamp;
  /** One per write, in order; `updateTime` is absent for a write that changed nothing. */
  writeResults: Array<{ updateTime?: RawTimestamp | null }>;
}

export type ValueKind =
  | 'nullValue'
  | 'booleanValue'
  | 'integerValue'
  | 'doubleValue'
  | 'timestampValue'
  | 'stringValue'
  | 'bytesValue'
  | 'referenceValue'
  | 'geoPointValue'
  | 'arrayValue'
  | 'mapValue';

const KINDS: readonly ValueKind[] = [
  'nullValue',
  'booleanValue',
  'integerValue',
  'doubleValue',
  'timestampValue',
  'stringValue',
  'bytesValue',
  'referenceValue',
  'geoPointValue',
  'arrayValue',
  'mapValue',
];

/** Which member of the Value union is set (decoded values name it; values built here do not). */
export function kindOf(value: RawValue): ValueKind {
  const named = value.valueType as ValueKind | undefined;
  if (named !== undefined) return named;
  for (const kind of KINDS) {
    if (value[kind] !== undefined && value[kind] !== null) return kind;
  }
  throw new Error(`not a Firestore value: ${JSON.stringify(value)}`);
}

export function mapFields(value: RawValue): RawFields {
  return (value.mapValue?.fields ?? {}) as RawFields;
}

export function arrayValues(value: RawValue): RawValue[] {
  return (value.arrayValue?.values ?? []) as RawValue[];
}
