import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { constants } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { DEFAULT_FIRESTORE_EMULATOR_JAR } from './firestore-emulator';

/**
 * The Firebase emulator suite (firebase-tools 14.27.0) run offline from this machine's own files:
 * Google's Firestore and Pub/Sub emulators from the gcloud Debian packages instead of downloads,
 * no update check, no message-of-the-day fetch, no usage reporting, no npm registry lookups.
 */

export const SUITE_PROJECT_ID = 'demo-firemigrate';
export const SUITE_EMULATORS = ['auth', 'firestore', 'functions', 'pubsub', 'tasks'] as const;
export const DEFAULT_PUBSUB_EMULATOR_SCRIPT =
  '/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator';
const FIRESTORE_MAIN_CLASS = 'com.google.cloud.datastore.emulator.firestore.CloudFirestore';

/** The repository root (firebase.json, package.json): the same from functions/src/dev and functions/lib/dev. */
export const PROJECT_DIR = resolve(__dirname, '..', '..', '..');

export class EmulatorSuiteMissingError extends Error {
  constructor(readonly missing: string[]) {
    super(`the Firebase emulator suite cannot run on this machine: ${missing.join('; ')}`);
    this.name = 'EmulatorSuiteMissingError';
  }
}

export interface SuiteEmulators {
  firestoreJar: string;
  pubsubScript: string;
}

/** Java and Google's two emulators, or an error naming every missing piece and how to provide it. */
export function findSuiteEmulators(env: NodeJS.ProcessEnv = process.env): SuiteEmulators {
  const firestoreJar = env.FIRESTORE_EMULATOR_JAR || DEFAULT_FIRESTORE_EMULATOR_JAR;
  const pubsubScript = env.PUBSUB_EMULATOR_SCRIPT || DEFAULT_PUBSUB_EMULATOR_SCRIPT;
  const missing: string[] = [];
  if (spawnSync('java', ['-version'], { env, stdio: 'ignore' }).error) {
    missing.push('java is not on PATH (Java 17 or later is needed)');
  }
  if (!existsSync(firestoreJar)) {
    missing.push(
      `Google's Firestore emulator is not at ${firestoreJar} (install the Debian package ` +
        `google-cloud-cli-firestore-emulator, or point FIRESTORE_EMULATOR_JAR at cloud-firestore-emulator.jar)`,
    );
  }
  if (!existsSync(pubsubScript)) {
    missing.push(
      `Google's Pub/Sub emulator is not at ${pubsubScript} (install the Debian package ` +
        `google-cloud-cli-pubsub-emulator, or point PUBSUB_EMULATOR_SCRIPT at its bin/cloud-pubsub-emulator)`,
    );
  }
  if (missing.length > 0) throw new EmulatorSuiteMissingError(missing);
  return { firestoreJar, pubsubScript };
}

/**
 * The environment firebase-tools needs to run the suite offline. Writes, into a cache folder
 * (FIREMIGRATE_EMULATOR_CACHE, default node_modules/.cache/firemigrate-emulator-suite):
 * - a launcher jar for the Firestore emulator: firebase-tools runs FIRESTORE_EMULATOR_BINARY_PATH
 *   with `java -jar` and gcloud's jar has no Main-Class, so a one-entry jar names the main class
 *   and puts gcloud's jar on its Class-Path;
 * - a launcher script for the Pub/Sub emulator: firebase-tools chmods PUBSUB_EMULATOR_BINARY_PATH
 *   to 0755, which fails on a system file the user does not own;
 * - a private firebase-tools configstore (XDG_CONFIG_HOME): no login, usage reporting off, and a
 *   message of the day marked as just fetched, so the CLI makes no request for it.
 */
export function emulatorSuiteEnv(base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const { firestoreJar, pubsubScript } = findSuiteEmulators(base);
  const cache =
    base.FIREMIGRATE_EMULATOR_CACHE || join(PROJECT_DIR, 'node_modules', '.cache', 'firemigrate-emulator-suite');
  const configHome = join(cache, 'config');
  mkdirSync(join(configHome, 'configstore'), { recursive: true });

  const launcherJar = join(cache, 'cloud-firestore-emulator-launcher.jar');
  writeIfChanged(launcherJar, firestoreLauncherJar(firestoreJar), 0o644);
  const pubsubLauncher = join(cache, 'cloud-pubsub-emulator');
  writeIfChanged(pubsubLauncher, Buffer.from(`#!/bin/sh\nexec ${shellQuote(pubsubScript)} "$@"\n`), 0o755);
  writeIfChanged(
    join(configHome, 'configstore', 'firebase-tools.json'),
    Buffer.from(JSON.stringify({ motd: { fetched: Date.now() } })),
    0o600,
  );

  return {
    ...base,
    FIRESTORE_EMULATOR_BINARY_PATH: launcherJar,
    PUBSUB_EMULATOR_BINARY_PATH: pubsubLauncher,
    XDG_CONFIG_HOME: configHome,
    NO_UPDATE_NOTIFIER: '1',
    // The Functions emulator runs `npm show firebase-functions` to suggest upgrades: without a network
    // that blocks startup for 10 s; offline, npm answers from its cache at once.
    npm_config_offline: 'true',
    METADATA_SERVER_DETECTION: 'none',
  };
}

/** A jar holding only a manifest: `java -jar` on it runs gcloud's Firestore emulator. */
export function firestoreLauncherJar(firestoreJar: string): Buffer {
  const manifest =
    [
      manifestHeader('Manifest-Version', '1.0'),
      manifestHeader('Main-Class', FIRESTORE_MAIN_CLASS),
      manifestHeader('Class-Path', pathToFileURL(firestoreJar).href),
    ].join('\n') + '\n\n';
  return storedZip('META-INF/MANIFEST.MF', Buffer.from(manifest, 'ascii'));
}

/** Manifest lines are at most 72 bytes; longer values continue on lines starting with one space. */
function manifestHeader(name: string, value: string): string {
  const line = `${name}: ${value}`;
  const parts = [line.slice(0, 72)];
  for (let start = 72; start < line.length; start += 71) parts.push(` ${line.slice(start, start + 71)}`);
  return parts.join('\n');
}

/** A zip archive of one uncompressed entry, with a fixed timestamp so the same input gives the same bytes. */
function storedZip(name: string, data: Buffer): Buffer {
  const fileName = Buffer.from(name, 'ascii');
  const crc = crc32(data);
  const dosDate1980Jan1 = 0x21;
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(10, 4); // version needed: 1.0, stored entry
  local.writeUInt16LE(dosDate1980Jan1, 12);
  local.writeUInt32LE(crc, 14);
  local.writeUInt32LE(data.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(fileName.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(20, 4); // made by: zip 2.0
  central.writeUInt16LE(10, 6);
  central.writeUInt16LE(dosDate1980Jan1, 14);
  central.writeUInt32LE(crc, 16);
  central.writeUInt32LE(data.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(fileName.length, 28);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + fileName.length, 12);
  end.writeUInt32LE(local.length + fileName.length + data.length, 16);
  return Buffer.concat([local, fileName, data, central, fileName, end]);
}

const CRC32_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let bit = 0; bit < 8; bit++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(data: Buffer): number {
  let crc = 0xffffffff;
  for (const byte of data) crc = CRC32_TABLE[(crc ^ byte) & 0xff] ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** Replaces the file through a rename, so a suite starting at the same time never reads half a file. */
function writeIfChanged(path: string, content: Buffer, mode: number): void {
  if (existsSync(path) && readFileSync(path).equals(content)) return;
  const temporary = `${path}.${process.pid}.tmp`;
  writeFileSync(temporary, content, { mode });
  renameSync(temporary, path);
}

export function shellQuote(word: string): string {
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

export interface SuiteRunOptions {
  /** The folder holding firebase.json; default: this repository. */
  projectDir?: string;
  env?: NodeJS.ProcessEnv;
}

const SUITE_FLAGS = ['--only', SUITE_EMULATORS.join(','), '--project', SUITE_PROJECT_ID, '--non-interactive'];

/**
 * `firebase emulators:exec`: starts the suite, runs `command` in a shell with the emulator hosts
 * in its environment (FIRESTORE_EMULATOR_HOST, FIREBASE_AUTH_EMULATOR_HOST, PUBSUB_EMULATOR_HOST,
 * CLOUD_TASKS_EMULATOR_HOST, FIREBASE_EMULATOR_HUB, GCLOUD_PROJECT), stops the suite.
 * Resolves with the command's exit code.
 */
export async function runWithEmulatorSuite(command: string, options: SuiteRunOptions = {}): Promise<number> {
  const { code, stoppedBy } = await runFirebase(['emulators:exec', ...SUITE_FLAGS, command], options);
  // firebase-tools exits 0 after a clean shutdown on a signal: an interrupted run must not pass for a green one.
  return stoppedBy ? 128 + constants.signals[stoppedBy] : code;
}

/** `firebase emulators:start` until SIGINT (Ctrl-C) or SIGTERM; resolves with firebase's exit code (0: clean stop). */
export async function serveEmulatorSuite(options: SuiteRunOptions = {}): Promise<number> {
  return (await runFirebase(['emulators:start', ...SUITE_FLAGS], options)).code;
}

interface FirebaseExit {
  code: number;
  /** The signal this process received and passed on to firebase, if any. */
  stoppedBy?: NodeJS.Signals;
}

/**
 * Runs the firebase CLI in a process group of its own, so every signal reaches it exactly once
 * through this process: a terminal's Ctrl-C and npm's forwarded copy arrive within a moment of
 * each other, and firebase-tools takes a second SIGINT more than 100 ms after the first as
 * "exit now without stopping the emulators". After firebase exits, the rest of its group (a
 * command it was running) is killed, and the suite's ports are checked to be free again.
 */
async function runFirebase(args: string[], options: SuiteRunOptions): Promise<FirebaseExit> {
  const projectDir = options.projectDir ?? PROJECT_DIR;
  const env = emulatorSuiteEnv(options.env ?? process.env);
  const ports = suitePorts(projectDir);
  const busy = await listeningPorts(ports);
  if (busy.length > 0) {
    throw new Error(
      `cannot start the emulator suite: ${busy.map((p) => `${p.emulator} port ${p.port}`).join(', ')} ` +
        `(firebase.json) already in use on 127.0.0.1. Is another emulator suite running?`,
    );
  }

  const cli = require.resolve('firebase-tools/lib/bin/firebase.js', { paths: [projectDir] });
  const child = spawn(process.execPath, [cli, ...args], {
    cwd: projectDir,
    env,
    stdio: ['ignore', 'inherit', 'inherit'],
    detached: true,
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, signal);
    } catch {
      // the group is gone already
    }
  };
  let lastForwarded = 0;
  let stoppedBy: NodeJS.Signals | undefined;
  const forward = (signal: NodeJS.Signals) => {
    stoppedBy = signal;
    if (Date.now() - lastForwarded < 1000) return; // the same Ctrl-C, delivered twice
    lastForwarded = Date.now();
    signalGroup(signal);
  };
  const forwarded: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of forwarded) process.on(signal, forward);
  try {
    const exit = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolvePromise, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => resolvePromise({ code, signal }));
    });
    signalGroup('SIGKILL');
    const left = await listeningPorts(ports);
    if (left.length > 0) {
      throw new Error(
        `firebase-tools exited, yet something still listens on 127.0.0.1 for ` +
          `${left.map((p) => `${p.emulator} (port ${p.port})`).join(', ')}: stop it ` +
          `(\`ss -ltnp 'sport = :${left[0].port}'\` names the process)`,
      );
    }
    return { code: exit.code ?? 128 + (exit.signal ? constants.signals[exit.signal] : 0), stoppedBy };
  } finally {
    for (const signal of forwarded) process.removeListener(signal, forward);
  }
}

export interface SuitePort {
  emulator: (typeof SUITE_EMULATORS)[number];
  port: number;
}

/** The suite's ports on 127.0.0.1, as firebase.json sets them. */
export function suitePorts(projectDir: string = PROJECT_DIR): SuitePort[] {
  const configPath = join(projectDir, 'firebase.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as { emulators?: Record<string, { port?: number }> };
  return SUITE_EMULATORS.map((emulator) => {
    const port = config.emulators?.[emulator]?.port;
    if (typeof port !== 'number') throw new Error(`${configPath}: emulators.${emulator}.port is not set`);
    return { emulator, port };
  });
}

async function listeningPorts(ports: SuitePort[]): Promise<SuitePort[]> {
  const open = await Promise.all(ports.map((p) => accepts(p.port)));
  return ports.filter((_, index) => open[index]);
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.setTimeout(1000);
    socket.once('connect', () => {
      socket.destroy();
      resolvePromise(true);
    });
    socket.once('timeout', () => {
      socket.destroy();
      resolvePromise(false);
    });
    socket.once('error', () => resolvePromise(false));
  });
}
