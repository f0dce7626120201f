import type { FirestoreEmulator } from '../../functions/src/dev/firestore-emulator';

export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __firestoreEmulator?: FirestoreEmulator }).__firestoreEmulator?.stop();
}
