import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';

/** Where Debian's `google-cloud-cli-firestore-emulator` package puts the emulator. */
export const DEFAULT_FIRESTORE_EMULATOR_JAR =
  '/usr/lib/google-cloud-sdk/platform/cloud-firestore-emulator/cloud-firestore-emulator.jar';

export class EmulatorMissingError extends Error {
  constructor(readonly jarPath: string) {
    super(
      `Google's Firestore emulator was not found at ${jarPath}. Install the Debian package ` +
        `google-cloud-cli-firestore-emulator (and Java 17+), or point FIRESTORE_EMULATOR_JAR at ` +
        `cloud-firestore-emulator.jar.`,
    );
    this.name = 'EmulatorMissingError';
  }
}

export function findFirestoreEmulatorJar(env: NodeJS.ProcessEnv = process.env): string {
  const jar = env.FIRESTORE_EMULATOR_JAR || DEFAULT_FIRESTORE_EMULATOR_JAR;
  if (!existsSync(jar)) throw new EmulatorMissingError(jar);
  return jar;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/**
 * Google's Firestore emulator as a child process this program owns. Java runs under a small
 * shell watchdog in its own process group: stopping kills the group, and if this process dies
 * without stopping it (kill -9, a crashed jest worker) the watchdog notices within a second and
 * takes java down with it, so no orphaned emulator survives.
 */
export class FirestoreEmulator {
  private child?: ChildProcess;
  private exitHandler?: () => void;
  host = '';

  constructor(private readonly options: { port?: number; jar?: string } = {}) {}

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(): Promise<string> {
    const jar = this.options.jar ?? findFirestoreEmulatorJar();
    const port = this.options.port ?? (await freePort());
    this.host = `127.0.0.1:${port}`;
    const java =
      `java -cp '${jar}' com.google.cloud.datastore.emulator.firestore.CloudFirestore start ` +
      `--host=127.0.0.1 --port=${port}`;
    const watchdog =
      `${java} & jpid=$!; trap 'kill $jpid 2>/dev/null; exit 0' TERM INT; ` +
      `while kill -0 ${process.pid} 2>/dev/null && kill -0 $jpid 2>/dev/null; do sleep 1; done; ` +
      `kill $jpid 2>/dev/null; wait $jpid 2>/dev/null`;
    const child = spawn('bash', ['-c', watchdog], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    let output = '';
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-4000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    this.exitHandler = () => this.killGroup('SIGKILL');
    process.once('exit', this.exitHandler);
    try {
      await this.waitUntilReady(60_000, () => child.exitCode !== null);
    } catch (error) {
      await this.stop();
      throw new Error(`${(error as Error).message}\nemulator output:\n${output}`);
    }
    return this.host;
  }

  private async waitUntilReady(timeoutMs: number, exited: () => boolean): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited()) throw new Error('the Firestore emulator exited before it was ready');
      try {
        const response = await fetch(`http://${this.host}/`);
        if (response.ok && (await response.text()).trim() === 'Ok') return;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    throw new Error(`the Firestore emulator did not answer on ${this.host} within ${timeoutMs} ms`);
  }

  /** Deletes every document of one project (each test suite uses its own project id). */
  reset(projectId: string): Promise<void> {
    return resetEmulatorProject(this.host, projectId);
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    if (this.exitHandler) process.removeListener('exit', this.exitHandler);
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('exit', () => resolve());
    });
    this.killGroup('SIGTERM');
    const timer = setTimeout(() => this.killGroup('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
    // java may outlive the shell by a moment; make sure the whole group is gone.
    this.killGroup('SIGKILL');
    this.child = undefined;
  }

  private killGroup(signal: NodeJS.Signals): void {
    const pid = this.child?.pid;
    if (!pid) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // already gone
    }
  }
}

/** Deletes every document of one project on the emulator at `host`. */
export async function resetEmulatorProject(host: string, projectId: string): Promise<void> {
  const url = `http://${host}/emulator/v1/projects/${projectId}/databases/(default)/documents`;
  const response = await fetch(url, { method: 'DELETE' });
  if (!response.ok) throw new Error(`resetting the emulator failed: HTTP ${response.status}`);
}
