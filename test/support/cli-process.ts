import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(__dirname, '..', '..');
/** The built CLI (`npm run build`). */
export const CLI = join(ROOT, 'functions', 'lib', 'cli', 'main.js');

/** The newest modification time (ms) of the TypeScript sources under `dir`. */
function newestSourceMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSourceMs(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * Builds the CLI when a source is newer than it, so a suite run alone tests the current code while
 * `npm test` (which builds first) pays for no second build. tsc emits even with type errors, so
 * its exit status is not the verdict: the CLI file is.
 */
export function ensureCliBuilt(): void {
  if (existsSync(CLI) && statSync(CLI).mtimeMs >= newestSourceMs(join(ROOT, 'functions', 'src'))) return;
  spawnSync('npm', ['run', 'build', '--silent'], { cwd: ROOT, stdio: 'ignore' });
  if (!existsSync(CLI)) throw new Error(`npm run build did not produce ${CLI}`);
}

export type JsonLine = Record<string, unknown> & { type?: string };

export interface CliProcess {
  child: ChildProcess;
  /** stdout's JSON lines (`--json` prints one object per line). */
  lines: JsonLine[];
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the first stdout JSON line matching `predicate`. */
  waitForLine(predicate: (line: JsonLine) => boolean): Promise<JsonLine>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts the built CLI against the test emulator; `running` collects the children so a suite can kill leftovers. */
export function spawnCli(args: string[], env: Record<string, string>, running: Set<ChildProcess>): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], {
    cwd: ROOT,
    env: { ...process.env, METADATA_SERVER_DETECTION: 'none', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  const lines: JsonLine[] = [];
  const waiters: Array<{ predicate: (line: JsonLine) => boolean; resolve: (line: JsonLine) => void }> = [];
  let stdout = '';
  let pending = '';
  let stderr = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    stdout += chunk.toString();
    pending += chunk.toString();
    for (let newline = pending.indexOf('\n'); newline >= 0; newline = pending.indexOf('\n')) {
      const text = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      if (!(text.startsWith('{') && text.endsWith('}'))) continue;
      const line = JSON.parse(text) as JsonLine;
      lines.push(line);
      for (const waiter of waiters.filter((w) => w.predicate(line))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(line);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) =>
    child.on('exit', (code, signal) => {
      running.delete(child);
      done({ code, signal });
    }),
  );
  return {
    child,
    lines,
    stdout: () => stdout,
    stderr: () => stderr,
    exit,
    waitForLine: (predicate) => {
      const found = lines.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolveLine, rejectLine) => {
        waiters.push({ predicate, resolve: resolveLine });
        void exit.then(({ code, signal }) => rejectLine(new Error(`CLI exited (code ${code}, signal ${signal}) before the expected line; stderr:\n${stderr}`)));
      });
    },
  };
}
