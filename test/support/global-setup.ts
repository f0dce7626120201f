import { EmulatorMissingError, FirestoreEmulator } from '../../functions/src/dev/firestore-emulator';

/**
 * One Firestore emulator for the whole integration run; each suite works in its own project id
 * (see `emulator.ts`), so suites running in parallel workers never see each other's documents.
 * Where the emulator is missing, every emulator suite is skipped as a group, said once, loudly
 * (or, with FIREMIGRATE_REQUIRE_EMULATORS=true as in CI, the run fails).
 */
export default async function globalSetup(): Promise<void> {
  process.env.METADATA_SERVER_DETECTION = 'none';
  if (process.env.FIRESTORE_EMULATOR_HOST) return; // an emulator the caller already runs
  const emulator = new FirestoreEmulator();
  try {
    process.env.FIRESTORE_EMULATOR_HOST = await emulator.start();
  } catch (error) {
    if (!(error instanceof EmulatorMissingError)) throw error;
    // CI sets this: there a missing emulator is a broken machine, not a reason to pass.
    if (process.env.FIREMIGRATE_REQUIRE_EMULATORS === 'true') throw error;
    process.env.FIREMIGRATE_EMULATOR_MISSING = error.message;
    console.warn(`\n!!! SKIPPING EVERY FIRESTORE EMULATOR SUITE: ${error.message}\n`);
    return;
  }
  (globalThis as { __firestoreEmulator?: FirestoreEmulator }).__firestoreEmulator = emulator;
}
