import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Firestore } from '@google-cloud/firestore';
import { deleteApp, getApps, initializeApp, type App } from 'firebase-admin/app';
import { getFirestore } from 'firebase-admin/firestore';
import { ConfigError, loadConfig, type FiremigrateConfig } from '../config';
import { DefinitionError, DuplicateMigrationError, MigrationLoadError, UnknownMigrationError } from '../definitions/errors';
import { loadMigrationsFrom } from '../definitions/loader';
import { createRegistry, type MigrationRegistry } from '../definitions/registry';
import type { Migration } from '../definitions/types';
import { projectMigrations } from '../migrations';

/** Exit codes of every command: 0 ok, 1 the operation failed, 2 usage or configuration error. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

/** An error the CLI reports as its message alone, exiting with `exitCode`. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: typeof EXIT_FAILURE | typeof EXIT_USAGE,
  ) {
    super(message);
  }
}

/** The global flags, as every command sees them (`command.optsWithGlobals()`). */
export interface GlobalOptions {
  project?: string;
  env?: string;
  migrations?: string[];
  json?: boolean;
  user?: string;
}

/** Project id used on an emulator when none is named: `demo-*` ids keep the Google libraries offline. */
export const DEFAULT_EMULATOR_PROJECT = 'demo-firemigrate';

export interface ProjectTarget {
  projectId: string;
  /** Set when the Firestore emulator is in use. */
  emulatorHost?: string;
}

/**
 * Which project to work on: `--project`, else GCLOUD_PROJECT / GOOGLE_CLOUD_PROJECT; on the
 * emulator (FIRESTORE_EMULATOR_HOST) `demo-firemigrate` when none is named. Against production a
 * project must be named explicitly — guessing one could migrate the wrong database.
 */
export function resolveProject(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): ProjectTarget {
  const emulatorHost = env.FIRESTORE_EMULATOR_HOST?.trim() || undefined;
  const named = flag?.trim() || env.GCLOUD_PROJECT?.trim() || env.GOOGLE_CLOUD_PROJECT?.trim();
  if (named) return emulatorHost ? { projectId: named, emulatorHost } : { projectId: named };
  if (emulatorHost) return { projectId: DEFAULT_EMULATOR_PROJECT, emulatorHost };
  throw new CliError(
    'No Firestore project named: pass --project <id> (or set GCLOUD_PROJECT / GOOGLE_CLOUD_PROJECT), ' +
      'or set FIRESTORE_EMULATOR_HOST to work against the emulator.',
    EXIT_USAGE,
  );
}

export interface FirestoreConnection extends ProjectTarget {
  db: Firestore;
  close(): Promise<void>;
}

/**
 * A Firestore client through firebase-admin (which talks to the emulator by itself when
 * FIRESTORE_EMULATOR_HOST is set, and uses Application Default Credentials otherwise).
 */
export function openFirestore(options: { project?: string }, env: NodeJS.ProcessEnv = process.env): FirestoreConnection {
  const target = resolveProject(options.project, env);
  const name = `firemigrate-${target.projectId}`;
  const app: App = getApps().find((existing) => existing.name === name) ?? initializeApp({ projectId: target.projectId }, name);
  const db = getFirestore(app);
  return { ...target, db, close: () => deleteApp(app) };
}

/** Runs `work` with a connection and always closes it (an open client keeps the process alive). */
export async function withFirestore<T>(options: { project?: string }, work: (connection: FirestoreConnection) => Promise<T>): Promise<T> {
  const connection = openFirestore(options);
  try {
    return await work(connection);
  } finally {
    await connection.close();
  }
}

/** The configuration, or a usage error (exit 2) naming each bad variable. */
export function loadContextConfig(env: NodeJS.ProcessEnv = process.env): FiremigrateConfig {
  try {
    return loadConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) throw new CliError(`Invalid configuration:\n${error.message}`, EXIT_USAGE);
    throw error;
  }
}

const ENVIRONMENT_NAME = /^[A-Za-z0-9_-]+$/;

/**
 * `--env <name>` names the environment and loads `.env.<name>` from the working directory when
 * that file exists. Variables already set in the process win over the file, so one command line
 * can still override a file's value.
 */
export function applyEnvironment(name: string | undefined, cwd: string = process.cwd()): { name?: string; file?: string } {
  if (name === undefined) return {};
  if (!ENVIRONMENT_NAME.test(name)) {
    throw new CliError(`--env "${name}" is invalid: expected letters, digits, "-" and "_" (e.g. production)`, EXIT_USAGE);
  }
  const file = resolve(cwd, `.env.${name}`);
  if (!existsSync(file)) return { name };
  process.loadEnvFile(file);
  return { name, file };
}

/**
 * The project's migrations (functions/src/migrations) plus those loaded from `--migrations`
 * files and folders. A definition that does not load is a usage error (exit 2).
 */
export async function loadCliRegistry(extraPaths: readonly string[] = []): Promise<MigrationRegistry> {
  try {
    const loaded: Migration[] = extraPaths.length > 0 ? await loadMigrationsFrom([...extraPaths]) : [];
    return createRegistry([...projectMigrations, ...loaded]);
  } catch (error) {
    if (error instanceof DefinitionError || error instanceof DuplicateMigrationError || error instanceof MigrationLoadError) {
      throw new CliError(error.message, EXIT_USAGE);
    }
    throw error;
  }
}

/** `registry.get(id)`, with an unknown id reported as a usage error listing the known ids. */
export function migrationById(registry: MigrationRegistry, id: string): Migration {
  try {
    return registry.get(id);
  } catch (error) {
    if (error instanceof UnknownMigrationError) throw new CliError(error.message, EXIT_USAGE);
    throw error;
  }
}

/** Who runs a command, for run documents and the audit trail. */
export interface CallerIdentity {
  /** `--user`: the person or team that answers for the run. */
  user: string | null;
  /** The Google identity the command's requests carry. */
  identity: string;
  identitySource: 'emulator' | 'credentials' | 'gcloud' | 'unknown';
}

const IDENTITY_LOOKUP_TIMEOUT_MS = 5000;

/**
 * `--user` beside the Google identity, found best effort: on the emulator there is none
 * ('emulator'); otherwise the client_email of Application Default Credentials (service
 * accounts, including the metadata server's), else `gcloud config get-value account` (a user's
 * own ADC carries no email), else 'unknown'. The lookup never fails the command.
 */
export async function resolveCaller(user: string | undefined, target: ProjectTarget): Promise<CallerIdentity> {
  const named = user?.trim() || null;
  if (target.emulatorHost) return { user: named, identity: 'emulator', identitySource: 'emulator' };
  const fromCredentials = await withTimeout(credentialsEmail());
  if (fromCredentials) return { user: named, identity: fromCredentials, identitySource: 'credentials' };
  const fromGcloud = await withTimeout(gcloudAccount());
  if (fromGcloud) return { user: named, identity: fromGcloud, identitySource: 'gcloud' };
  return { user: named, identity: 'unknown', identitySource: 'unknown' };
}

async function credentialsEmail(): Promise<string | undefined> {
  try {
    const { GoogleAuth } = await import('google-auth-library');
    const credentials = await new GoogleAuth({ scopes: ['https://www.googleapis.com/auth/cloud-platform'] }).getCredentials();
    return credentials.client_email || undefined;
  } catch {
    return undefined;
  }
}

function gcloudAccount(): Promise<string | undefined> {
  return new Promise((resolveAccount) => {
    execFile('gcloud', ['config', 'get-value', 'account'], { timeout: IDENTITY_LOOKUP_TIMEOUT_MS }, (error, stdout) => {
      const account = stdout?.toString().trim();
      resolveAccount(!error && account && account !== '(unset)' ? account : undefined);
    });
  });
}

function withTimeout<T>(promise: Promise<T | undefined>): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolveTimeout) => {
    timer = setTimeout(() => resolveTimeout(undefined), IDENTITY_LOOKUP_TIMEOUT_MS);
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
