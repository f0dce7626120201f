import { FieldValue, GeoPoint, Timestamp, type DocumentReference, type Firestore, type VectorValue } from '@google-cloud/firestore';
import { arrayValues, kindOf, mapFields, type RawFields, type RawValue } from './types';

/**
 * Raw Firestore values ↔ the JavaScript values `up()` sees. Decoding gives what the Node SDK
 * gives (Timestamp, GeoPoint, DocumentReference, Buffer, VectorValue, numbers, null, arrays,
 * plain objects) with one documented difference: an integer outside ±(2^53 − 1) decodes as a
 * `bigint` rather than a rounded number, so passing it through a transform keeps every digit.
 * Encoding follows the SDK: a safe integer becomes an integerValue, any other number (including
 * -0) a doubleValue, a bigint an integerValue; timestamps are cut to Firestore's microseconds so
 * what is encoded is exactly what is stored.
 *
 * Only values a transform WRITES go through this codec. Before-images are copied from the raw
 * values (never round-tripped through JavaScript, where a double `1.0` is the integer `1`).
 */
export const VECTOR_TYPE_KEY = '__type__';
export const VECTOR_TYPE_VALUE = '__vector__';
export const VECTOR_VALUES_KEY = 'value';
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** A database's resource name, `projects/{project}/databases/{database}`, and the Firestore that references decode into. */
export interface CodecContext {
  db: Firestore;
  databaseName: string;
}

export class ValueEncodingError extends Error {
  override readonly name = 'ValueEncodingError';
  constructor(readonly fieldPath: string, problem: string) {
    super(`cannot write field ${fieldPath}: ${problem}`);
  }
}

export function decodeFields(fields: RawFields, ctx: CodecContext): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) out[key] = decodeValue(fields[key], ctx);
  return out;
}

export function decodeValue(value: RawValue, ctx: CodecContext): unknown {
  switch (kindOf(value)) {
    case 'nullValue':
      return null;
    case 'booleanValue':
      return value.booleanValue;
    case 'integerValue': {
      const text = String(value.integerValue);
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : BigInt(text);
    }
    case 'doubleValue':
      return Number(value.doubleValue);
    case 'timestampValue':
      return new Timestamp(Number(value.timestampValue!.seconds ?? 0), value.timestampValue!.nanos ?? 0);
    case 'stringValue':
      return value.stringValue;
    case 'bytesValue':
      return Buffer.from(value.bytesValue!);
    case 'referenceValue':
      return ctx.db.doc(relativeDocumentPath(value.referenceValue!));
    case 'geoPointValue':
      return new GeoPoint(value.geoPointValue!.latitude ?? 0, value.geoPointValue!.longitude ?? 0);
    case 'arrayValue':
      return arrayValues(value).map((item) => decodeValue(item, ctx));
    case 'mapValue': {
      const fields = mapFields(value);
      if (isVectorFields(fields)) return FieldValue.vector(arrayValues(fields[VECTOR_VALUES_KEY]).map((item) => Number(item.doubleValue ?? item.integerValue)));
      return decodeFields(fields, ctx);
    }
  }
}

/** `projects/p/databases/d/documents/a/b` → `a/b`. */
function relativeDocumentPath(resourceName: string): string {
  const marker = '/documents/';
  const at = resourceName.indexOf(marker);
  if (at < 0) throw new Error(`not a document resource name: ${resourceName}`);
  return resourceName.slice(at + marker.length);
}

function isVectorFields(fields: RawFields): boolean {
  return fields[VECTOR_TYPE_KEY]?.stringValue === VECTOR_TYPE_VALUE && fields[VECTOR_VALUES_KEY]?.arrayValue !== undefined && fields[VECTOR_VALUES_KEY]?.arrayValue !== null;
}

export function encodeFields(data: Record<string, unknown>, databaseName: string, prefix: readonly string[] = []): RawFields {
  const fields: RawFields = {};
  for (const key of Object.keys(data)) fields[key] = encodeValue(data[key], databaseName, [...prefix, key]);
  return fields;
}

/** `path` names the field in error messages (segments, joined for display). */
export function encodeValue(value: unknown, databaseName: string, path: readonly string[]): RawValue {
  switch (typeof value) {
    case 'string':
      return { stringValue: value };
    case 'boolean':
      return { booleanValue: value };
    case 'number':
      return Number.isSafeInteger(value) && !Object.is(value, -0) ? { integerValue: String(value) } : { doubleValue: value };
    case 'bigint':
      if (value < INT64_MIN || value > INT64_MAX) throw new ValueEncodingError(display(path), `${value} is outside the int64 range`);
      return { integerValue: value.toString() };
    case 'undefined':
      throw new ValueEncodingError(display(path), 'undefined is not a Firestore value');
    case 'function':
    case 'symbol':
      throw new ValueEncodingError(display(path), `a ${typeof value} is not a Firestore value`);
  }
  if (value === null) return { nullValue: 'NULL_VALUE' };
  if (Array.isArray(value)) {
    return {
      arrayValue: {
        values: value.map((item, i) => {
          if (Array.isArray(item)) throw new ValueEncodingError(display(path), 'arrays cannot hold arrays directly');
          return encodeValue(item, databaseName, [...path, String(i)]);
        }),
      },
    };
  }
  const object = value as object;
  if (ArrayBuffer.isView(object)) return { bytesValue: Buffer.from(object.buffer, object.byteOffset, object.byteLength) };
  if (Object.prototype.toString.call(object) === '[object Date]') {
    const ms = (object as Date).getTime();
    if (Number.isNaN(ms)) throw new ValueEncodingError(display(path), 'an invalid Date is not a Firestore value');
    const seconds = Math.floor(ms / 1000);
    return { timestampValue: { seconds: String(seconds), nanos: (ms - seconds * 1000) * 1_000_000 } };
  }
  if (isPlainObject(object)) {
    return { mapValue: { fields: encodeFields(object as Record<string, unknown>, databaseName, path) } };
  }
  // By constructor name as well as instanceof: migration files loaded through jiti may bring
  // their own copy of the SDK.
  switch (object.constructor?.name) {
    case 'Timestamp': {
      const ts = object as Timestamp;
      return { timestampValue: { seconds: String(ts.seconds), nanos: ts.nanoseconds - (ts.nanoseconds % 1000) } };
    }
    case 'GeoPoint': {
      const point = object as GeoPoint;
      return { geoPointValue: { latitude: point.latitude, longitude: point.longitude } };
    }
    case 'DocumentReference':
      return { referenceValue: `${databaseName}/documents/${(object as DocumentReference).path}` };
    case 'VectorValue':
      return {
        mapValue: {
          fields: {
            [VECTOR_TYPE_KEY]: { stringValue: VECTOR_TYPE_VALUE },
            [VECTOR_VALUES_KEY]: { arrayValue: { values: (object as VectorValue).toArray().map((n) => ({ doubleValue: n })) } },
          },
        },
      };
  }
  const name = object.constructor?.name;
  throw new ValueEncodingError(display(path), `${name ? `a ${name} instance` : 'this object'} is not a Firestore value`);
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value) as object | null;
  return proto === null || Object.getPrototypeOf(proto) === null;
}

function display(path: readonly string[]): string {
  return path.length === 0 ? '(document)' : path.join('.');
}
