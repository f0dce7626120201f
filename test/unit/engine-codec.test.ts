import { DocumentReference, FieldValue, Firestore, GeoPoint, Timestamp, VectorValue } from '@google-cloud/firestore';
import { canonicalFields, canonicalValue } from '../../functions/src/engine/wire/canonical';
import { decodeFields, decodeValue, encodeFields, encodeValue, ValueEncodingError } from '../../functions/src/engine/wire/codec';
import { escapeSegment, formatFieldPath, parseFieldPath } from '../../functions/src/engine/wire/field-path';
import type { RawFields, RawValue } from '../../functions/src/engine/wire/types';
import { decodeFieldsFromBytes, encodeFieldsToBytes } from '../../functions/src/engine/wire/value-bytes';

const DATABASE = 'projects/demo-codec/databases/(default)';
// Only used to build DocumentReference values; it never connects.
const db = new Firestore({ projectId: 'demo-codec' });
const ctx = { db, databaseName: DATABASE };
const decode = (value: RawValue) => decodeValue(value, ctx);
const encode = (value: unknown) => encodeValue(value, DATABASE, ['f']);

describe('wire codec: raw Value → what up() sees', () => {
  it('decodes scalars as the Node SDK does', () => {
    expect(decode({ nullValue: 'NULL_VALUE' })).toBeNull();
    expect(decode({ booleanValue: false })).toBe(false);
    expect(decode({ stringValue: 'héllo' })).toBe('héllo');
    expect(decode({ doubleValue: 1 })).toBe(1);
    expect(decode({ doubleValue: 2.5 })).toBe(2.5);
    expect(decode({ integerValue: '42' })).toBe(42);
    expect(decode({ integerValue: '-9007199254740991' })).toBe(-9007199254740991);
  });

  it('decodes int64 beyond ±(2^53 − 1) as bigint, keeping every digit', () => {
    expect(decode({ integerValue: '9007199254740993' })).toBe(9007199254740993n);
    expect(decode({ integerValue: '-9223372036854775808' })).toBe(-9223372036854775808n);
  });

  it('decodes timestamps, geo points, bytes, references and vectors into SDK types', () => {
    const ts = decode({ timestampValue: { seconds: '1700000000', nanos: 123456000 } }) as Timestamp;
    expect(ts).toBeInstanceOf(Timestamp);
    expect([ts.seconds, ts.nanoseconds]).toEqual([1700000000, 123456000]);
    const point = decode({ geoPointValue: { latitude: 1.5, longitude: -2 } }) as GeoPoint;
    expect(point).toBeInstanceOf(GeoPoint);
    expect([point.latitude, point.longitude]).toEqual([1.5, -2]);
    const bytes = decode({ bytesValue: Buffer.from([0, 255]) });
    expect(Buffer.isBuffer(bytes)).toBe(true);
    expect([...(bytes as Buffer)]).toEqual([0, 255]);
    const ref = decode({ referenceValue: `${DATABASE}/documents/users/u1` }) as DocumentReference;
    expect(ref).toBeInstanceOf(DocumentReference);
    expect(ref.path).toBe('users/u1');
    const vector = decode({ mapValue: { fields: { __type__: { stringValue: '__vector__' }, value: { arrayValue: { values: [{ doubleValue: 1 }, { doubleValue: 2.5 }] } } } } });
    expect(vector).toBeInstanceOf(VectorValue);
    expect((vector as VectorValue).toArray()).toEqual([1, 2.5]);
  });

  it('decodes arrays and maps, including empty ones and dotted keys', () => {
    const fields: RawFields = {
      list: { arrayValue: { values: [{ integerValue: '1' }, { mapValue: { fields: { 'a.b': { stringValue: 'x' } } } }] } },
      empty: { arrayValue: {} },
      emptyMap: { mapValue: {} },
    };
    expect(decodeFields(fields, ctx)).toEqual({ list: [1, { 'a.b': 'x' }], empty: [], emptyMap: {} });
  });
});

describe('wire codec: JavaScript → raw Value', () => {
  it('writes safe integers as integers and other numbers (also -0) as doubles', () => {
    expect(encode(1)).toEqual({ integerValue: '1' });
    expect(encode(-42)).toEqual({ integerValue: '-42' });
    expect(encode(2.5)).toEqual({ doubleValue: 2.5 });
    expect(encode(2 ** 53)).toEqual({ doubleValue: 2 ** 53 });
    expect(encode(-0)).toEqual({ doubleValue: -0 });
    expect(encode(Number.NaN)).toEqual({ doubleValue: Number.NaN });
  });

  it('writes bigint as int64, refusing values outside its range', () => {
    expect(encode(9007199254740993n)).toEqual({ integerValue: '9007199254740993' });
    expect(encode(-(2n ** 63n))).toEqual({ integerValue: '-9223372036854775808' });
    expect(() => encode(2n ** 63n)).toThrow(ValueEncodingError);
  });

  it('writes timestamps to the microsecond (Firestore precision), from Timestamp and Date', () => {
    expect(encode(new Timestamp(1700000000, 123456789))).toEqual({ timestampValue: { seconds: '1700000000', nanos: 123456000 } });
    expect(encode(new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 5)))).toEqual({ timestampValue: { seconds: String(Date.UTC(2024, 0, 1) / 1000), nanos: 5_000_000 } });
    expect(encode(new Date(-1))).toEqual({ timestampValue: { seconds: '-1', nanos: 999_000_000 } });
  });

  it('writes strings, booleans, null, bytes, geo points, references and vectors', () => {
    expect(encode('s')).toEqual({ stringValue: 's' });
    expect(encode(true)).toEqual({ booleanValue: true });
    expect(encode(null)).toEqual({ nullValue: 'NULL_VALUE' });
    expect(encode(Buffer.from([1, 2]))).toEqual({ bytesValue: Buffer.from([1, 2]) });
    expect(encode(new Uint8Array([3]))).toEqual({ bytesValue: Buffer.from([3]) });
    expect(encode(new GeoPoint(1, 2))).toEqual({ geoPointValue: { latitude: 1, longitude: 2 } });
    expect(encode(db.doc('users/u1'))).toEqual({ referenceValue: `${DATABASE}/documents/users/u1` });
    expect(encode(FieldValue.vector([1, 2]))).toEqual({
      mapValue: { fields: { __type__: { stringValue: '__vector__' }, value: { arrayValue: { values: [{ doubleValue: 1 }, { doubleValue: 2 }] } } } },
    });
  });

  it('writes arrays and maps (keys literal), and refuses what Firestore cannot store, naming the field', () => {
    expect(encodeFields({ 'a.b': { c: [1, 'x'] } }, DATABASE)).toEqual({
      'a.b': { mapValue: { fields: { c: { arrayValue: { values: [{ integerValue: '1' }, { stringValue: 'x' }] } } } } },
    });
    expect(() => encodeFields({ outer: { inner: undefined } }, DATABASE)).toThrow('cannot write field outer.inner: undefined is not a Firestore value');
    expect(() => encode([[1]])).toThrow('arrays cannot hold arrays directly');
    expect(() => encode(FieldValue.serverTimestamp())).toThrow(ValueEncodingError);
    expect(() => encode(new (class Money {})())).toThrow('a Money instance is not a Firestore value');
  });

  it('round-trips every decoded type back to the same raw value (except doubles that are whole numbers: JavaScript has one number type)', () => {
    const raw: RawFields = {
      i: { integerValue: '7' },
      big: { integerValue: '9007199254740993' },
      d: { doubleValue: 2.5 },
      t: { timestampValue: { seconds: '5', nanos: 1000 } },
      s: { stringValue: 'x' },
      b: { bytesValue: Buffer.from([9]) },
      r: { referenceValue: `${DATABASE}/documents/a/b` },
      g: { geoPointValue: { latitude: 3, longitude: 4 } },
      n: { nullValue: 'NULL_VALUE' },
      bool: { booleanValue: true },
      a: { arrayValue: { values: [{ mapValue: { fields: { k: { stringValue: 'v' } } } }] } },
      v: { mapValue: { fields: { __type__: { stringValue: '__vector__' }, value: { arrayValue: { values: [{ doubleValue: 0.5 }] } } } } },
    };
    expect(canonicalFields(encodeFields(decodeFields(raw, ctx), DATABASE))).toBe(canonicalFields(raw));
    // The trap before-images avoid by never taking this path:
    expect(encodeFields(decodeFields({ d: { doubleValue: 1 } }, ctx), DATABASE)).toEqual({ d: { integerValue: '1' } });
  });
});

describe('field paths', () => {
  it('escapes segments that are not identifiers with backticks', () => {
    expect(escapeSegment('plain_1')).toBe('plain_1');
    expect(escapeSegment('a.b')).toBe('`a.b`');
    expect(escapeSegment('1st')).toBe('`1st`');
    expect(escapeSegment('tick`and\\slash')).toBe('`tick\\`and\\\\slash`');
    expect(formatFieldPath(['a', 'b.c', 'd'])).toBe('a.`b.c`.d');
    expect(() => formatFieldPath([])).toThrow();
  });

  it('parses what it formats', () => {
    for (const path of [['a'], ['a.b'], ['x', 'y', 'z'], ['tick`', 'back\\slash', 'a.b.c'], ['é', ' ']]) {
      expect(parseFieldPath(formatFieldPath(path))).toEqual(path);
    }
    expect(parseFieldPath('a.`b.c`.d')).toEqual(['a', 'b.c', 'd']);
  });

  it('refuses malformed paths, naming them', () => {
    expect(() => parseFieldPath('a.')).toThrow('malformed field path "a."');
    expect(() => parseFieldPath('`open')).toThrow('unterminated backtick');
    expect(() => parseFieldPath('a b')).toThrow('must be quoted');
    expect(() => parseFieldPath('``')).toThrow('empty segment');
  });
});

describe('canonical values', () => {
  const rawValuesEqual = (a: RawValue, b: RawValue) => canonicalValue(a) === canonicalValue(b);
  it('tells integers from doubles, -0 from 0, and ignores map key order', () => {
    expect(rawValuesEqual({ integerValue: '1' }, { doubleValue: 1 })).toBe(false);
    expect(rawValuesEqual({ integerValue: 1 }, { integerValue: '1' })).toBe(true);
    expect(rawValuesEqual({ doubleValue: -0 }, { doubleValue: 0 })).toBe(false);
    expect(canonicalFields({ x: { integerValue: '1' }, y: { stringValue: 'a' } })).toBe(canonicalFields({ y: { stringValue: 'a' }, x: { integerValue: '1' } }));
    expect(canonicalValue({ arrayValue: { values: [{ integerValue: '1' }, { integerValue: '2' }] } })).not.toBe(
      canonicalValue({ arrayValue: { values: [{ integerValue: '2' }, { integerValue: '1' }] } }),
    );
    expect(rawValuesEqual({ timestampValue: { seconds: 5, nanos: 1000 } }, { timestampValue: { seconds: '5', nanos: 1000 } })).toBe(true);
  });
});

describe('value bytes', () => {
  it('stores raw values as protobuf bytes and reads them back exactly', () => {
    const fields: RawFields = {
      d: { doubleValue: 1 },
      z: { doubleValue: -0 },
      big: { integerValue: '9007199254740993' },
      min: { integerValue: '-9223372036854775808' },
      t: { timestampValue: { seconds: '1700000000', nanos: 123456000 } },
      'a.b': { mapValue: { fields: { empty: { mapValue: { fields: {} } }, list: { arrayValue: { values: [] } } } } },
      bytes: { bytesValue: Buffer.from([0, 1, 255]) },
      n: { nullValue: 'NULL_VALUE' },
      f: { booleanValue: false },
    };
    const back = decodeFieldsFromBytes(encodeFieldsToBytes(fields));
    expect(canonicalFields(back)).toBe(canonicalFields(fields));
    expect(back.d).toMatchObject({ doubleValue: 1, valueType: 'doubleValue' });
    expect(Object.is(back.z.doubleValue, -0)).toBe(true);
    expect(back.big).toMatchObject({ integerValue: '9007199254740993' });
    expect(back.f).toMatchObject({ booleanValue: false, valueType: 'booleanValue' });
    expect(decodeFieldsFromBytes(encodeFieldsToBytes({}))).toEqual({});
  });
});

afterAll(() => db.terminate());
