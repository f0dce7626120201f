import type { Command } from 'commander';
import { deleteApp, getApps, initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { z } from 'zod';
import { ADMIN_CLAIM, VIEWER_CLAIM } from '../../api/auth';
import { CliError, DEFAULT_EMULATOR_PROJECT, EXIT_FAILURE, EXIT_USAGE, type GlobalOptions } from '../context';
import { printJson, printLines } from '../output';

interface GrantFlags {
  admin?: boolean;
  viewer?: boolean;
  revoke?: boolean;
}

export interface GrantResult {
  email: string;
  uid: string;
  projectId: string;
  claim: typeof ADMIN_CLAIM | typeof VIEWER_CLAIM;
  action: 'granted' | 'revoked';
  /** False when the user already had (or already lacked) the claim. */
  changed: boolean;
  /** The user's firemigrate claims afterwards. */
  claims: { [ADMIN_CLAIM]: boolean; [VIEWER_CLAIM]: boolean };
  /** Whether the user's refresh tokens were revoked (taking an admin's rights away at once). */
  sessionsRevoked: boolean;
}

/**
 * The project whose users to change: `--project`, else GCLOUD_PROJECT / GOOGLE_CLOUD_PROJECT;
 * on the Auth emulator (FIREBASE_AUTH_EMULATOR_HOST) `demo-firemigrate` when none is named.
 */
function authProject(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const named = flag?.trim() || env.GCLOUD_PROJECT?.trim() || env.GOOGLE_CLOUD_PROJECT?.trim();
  if (named) return named;
  if (env.FIREBASE_AUTH_EMULATOR_HOST?.trim()) return DEFAULT_EMULATOR_PROJECT;
  throw new CliError(
    'No project named: pass --project <id> (or set GCLOUD_PROJECT / GOOGLE_CLOUD_PROJECT), or set FIREBASE_AUTH_EMULATOR_HOST to work against the Auth emulator.',
    EXIT_USAGE,
  );
}

/** Sets or removes one firemigrate claim, keeping the user's other custom claims. */
export async function grantClaim(projectId: string, email: string, claim: GrantResult['claim'], revoke: boolean): Promise<GrantResult> {
  const name = `firemigrate-auth-${projectId}`;
  const app = getApps().find((existing) => existing.name === name) ?? initializeApp({ projectId }, name);
  try {
    const auth = getAuth(app);
    let user;
    try {
      user = await auth.getUserByEmail(email);
    } catch (error) {
      if ((error as { code?: unknown }).code === 'auth/user-not-found') {
        throw new CliError(`No Firebase Auth user has the email ${email} in project ${projectId}: the user must sign up (or be created) first.`, EXIT_FAILURE);
      }
      throw error;
    }
    const before = { ...(user.customClaims ?? {}) };
    const after = { ...before };
    if (revoke) delete after[claim];
    else after[claim] = true;
    const changed = before[claim] !== after[claim];
    if (changed) await auth.setCustomUserClaims(user.uid, after);
    // An ID token keeps its claims until it expires (up to an hour). Mutating routes check
    // revocation, so revoking the sessions ends an admin's rights now; reads do not check it,
    // so a viewer's revocation takes effect when the current token expires.
    const sessionsRevoked = revoke && claim === ADMIN_CLAIM;
    if (sessionsRevoked) await auth.revokeRefreshTokens(user.uid);
    return {
      email,
      uid: user.uid,
      projectId,
      claim,
      action: revoke ? 'revoked' : 'granted',
      changed,
      claims: { [ADMIN_CLAIM]: after[ADMIN_CLAIM] === true, [VIEWER_CLAIM]: after[VIEWER_CLAIM] === true },
      sessionsRevoked,
    };
  } finally {
    await deleteApp(app);
  }
}

function report(result: GrantResult): string[] {
  const lines = [
    `${result.changed ? (result.action === 'granted' ? 'Granted' : 'Revoked') : result.action === 'granted' ? 'Already granted' : 'Already absent'}: ` +
      `${result.claim} for ${result.email} (uid ${result.uid}) in project ${result.projectId}.`,
    `Claims now: ${ADMIN_CLAIM}=${result.claims[ADMIN_CLAIM]}, ${VIEWER_CLAIM}=${result.claims[VIEWER_CLAIM]}.`,
  ];
  if (result.action === 'granted') {
    lines.push('The user gets the claim with the next ID token: sign in again, or refresh the token (getIdToken(true)).');
  } else if (result.sessionsRevoked) {
    lines.push("The user's sessions were revoked: their current tokens are refused by every mutating route at once, and they must sign in again.");
  } else {
    lines.push("The user's current ID token keeps the claim until it expires (at most an hour).");
  }
  return lines;
}

export function register(program: Command): void {
  program
    .command('grant <email>')
    .description('Give a Firebase Auth user the API claim migrationAdmin (--admin) or migrationViewer (--viewer); --revoke takes it away')
    .option('--admin', `the ${ADMIN_CLAIM} claim: start, pause, resume and abort runs over the API (and read)`)
    .option('--viewer', `the ${VIEWER_CLAIM} claim: read status, migrations and runs over the API`)
    .option('--revoke', "remove the claim; for --admin also revoke the user's sessions so it takes effect at once")
    .addHelpText('after', '\nOther custom claims of the user are kept. Uses FIREBASE_AUTH_EMULATOR_HOST when set.')
    .action(async (email: string, flags: GrantFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (Boolean(flags.admin) === Boolean(flags.viewer)) throw new CliError('grant needs exactly one of --admin or --viewer.', EXIT_USAGE);
      const address = z.email().safeParse(email.trim());
      if (!address.success) throw new CliError(`"${email}" is not an email address.`, EXIT_USAGE);
      const result = await grantClaim(authProject(globals.project), address.data, flags.admin ? ADMIN_CLAIM : VIEWER_CLAIM, Boolean(flags.revoke));
      if (globals.json) printJson(result);
      else printLines(report(result));
    });
}
