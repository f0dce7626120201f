import { TokenRejectedError, type IdTokenVerifier, type VerifiedCaller } from '../../functions/src/api/auth';

/**
 * A TEST adapter of the ID-token port: known token strings stand for verified callers, anything
 * else is rejected as firebase-admin rejects a malformed token. (api.test.ts has a variant that
 * also records calls and revocations.)
 */
export class StaticTokenVerifierForTests implements IdTokenVerifier {
  constructor(private readonly tokens: Record<string, VerifiedCaller>) {}

  async verify(idToken: string): Promise<VerifiedCaller> {
    const caller = this.tokens[idToken];
    if (!caller) throw new TokenRejectedError('auth/argument-error', 'Decoding Firebase ID token failed.');
    return caller;
  }
}
