import { canonicalFields } from '../../functions/src/engine/wire/canonical';
import { WireClient } from '../../functions/src/engine/wire/client';
import type { RawDocument, RawFields, RawValue } from '../../functions/src/engine/wire/types';
import { emulatorHost } from './emulator';

/**
 * Seeding and reading documents through the raw v1 API, so tests can hold values the Node SDK
 * cannot write (a double 1.0, an int64 beyond 2^53, a nanosecond timestamp) and compare what
 * Firestore stores at the value level.
 */
export function testWire(projectId: string): WireClient {
  return new WireClient({ projectId, emulatorHost: emulatorHost() });
}

export async function seedRaw(wire: WireClient, documents: Record<string, RawFields>): Promise<void> {
  const entries = Object.entries(documents);
  for (let i = 0; i < entries.length; i += 400) {
    const writes = entries.slice(i, i + 400).map(([path, fields]) => ({ update: { name: wire.documentName(path), fields } }));
    await wire.commit(writes);
  }
}

export async function readRaw(wire: WireClient, paths: string[]): Promise<Map<string, RawDocument>> {
  const out = new Map<string, RawDocument>();
  for (let i = 0; i < paths.length; i += 400) {
    for (const document of await wire.batchGet(paths.slice(i, i + 400))) out.set(document.path, document);
  }
  return out;
}

export async function readRawFields(wire: WireClient, path: string): Promise<RawFields> {
  const [document] = await wire.batchGet([path]);
  if (!document.exists) throw new Error(`${path} does not exist`);
  return document.fields;
}

/** Typed, key-order-free text of a document: equal texts ⇔ equal at the Firestore value level. */
export function canonical(fields: RawFields): string {
  return canonicalFields(fields);
}

// Value builders.
export const int = (value: string | bigint | number): RawValue => ({ integerValue: String(value) });
export const dbl = (value: number): RawValue => ({ doubleValue: value });
export const str = (value: string): RawValue => ({ stringValue: value });
export const bool = (value: boolean): RawValue => ({ booleanValue: value });
export const nul = (): RawValue => ({ nullValue: 'NULL_VALUE' });
export const ts = (seconds: number, nanos: number): RawValue => ({ timestampValue: { seconds: String(seconds), nanos } });
export const bytes = (...octets: number[]): RawValue => ({ bytesValue: Buffer.from(octets) });
export const geo = (latitude: number, longitude: number): RawValue => ({ geoPointValue: { latitude, longitude } });
export const arr = (...values: RawValue[]): RawValue => ({ arrayValue: { values } });
export const map = (fields: RawFields): RawValue => ({ mapValue: { fields } });
export const vector = (...values: number[]): RawValue => map({ __type__: str('__vector__'), value: arr(...values.map(dbl)) });
export const ref = (wire: WireClient, path: string): RawValue => ({ referenceValue: wire.documentName(path) });

/**
 * Every value type, with the traps of DESIGN.md G4: doubles that look like integers, int64 at
 * and beyond the edges of JavaScript numbers, a field name with a dot, microsecond and
 * nanosecond timestamps, and nesting of maps and arrays.
 */
export function exoticFields(wire: WireClient): RawFields {
  return {
    doubleOne: dbl(1.0),
    doubleZero: dbl(0.0),
    doubleFraction: dbl(2.5),
    int64Big: int('9007199254740993'),
    int64Min: int('-9223372036854775808'),
    int64Max: int('9223372036854775807'),
    smallInt: int(42),
    'a.b': str('literal dotted name'),
    'with`tick': str('backtick in the name'),
    timestampMicros: ts(1700000000, 123456000),
    timestampNanos: ts(1700000001, 123456789),
    vector: vector(1, 2.5, -3),
    bytes: bytes(0, 1, 2, 254, 255),
    geo: geo(48.8583, 2.2945),
    reference: ref(wire, 'users/u1'),
    nullField: nul(),
    flag: bool(false),
    text: str('héllo ✓'),
    emptyMap: map({}),
    emptyArray: arr(),
    nested: map({
      inner: map({ doubleOne: dbl(1.0), deep: map({ int64Big: int('9007199254740993'), 'x.y': str('dotted inside') }) }),
      list: arr(int(1), dbl(1.0), str('s')),
    }),
    arrayOfMaps: arr(map({ id: str('m1'), score: dbl(1.0) }), map({ id: str('m2'), when: ts(1700000002, 1000) })),
  };
}

/** A document whose fields take `targetBytes` bytes or so (the 1 MiB limit counts names and values). */
export function bigFields(targetBytes: number): RawFields {
  return {
    doubleOne: dbl(1.0),
    int64Big: int('9007199254740993'),
    blob: str('x'.repeat(targetBytes - 200)),
  };
}

/** Nanosecond timestamps are stored truncated to microseconds (Firestore's precision). */
export function truncatedToMicros(value: RawValue): RawValue {
  const t = value.timestampValue!;
  return { timestampValue: { seconds: String(t.seconds), nanos: (t.nanos ?? 0) - ((t.nanos ?? 0) % 1000) } };
}
