// `npm run test:e2e` (after the build): jest's e2e project inside `firebase emulators:exec`.
// Arguments are passed to jest (e.g. `npm run test:e2e -- -t pubsub`). Where Java or Google's
// emulators are missing, the end-to-end suite is skipped as a whole, said once, loudly — unless
// FIREMIGRATE_REQUIRE_EMULATORS=true (CI), where that fails the run.
const {
  EmulatorSuiteMissingError,
  runWithEmulatorSuite,
  shellQuote,
} = require('../../functions/lib/dev/emulator-suite');

const jest = require.resolve('jest/bin/jest');
// --runInBand: the e2e files share one emulator suite (its Firestore, queues and topics), so they run one at a time.
const sequencer = require.resolve('../../test/e2e/support/sequencer.js');
// The sequencer orders the files so one file's trigger backlog does not delay the next (see there).
const command = [process.execPath, jest, '--selectProjects', 'e2e', '--runInBand', '--testSequencer', sequencer, ...process.argv.slice(2)].map(shellQuote).join(' ');
const started = Date.now();
runWithEmulatorSuite(command).then(
  (code) => {
    console.log(`test:e2e: emulator suite and tests took ${((Date.now() - started) / 1000).toFixed(1)} s`);
    process.exit(code);
  },
  (error) => {
    if (error instanceof EmulatorSuiteMissingError && process.env.FIREMIGRATE_REQUIRE_EMULATORS !== 'true') {
      console.warn(`\n!!! SKIPPING THE END-TO-END SUITE: ${error.message}\n`);
      process.exit(0);
    }
    console.error(`test:e2e: ${error.message}`);
    process.exit(1);
  },
);
