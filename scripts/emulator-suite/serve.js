// `npm run serve` (after the build): the emulator suite on firebase.json's ports, offline, until Ctrl-C.
const {
  SUITE_PROJECT_ID,
  findSuiteEmulators,
  serveEmulatorSuite,
  suitePorts,
} = require('../../functions/lib/dev/emulator-suite');

async function main() {
  findSuiteEmulators();
  const port = Object.fromEntries(suitePorts().map(({ emulator, port }) => [emulator, port]));
  console.log(
    `Emulator suite for ${SUITE_PROJECT_ID} (offline); Ctrl-C stops every emulator.\n` +
      `  health:    http://127.0.0.1:${port.functions}/${SUITE_PROJECT_ID}/us-central1/api/migration/health\n` +
      `  dashboard: http://127.0.0.1:${port.functions}/${SUITE_PROJECT_ID}/us-central1/api/dashboard/\n` +
      `  the CLI:   FIRESTORE_EMULATOR_HOST=127.0.0.1:${port.firestore} npx firemigrate ...\n`,
  );
  return serveEmulatorSuite();
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(`npm run serve: ${error.message}`);
    process.exit(1);
  },
);
