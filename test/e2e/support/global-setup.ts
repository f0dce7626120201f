/** End-to-end suites run only inside the emulator suite `npm run test:e2e` starts (`firebase emulators:exec`). */
const SUITE_VARIABLES = [
  'GCLOUD_PROJECT',
  'FIREBASE_EMULATOR_HUB',
  'FIREBASE_AUTH_EMULATOR_HOST',
  'FIRESTORE_EMULATOR_HOST',
  'PUBSUB_EMULATOR_HOST',
  'CLOUD_TASKS_EMULATOR_HOST',
];

export default async function globalSetup(): Promise<void> {
  const missing = SUITE_VARIABLES.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new Error(
      `the e2e project needs the Firebase emulator suite (${missing.join(', ')} not set): ` +
        'run it with `npm run test:e2e`, which wraps jest in `firebase emulators:exec`',
    );
  }
  process.env.METADATA_SERVER_DETECTION = 'none';
}
