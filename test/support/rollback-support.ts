import { FieldPath, type CollectionReference, type Firestore } from '@google-cloud/firestore';
import type { WireClient } from '../../functions/src/engine/wire/client';
import type { RawFields } from '../../functions/src/engine/wire/types';
import { canonical, readRaw } from './raw-seed';

/** Raw fields of every document of the collections, by path. */
export async function rawCollections(db: Firestore, wire: WireClient, collections: string[]): Promise<Map<string, RawFields>> {
  const out = new Map<string, RawFields>();
  for (const collection of collections) {
    const keys = (await db.collection(collection).select().orderBy(FieldPath.documentId()).get()).docs.map((doc) => doc.ref.path);
    for (const [path, document] of await readRaw(wire, keys)) {
      if (document.exists) out.set(path, document.fields);
    }
  }
  return out;
}

/** Every document of the project (control data included) with its update time: any write shows. */
export async function dumpDatabase(db: Firestore, wire: WireClient): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const walk = async (collections: CollectionReference[]): Promise<void> => {
    for (const collection of collections) {
      const refs = await collection.listDocuments();
      const documents = await readRaw(wire, refs.map((ref) => ref.path));
      for (const ref of refs) {
        const document = documents.get(ref.path)!;
        out.set(ref.path, document.exists ? `${document.updateTime.seconds}.${document.updateTime.nanos}|${canonical(document.fields)}` : '(no document)');
      }
      for (let i = 0; i < refs.length; i += 50) {
        const nested = await Promise.all(refs.slice(i, i + 50).map((ref) => ref.listCollections()));
        await walk(nested.flat());
      }
    }
  };
  await walk(await db.listCollections());
  return out;
}
