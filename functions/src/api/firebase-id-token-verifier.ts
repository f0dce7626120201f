import type { Auth } from 'firebase-admin/auth';
import { TokenRejectedError, type IdTokenVerifier, type VerifiedCaller } from './auth';

/**
 * firebase-admin error codes that mean "this token does not grant access" (answered 401).
 * Others — keys that could not be fetched, a misconfigured project — are failures of the
 * verification itself and must not read as a bad token.
 */
const REJECTION_CODES = new Set([
  'auth/argument-error',
  'auth/invalid-id-token',
  'auth/id-token-expired',
  'auth/id-token-revoked',
  'auth/user-disabled',
  'auth/user-not-found',
]);

/** Firebase Auth through firebase-admin's `verifyIdToken` (the Auth emulator with FIREBASE_AUTH_EMULATOR_HOST). */
export class FirebaseIdTokenVerifier implements IdTokenVerifier {
  constructor(private readonly auth: Auth) {}

  async verify(idToken: string, options: { checkRevoked: boolean }): Promise<VerifiedCaller> {
    try {
      const decoded = await this.auth.verifyIdToken(idToken, options.checkRevoked);
      return { uid: decoded.uid, email: decoded.email ?? null, claims: decoded };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (typeof code === 'string' && REJECTION_CODES.has(code)) throw new TokenRejectedError(code, (error as Error).message);
      throw error;
    }
  }
}
