import type { RequestHandler, Response } from 'express';
import { ApiError } from './errors';

/** The custom claims firemigrate reads (set with `firemigrate grant`). */
export const ADMIN_CLAIM = 'migrationAdmin';
export const VIEWER_CLAIM = 'migrationViewer';

/** Who a verified ID token belongs to. */
export interface VerifiedCaller {
  uid: string;
  email: string | null;
  /** Every claim of the token, custom claims included. */
  claims: Readonly<Record<string, unknown>>;
}

/**
 * The ID-token port: verifies a Firebase Auth ID token (signature, expiry, audience, issuer)
 * and, with `checkRevoked`, that its session was not revoked and its user is not disabled.
 * A token that fails verification is a `TokenRejectedError`; any other error means the
 * verification itself could not be done.
 */
export interface IdTokenVerifier {
  verify(idToken: string, options: { checkRevoked: boolean }): Promise<VerifiedCaller>;
}

export class TokenRejectedError extends Error {
  override readonly name = 'TokenRejectedError';
  /** e.g. `auth/id-token-expired`, `auth/id-token-revoked`. */
  constructor(
    readonly reason: string,
    message: string,
  ) {
    super(message);
  }
}

export type Role = 'viewer' | 'admin';

/** Admins may read: the admin claim includes the viewer's rights. */
export function hasRole(caller: VerifiedCaller, role: Role): boolean {
  if (caller.claims[ADMIN_CLAIM] === true) return true;
  return role === 'viewer' && caller.claims[VIEWER_CLAIM] === true;
}

/** The caller's identity as run documents and audit events record it. */
export function identityOf(caller: VerifiedCaller): string {
  return `firebase-auth/${caller.uid}${caller.email ? ` <${caller.email}>` : ''}`;
}

const BEARER = /^Bearer +([^\s]+) *$/i;
const CHALLENGE = 'Bearer realm="firemigrate"';

/**
 * Requires a valid ID token carrying the role's claim: 401 without a valid token, 403 without
 * the claim. Revocation (and a disabled user) is checked for `admin`, the role of every
 * mutating route: a revoked admin must not act for the hour its last token stays valid.
 */
export function requireRole(verifier: IdTokenVerifier, role: Role): RequestHandler {
  return async (request, response, next) => {
    const header = request.get('authorization');
    const match = header ? BEARER.exec(header) : null;
    if (!match) {
      throw new ApiError(401, 'unauthenticated', 'an Authorization: Bearer <Firebase ID token> header is required', {}, { 'WWW-Authenticate': CHALLENGE });
    }
    let caller: VerifiedCaller;
    try {
      caller = await verifier.verify(match[1], { checkRevoked: role === 'admin' });
    } catch (error) {
      if (!(error instanceof TokenRejectedError)) throw error;
      throw new ApiError(401, 'unauthenticated', `the ID token was rejected (${error.reason})`, { reason: error.reason }, {
        'WWW-Authenticate': `${CHALLENGE}, error="invalid_token"`,
      });
    }
    if (!hasRole(caller, role)) {
      const claim = role === 'admin' ? ADMIN_CLAIM : `${VIEWER_CLAIM} or ${ADMIN_CLAIM}`;
      throw new ApiError(403, 'forbidden', `this route requires the custom claim ${claim} (grant it with: firemigrate grant <email> --${role})`, {
        requiredClaim: role === 'admin' ? ADMIN_CLAIM : VIEWER_CLAIM,
      });
    }
    response.locals.caller = caller;
    next();
  };
}

/** The caller `requireRole` verified for this request. */
export function callerOf(response: Response): VerifiedCaller {
  const caller = response.locals.caller as VerifiedCaller | undefined;
  if (!caller) throw new Error('callerOf() on a route without requireRole()');
  return caller;
}
