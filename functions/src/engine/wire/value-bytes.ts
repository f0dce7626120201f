import * as protobuf from 'protobufjs';
import type { RawFields } from './types';

/**
 * Raw values ↔ their protobuf wire bytes (google.firestore.v1.MapValue), the form before-images
 * are stored in: exact by construction, one bytes field, no nesting-depth or index cost.
 * The descriptors are the ones the Firestore SDK ships, so they match the server's.
 */
const descriptors = require('@google-cloud/firestore/build/protos/v1.json') as protobuf.INamespace;
const MapValue = protobuf.Root.fromJSON(descriptors).lookupType('google.firestore.v1.MapValue');

// The same conversion the v1 client applies to responses, so decoded bytes look like read values.
const DECODE_OPTIONS: protobuf.IConversionOptions = { longs: String, enums: String, oneofs: true, arrays: true, objects: true };

export function encodeFieldsToBytes(fields: RawFields): Uint8Array {
  return MapValue.encode(MapValue.fromObject({ fields })).finish();
}

export function decodeFieldsFromBytes(bytes: Uint8Array): RawFields {
  const decoded = MapValue.toObject(MapValue.decode(bytes), DECODE_OPTIONS) as { fields?: RawFields };
  return decoded.fields ?? {};
}
