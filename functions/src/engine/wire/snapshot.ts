import type { DocumentSnapshot } from '@google-cloud/firestore';
import type { RawDocument, RawFields } from './types';

/**
 * The raw document behind a Node SDK snapshot read over gRPC (a query stream, `getAll`): the SDK
 * keeps the protobuf fields it received and decodes them only in `data()`, so a runner that
 * streams whole documents can hand them to the batch core without a second read and without
 * losing value types. Relies on the SDK's `_fieldsProto` (stable across @google-cloud/firestore
 * 4–7); fails loudly if a future version drops it.
 */
export function rawDocumentFromSnapshot(snapshot: DocumentSnapshot): RawDocument {
  const path = snapshot.ref.path;
  if (!snapshot.exists) return { path, exists: false };
  const fields = (snapshot as unknown as { _fieldsProto?: RawFields })._fieldsProto;
  const { updateTime, createTime } = snapshot;
  if (!fields || !updateTime || !createTime) {
    throw new Error(`the snapshot of ${path} carries no raw fields or times (this @google-cloud/firestore version keeps them elsewhere): read it with WireClient.batchGet instead`);
  }
  return {
    path,
    exists: true,
    fields,
    updateTime: { seconds: String(updateTime.seconds), nanos: updateTime.nanoseconds },
    createTime: { seconds: String(createTime.seconds), nanos: createTime.nanoseconds },
  };
}
