/**
 * Graceful stop on SIGINT/SIGTERM. The first signal asks the run to stop: no new batches, the
 * commits in flight settle, the run is marked paused with its state preserved and its lease
 * released. A second signal means "now": the process exits at once — nothing is lost either way,
 * since every landed commit carries its batch marker, but the run then stays `running` until its
 * lease expires, and only then can it be resumed.
 */
import { constants } from 'node:os';

export const SHUTDOWN_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM'];

export interface ShutdownHandlers {
  /** First signal: stop gracefully. */
  onStop(signal: NodeJS.Signals): void;
  /** Second signal: exit immediately. */
  onForce(signal: NodeJS.Signals): void;
}

/** Installs the handlers; returns a function that removes them (call it when the run is over). */
export function handleShutdownSignals(handlers: ShutdownHandlers, signals: readonly NodeJS.Signals[] = SHUTDOWN_SIGNALS): () => void {
  let received = 0;
  const listener = (signal: NodeJS.Signals) => {
    received++;
    if (received === 1) handlers.onStop(signal);
    else handlers.onForce(signal);
  };
  for (const signal of signals) process.on(signal, listener);
  return () => {
    for (const signal of signals) process.off(signal, listener);
  };
}

/** The exit code of a process ended by `signal` (shell convention 128 + signal number). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/**
 * The command that continues a paused, failed or crashed run. `extraArgs` repeat the global flags
 * it needs (project, migration files); they go last, where a variadic flag cannot swallow the
 * command's own arguments.
 */
export function resumeCommand(migrationId: string, runId: string, extraArgs: readonly string[] = []): string {
  return ['firemigrate', 'run', migrationId, '--execute', '--resume', runId, ...extraArgs].map(shellWord).join(' ');
}

/** Quoted for a POSIX shell when it holds anything beyond plain word characters. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
