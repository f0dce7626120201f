/**
 * `onRollbackRequest` (Pub/Sub topic `migration-rollback`): lets an operator start a rollback from
 * the Cloud console without the topic becoming a back door. Pub/Sub carries no publisher
 * identity, so the message must carry a Firebase ID token of a user with the `migrationAdmin`
 * claim (verified with revocation checks), `confirm: true` and a reason.
 *
 * Delivery is at least once: the event id is claimed first with create(), so a redelivery does
 * nothing (at most once: if the process dies between the claim and the dispatch, the operator
 * publishes again, as a new event). Every message that does not start a rollback — malformed,
 * unauthenticated, unauthorised, refused — is logged, recorded on its event document and in the
 * audit trail, and acknowledged: retrying it would fail the same way forever.
 */
import { Timestamp } from '@google-cloud/firestore';
import { z } from 'zod';
import { identityOf, hasRole, TokenRejectedError, type IdTokenVerifier, type VerifiedCaller } from '../api/auth';
import { AuditLog } from '../control/audit';
import { LeaseHeldError } from '../control/lease';
import { RunNotFoundError, RunStore } from '../control/runs';
import { RollbackRefusedError } from '../rollback/rollback-run';
import { grpcCode, Status } from '../engine/wire/status';
import { dispatchRollback, RollbackDispatchError } from './rollback-dispatch';
import type { RollbackPipelineContext } from './rollback-payload';

const ID = /^[A-Za-z0-9_-]+$/;

/**
 * The message (JSON): exactly one of `migrationId` (every executed run) or `runId` (that run),
 * plus the caller's ID token, `confirm: true` and a reason. Unknown keys are refused.
 */
export const rollbackRequestMessage = z
  .strictObject({
    idToken: z.string().min(1).max(8192),
    migrationId: z.string().min(1).max(200).optional(),
    runId: z.string().regex(ID).max(128).optional(),
    confirm: z.literal(true, { error: 'confirm must be true: a rollback request is an explicit confirmation' }),
    reason: z.string().trim().min(1, { error: 'reason must not be empty' }).max(1000),
    /** Who answers for it; the token's email (or uid) when absent. */
    user: z.string().trim().min(1).max(200).optional(),
    force: z.boolean().default(false),
    strategy: z.enum(['restore', 'revert']).optional(),
  })
  .refine((message) => (message.migrationId === undefined) !== (message.runId === undefined), {
    error: 'name exactly one of migrationId (roll back every executed run) or runId (roll back that run)',
    path: ['migrationId'],
  });

export type RollbackRequestMessage = z.infer<typeof rollbackRequestMessage>;

export type RollbackRequestOutcome =
  | 'duplicate'
  | 'malformed'
  | 'unauthenticated'
  | 'verification-failed'
  | 'forbidden'
  | 'unknown-target'
  | 'refused'
  | 'dispatch-failed'
  | 'dispatched';

export interface RollbackRequestDeps extends RollbackPipelineContext {
  verifier: IdTokenVerifier;
}

/** `.../_control/rollback-requests/{eventId}`: one per handled event. */
export interface RollbackRequestEvent {
  eventId: string;
  receivedAt: Timestamp;
  outcome: RollbackRequestOutcome | 'processing';
  detail: string | null;
  rollbackRunId: string | null;
  handledAt: Timestamp | null;
}

export interface RollbackRequestResult {
  outcome: RollbackRequestOutcome;
  detail: string | null;
  rollbackRunId: string | null;
}

export async function handleRollbackRequest(deps: RollbackRequestDeps, eventId: string, json: unknown): Promise<RollbackRequestResult> {
  const audit = new AuditLog(deps.db, deps.paths);
  if (!ID.test(eventId)) {
    // No event document can be named after it: the refusal is in the log and the audit trail only.
    const detail = `the event id ${JSON.stringify(eventId)} is not [A-Za-z0-9_-]+`;
    deps.log.error(`onRollbackRequest: ignoring a message: ${detail}`, { eventId });
    await audit.append(refusalEvent(eventId, 'malformed', detail, null));
    return { outcome: 'malformed', detail, rollbackRunId: null };
  }
  const eventRef = deps.db.collection(deps.paths.rollbackRequestEvents()).doc(eventId);
  try {
    const claim: RollbackRequestEvent = { eventId, receivedAt: Timestamp.now(), outcome: 'processing', detail: null, rollbackRunId: null, handledAt: null };
    await eventRef.create(claim);
  } catch (error) {
    if (grpcCode(error) !== Status.ALREADY_EXISTS) throw error;
    deps.log.info(`onRollbackRequest: event ${eventId} was handled before; nothing done`, { eventId });
    return { outcome: 'duplicate', detail: null, rollbackRunId: null };
  }

  const refuse = async (outcome: RollbackRequestOutcome, detail: string, caller: VerifiedCaller | null): Promise<RollbackRequestResult> => {
    deps.log.error(`onRollbackRequest: event ${eventId} refused (${outcome}): ${detail}`, { eventId, outcome, uid: caller?.uid ?? null });
    await deps.db.runTransaction(async (tx) => {
      tx.update(eventRef, { outcome, detail, handledAt: Timestamp.now() });
      audit.appendIn(tx, refusalEvent(eventId, outcome, detail, caller));
    });
    return { outcome, detail, rollbackRunId: null };
  };

  const parsed = rollbackRequestMessage.safeParse(json);
  if (!parsed.success) {
    // Paths and codes only: the message may hold a token, never logged or stored.
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || '(message)'}: ${issue.message}`).join('; ');
    return refuse('malformed', `the message is not a rollback request: ${problems}`, null);
  }
  const message = parsed.data;

  let caller: VerifiedCaller;
  try {
    caller = await deps.verifier.verify(message.idToken, { checkRevoked: true });
  } catch (error) {
    if (error instanceof TokenRejectedError) return refuse('unauthenticated', `the ID token was rejected (${error.reason})`, null);
    return refuse('verification-failed', `the ID token could not be verified (${(error as Error).message}); publish the request again`, null);
  }
  if (!hasRole(caller, 'admin')) return refuse('forbidden', 'the ID token does not carry the migrationAdmin claim (grant it with: firemigrate grant <email> --admin)', caller);

  let scope: { migrationId: string; runId?: string };
  if (message.runId !== undefined) {
    try {
      const run = await new RunStore(deps.db, deps.paths).find(message.runId);
      if (run.kind !== 'migrate' || run.mode !== 'execute') return refuse('unknown-target', `run ${run.runId} is a ${run.kind} ${run.mode} run; only executed migrate runs can be rolled back`, caller);
      scope = { migrationId: run.migrationId, runId: run.runId };
    } catch (error) {
      if (error instanceof RunNotFoundError) return refuse('unknown-target', error.message, caller);
      throw error;
    }
  } else {
    scope = { migrationId: message.migrationId! };
  }
  if (!deps.registry.has(scope.migrationId)) return refuse('unknown-target', `migration "${scope.migrationId}" is not deployed with these functions`, caller);

  try {
    const dispatched = await dispatchRollback(deps, {
      ...scope,
      strategy: message.strategy,
      force: message.force,
      reason: message.reason,
      user: message.user ?? caller.email ?? caller.uid,
      identity: identityOf(caller),
    });
    await eventRef.update({ outcome: 'dispatched', detail: `rollback run ${dispatched.runId} (${dispatched.strategy})`, rollbackRunId: dispatched.runId, handledAt: Timestamp.now() });
    deps.log.info(`onRollbackRequest: event ${eventId} started rollback run ${dispatched.runId} of "${dispatched.migrationId}"`, { eventId, runId: dispatched.runId, uid: caller.uid });
    return { outcome: 'dispatched', detail: null, rollbackRunId: dispatched.runId };
  } catch (error) {
    if (error instanceof RollbackRefusedError || error instanceof LeaseHeldError) return refuse('refused', error.message, caller);
    if (error instanceof RollbackDispatchError) return refuse('dispatch-failed', error.message, caller);
    throw error;
  }
}

function refusalEvent(eventId: string, outcome: RollbackRequestOutcome, detail: string, caller: VerifiedCaller | null) {
  return {
    action: 'rollback.request-refused' as const,
    migrationId: null,
    runId: null,
    user: caller ? (caller.email ?? caller.uid) : 'unverified',
    identity: caller ? identityOf(caller) : 'unverified pubsub publisher',
    reason: detail,
    details: { eventId, outcome, via: 'pubsub' },
  };
}
