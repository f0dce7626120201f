/**
 * With FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin's `verifyIdToken` accepts unsigned
 * tokens, and with any other `*_EMULATOR_HOST` the functions would read or write emulated data
 * while believing it production. So the functions refuse to load with such a variable set,
 * unless they run in the Functions emulator (FUNCTIONS_EMULATOR=true) or on a `demo-` project
 * (which has no production resources to reach).
 */
export class EmulatorGuardError extends Error {
  override readonly name = 'EmulatorGuardError';
  constructor(
    readonly variables: readonly string[],
    readonly projectIds: readonly string[],
  ) {
    super(
      `Refusing to start: ${variables.join(', ')} ${variables.length === 1 ? 'is' : 'are'} set outside the emulator ` +
        `(FUNCTIONS_EMULATOR is not "true" and the project ${projectIds.length > 0 ? projectIds.join(' / ') : '(unknown)'} is not a demo- project). ` +
        'With an emulator host set, firebase-admin accepts unsigned ID tokens. Unset these variables in the deployed environment.',
    );
  }
}

/** The project ids the environment names (GCLOUD_PROJECT, GOOGLE_CLOUD_PROJECT, FIREBASE_CONFIG's projectId). */
function namedProjects(env: NodeJS.ProcessEnv): string[] {
  const ids = [env.GCLOUD_PROJECT, env.GOOGLE_CLOUD_PROJECT];
  const firebaseConfig = env.FIREBASE_CONFIG?.trim();
  if (firebaseConfig?.startsWith('{')) {
    try {
      ids.push((JSON.parse(firebaseConfig) as { projectId?: string }).projectId);
    } catch {
      // Not JSON: a path to a config file, which names no project here.
    }
  }
  return [...new Set(ids.map((id) => id?.trim()).filter((id): id is string => Boolean(id)))];
}

/** Throws `EmulatorGuardError` when an emulator host is set outside the emulator; call it when the functions load. */
export function assertNoEmulatorOutsideEmulator(env: NodeJS.ProcessEnv = process.env): void {
  const variables = Object.keys(env)
    .filter((name) => name.endsWith('_EMULATOR_HOST') && env[name]?.trim())
    .sort();
  if (variables.length === 0) return;
  if (env.FUNCTIONS_EMULATOR?.trim() === 'true') return;
  const projects = namedProjects(env);
  if (projects.length > 0 && projects.every((id) => id.startsWith('demo-'))) return;
  throw new EmulatorGuardError(variables, projects);
}
