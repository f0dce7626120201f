import { createHash } from 'node:crypto';
import { arrayValues, kindOf, mapFields, type RawFields, type RawValue } from './types';

/** A decimal integer as `BigInt(text).toString()` writes it (no sign on zero, no leading zeros). */
const CANONICAL_INTEGER = /^(?:0|-?[1-9]\d*)$/;

/**
 * A canonical text of raw values: typed (the integer 1 and the double 1 differ), maps with
 * sorted keys (Firestore does not keep key order through a write), -0 and NaN spelled out.
 * Two values are equal at the Firestore value level exactly when their canonical texts are.
 */
export function canonicalValue(value: RawValue): string {
  switch (kindOf(value)) {
    case 'nullValue':
      return 'null';
    case 'booleanValue':
      return value.booleanValue ? 'true' : 'false';
    case 'integerValue': {
      const integer = value.integerValue as string | number;
      // Read values carry int64 as decimal text already in canonical form: skip the BigInt round trip.
      return `i:${typeof integer === 'string' && CANONICAL_INTEGER.test(integer) ? integer : BigInt(integer).toString()}`;
    }
    case 'doubleValue': {
      const d = Number(value.doubleValue);
      return `d:${Object.is(d, -0) ? '-0' : String(d)}`;
    }
    case 'timestampValue':
      return `t:${BigInt(value.timestampValue!.seconds ?? 0).toString()}.${value.timestampValue!.nanos ?? 0}`;
    case 'stringValue':
      return `s:${JSON.stringify(value.stringValue)}`;
    case 'bytesValue':
      return `b:${Buffer.from(value.bytesValue!).toString('base64')}`;
    case 'referenceValue':
      return `r:${JSON.stringify(value.referenceValue)}`;
    case 'geoPointValue':
      return `g:${value.geoPointValue!.latitude ?? 0},${value.geoPointValue!.longitude ?? 0}`;
    case 'arrayValue':
      return `[${arrayValues(value).map(canonicalValue).join(',')}]`;
    case 'mapValue':
      return canonicalFields(mapFields(value));
  }
}

export function canonicalFields(fields: RawFields): string {
  const keys = Object.keys(fields).sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalValue(fields[key])}`).join(',')}}`;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}
