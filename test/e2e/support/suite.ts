/** The running emulator suite, as `firebase emulators:exec` describes it in the environment. */
import type { Firestore } from '@google-cloud/firestore';
import type { App } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { ControlPaths } from '../../../functions/src/control/paths';
import type { RunDocument } from '../../../functions/src/control/runs';

export function suiteVariable(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the e2e project through \`npm run test:e2e\``);
  return value;
}

export function suiteProjectId(): string {
  return suiteVariable('GCLOUD_PROJECT');
}

export interface RunningEmulator {
  name: string;
  host: string;
  port: number;
}

/** Every emulator the hub knows of, by name (the hub is the suite's own registry). */
export async function runningEmulators(): Promise<Record<string, RunningEmulator>> {
  const response = await fetch(`http://${suiteVariable('FIREBASE_EMULATOR_HUB')}/emulators`);
  if (!response.ok) throw new Error(`the emulator hub answered HTTP ${response.status}`);
  return (await response.json()) as Record<string, RunningEmulator>;
}

/** The URL of an HTTPS function in the Functions emulator (default region), with `path` appended. */
export async function functionUrl(functionName: string, path: string): Promise<string> {
  const functions = (await runningEmulators()).functions;
  if (!functions) throw new Error('the Functions emulator is not running');
  return `http://${functions.host}:${functions.port}/${suiteProjectId()}/us-central1/${functionName}${path}`;
}

/** One JSON call to an emulator's REST API; a non-2xx answer throws with its body. */
export async function restCall<T>(method: string, url: string, body?: unknown): Promise<T> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? undefined : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${url} answered HTTP ${response.status}: ${text}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/**
 * Turns the Functions emulator's event-triggered functions off or on (the hub's own switch).
 * Off, a bulk seed does not start one Firestore-trigger invocation per written document (the
 * emulator runs up to 50 at once, each in its own worker process); on again, every trigger —
 * Pub/Sub ones included — is loaded afresh. Events that arrive while they are off are dropped.
 */
export async function setBackgroundTriggers(enabled: boolean): Promise<void> {
  const path = enabled ? 'enableBackgroundTriggers' : 'disableBackgroundTriggers';
  const response = await fetch(`http://${suiteVariable('FIREBASE_EMULATOR_HUB')}/functions/${path}`, { method: 'PUT' });
  if (!response.ok) throw new Error(`the emulator hub refused ${path}: HTTP ${response.status} ${await response.text()}`);
}

/** Deletes every document of the suite's project: the files share one Firestore emulator, and each starts from an empty database. */
export async function resetFirestore(): Promise<void> {
  await restCall('DELETE', `http://${suiteVariable('FIRESTORE_EMULATOR_HOST')}/emulator/v1/projects/${suiteProjectId()}/databases/(default)/documents`);
}

/** The password of every user `signedInUser` creates (a browser test signs in with it too). */
export const E2E_PASSWORD = 'e2e-password';

/** An Auth-emulator user with `claims`, signed in over REST: its ID token carries them. */
export async function signedInUser(admin: App, claims: Record<string, boolean>, email: string): Promise<{ uid: string; email: string; token: string }> {
  const password = E2E_PASSWORD;
  const user = await getAuth(admin).createUser({ email, password });
  await getAuth(admin).setCustomUserClaims(user.uid, claims);
  const identityToolkit = `http://${suiteVariable('FIREBASE_AUTH_EMULATOR_HOST')}/identitytoolkit.googleapis.com/v1`;
  const signedIn = await restCall<{ idToken: string }>('POST', `${identityToolkit}/accounts:signInWithPassword?key=e2e-api-key`, { email, password, returnSecureToken: true });
  return { uid: user.uid, email, token: signedIn.idToken };
}

/** Statuses a run rests in until someone acts: waiting for one of them is waiting for the run to settle. */
export const FINAL_RUN_STATUSES: readonly string[] = ['completed', 'failed', 'aborted', 'paused', 'emergency_stopped', 'rolled_back'];

export async function readRun(db: Firestore, migrationId: string, runId: string): Promise<RunDocument> {
  return (await db.doc(new ControlPaths().run(migrationId, runId)).get()).data() as RunDocument;
}

/** Polls the run document until its status is final; throws naming the status after `timeoutMs`. */
export async function waitForFinalRun(db: Firestore, migrationId: string, runId: string, timeoutMs: number): Promise<RunDocument> {
  const deadline = Date.now() + timeoutMs;
  let run = await readRun(db, migrationId, runId);
  while (!FINAL_RUN_STATUSES.includes(run.status)) {
    if (Date.now() > deadline) throw new Error(`run ${runId} is still ${run.status} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    run = await readRun(db, migrationId, runId);
  }
  return run;
}
