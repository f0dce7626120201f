// The order of the end-to-end files, which share one emulator suite. Every document a file writes
// in a dual-read collection queues a sync-trigger event, and the Functions emulator works through
// them at tens per second: a file that migrates and restores thousands of trades leaves minutes of
// backlog behind it, ahead of the next file's own trigger and Pub/Sub events. So the file that
// waits for one sync-trigger event runs first and the heaviest producers run last; files not
// listed run in between, by name.
const Sequencer = require('@jest/test-sequencer').default;
const { basename } = require('node:path');

const FIRST = ['smoke.test.ts', 'dual-read.test.ts'];
const LAST = ['dashboard.test.ts', 'auto-rollback.test.ts'];

function rank(path) {
  const name = basename(path);
  if (FIRST.includes(name)) return FIRST.indexOf(name) - FIRST.length;
  if (LAST.includes(name)) return 1 + LAST.indexOf(name);
  return 0;
}

class E2eSequencer extends Sequencer {
  sort(tests) {
    return [...tests].sort((a, b) => rank(a.path) - rank(b.path) || basename(a.path).localeCompare(basename(b.path)));
  }
}

module.exports = E2eSequencer;
