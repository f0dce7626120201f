/**
 * Entry of the bench's child processes (forked by main.ts): one contender run, one rollback of the
 * engine's run, or the app writer. One process per contender, so each peak RSS is that contender's alone.
 */
import { startAppWriter } from './app-writer';
import { runContender } from './contender';
import { runRollback } from './contender-rollback';
import type { ChildMessage, ParentMessage } from './protocol';

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => process.send!(message, (error: Error | null) => (error ? reject(error) : resolve())));
}

async function fail(error: unknown): Promise<never> {
  await send({ type: 'error', message: error instanceof Error ? (error.stack ?? error.message) : String(error) }).catch(() => undefined);
  process.exit(1);
}

if (!process.send) {
  process.stderr.write('bench/child.js is started by the bench (npm run bench), not by hand\n');
  process.exit(2);
}
// The parent is gone (Ctrl-C, a crash): nobody wants the result.
process.on('disconnect', () => process.exit(1));

process.once('message', (message: ParentMessage) => {
  if (message.type !== 'job') return void fail(new Error(`expected a job, got ${message.type}`));
  const { job } = message;
  if (job.kind === 'contender') {
    runContender(job)
      .then((result) => send({ type: 'result', result }))
      .then(() => process.exit(0), fail);
    return;
  }
  if (job.kind === 'rollback') {
    runRollback(job)
      .then((result) => send({ type: 'rollback-result', result }))
      .then(() => process.exit(0), fail);
    return;
  }
  let writer: ReturnType<typeof startAppWriter>;
  try {
    writer = startAppWriter(job);
  } catch (error) {
    return void fail(error);
  }
  process.once('message', (next: ParentMessage) => {
    if (next.type !== 'stop') return void fail(new Error(`expected stop, got ${next.type}`));
    writer
      .stop()
      .then((result) => send({ type: 'writer-result', result }))
      .then(() => process.exit(0), fail);
  });
  writer.ready.then(() => send({ type: 'ready' }), fail);
});
