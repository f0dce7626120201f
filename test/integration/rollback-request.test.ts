import { TokenRejectedError, type IdTokenVerifier, type VerifiedCaller } from '../../functions/src/api/auth';
import { createLogger } from '../../functions/src/cli/log';
import { AuditLog, type StoredAuditEvent } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore, type RunDocument } from '../../functions/src/control/runs';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { Migration } from '../../functions/src/definitions/types';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import type { RollbackTask } from '../../functions/src/pipeline/rollback-payload';
import { handleRollbackRequest, type RollbackRequestDeps, type RollbackRequestEvent } from '../../functions/src/pipeline/rollback-request';
import { handleRollbackTask } from '../../functions/src/pipeline/rollback-task';
import { InProcessTaskQueue } from '../../functions/src/transports/in-process-task-queue';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { canonical, testWire } from '../support/raw-seed';
import { dumpDatabase, rawCollections } from '../support/rollback-support';

/**
 * A TEST adapter of the ID-token port, as in api.test.ts: known token strings stand for verified
 * callers, a "revoked" token passes only without the revocation check, and "broken" stands for a
 * verification that could not be done (keys unreachable). The firebase-admin adapter is
 * exercised against the Auth emulator by the end-to-end suite.
 */
class StaticTokenVerifierForTests implements IdTokenVerifier {
  readonly calls: Array<{ token: string; checkRevoked: boolean }> = [];
  constructor(private readonly tokens: Record<string, { caller: VerifiedCaller; revoked?: boolean }>) {}

  async verify(idToken: string, options: { checkRevoked: boolean }): Promise<VerifiedCaller> {
    this.calls.push({ token: idToken, checkRevoked: options.checkRevoked });
    if (idToken === 'broken-token') throw new Error('could not fetch the public keys');
    const known = this.tokens[idToken];
    if (!known) throw new TokenRejectedError('auth/argument-error', 'Decoding Firebase ID token failed.');
    if (known.revoked && options.checkRevoked) throw new TokenRejectedError('auth/id-token-revoked', 'The Firebase ID token has been revoked.');
    return known.caller;
  }
}

const ADMIN = { uid: 'u-admin', email: 'admin@example.com', claims: { migrationAdmin: true } };
const VIEWER = { uid: 'u-viewer', email: 'viewer@example.com', claims: { migrationViewer: true } };
const TOKENS = {
  'admin-token': { caller: ADMIN },
  'viewer-token': { caller: VIEWER },
  'revoked-admin-token': { caller: ADMIN, revoked: true },
};

describeEmulator('onRollbackRequest: rollback requests over Pub/Sub', () => {
  const projectId = 'demo-rollback-request';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '60', ROLLBACK_BATCH_SIZE: '50', MIGRATION_RETRY_DELAY: '5' });
  const registry = createRegistry([tradesV2, conversationsV2]);
  const seeded = { docs: 120, seed: 5, now: new Date('2026-11-01T10:00:00Z') };
  const logLines: string[] = [];
  const log = createLogger({ format: 'json', write: (line) => logLines.push(line), minSeverity: 'DEBUG' });
  let verifier: StaticTokenVerifierForTests;
  let queue: InProcessTaskQueue<RollbackTask>;
  let deps: RollbackRequestDeps;

  beforeEach(async () => {
    await resetProject(projectId);
    logLines.length = 0;
    verifier = new StaticTokenVerifierForTests(TOKENS);
    queue = new InProcessTaskQueue<RollbackTask>(async (task) => void (await handleRollbackTask(deps, task)), { concurrency: 1, maxAttempts: 3, minBackoffMs: 10, maxBackoffMs: 50 });
    deps = { db, wire, config, paths, registry, lease: { ttlMs: 60_000, renewEveryMs: 20_000 }, log, rollbackQueue: queue, verifier };
  });
  afterEach(() => queue.close());
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function migrate(migration: Migration): Promise<string> {
    const runCtx: RunnerContext = { db, wire, migration, config, paths, lease: deps.lease, holder: 'test-host/1/migrate', log };
    const outcome = await (await startRun(runCtx, { user: 'tester', identity: 'emulator', reason: 'migrate' })).outcome;
    expect(outcome.status).toBe('completed');
    return outcome.runId;
  }

  async function eventDoc(eventId: string): Promise<RollbackRequestEvent | undefined> {
    return (await db.collection(paths.rollbackRequestEvents()).doc(eventId).get()).data() as RollbackRequestEvent | undefined;
  }

  async function refusals(): Promise<StoredAuditEvent[]> {
    const snapshot = await db.collection(paths.audit()).where('action', '==', 'rollback.request-refused').get();
    return snapshot.docs.map((doc) => doc.data() as StoredAuditEvent);
  }

  async function rollbackRuns(migrationId: string): Promise<RunDocument[]> {
    return (await db.collection(paths.runs(migrationId)).where('kind', '==', 'rollback').get()).docs.map((doc) => doc.data() as RunDocument);
  }

  it('an admin\'s confirmed request starts the rollback on the task queue, which restores every document; a redelivery does nothing', async () => {
    await seedDemoData(db, seeded);
    const originals = await rawCollections(db, wire, ['trades']);
    const source = await migrate(tradesV2);
    const message = { idToken: 'admin-token', runId: source, confirm: true, reason: 'console: bad skills data', user: 'on-call' };

    const result = await handleRollbackRequest(deps, '1234567890', message);
    expect(result).toMatchObject({ outcome: 'dispatched', detail: null, rollbackRunId: expect.stringMatching(/^\d{8}-\d{6}-[0-9a-f]{6}$/) });
    expect(verifier.calls).toEqual([{ token: 'admin-token', checkRevoked: true }]);
    await queue.idle();
    expect(queue.givenUp).toEqual([]);

    const runs = await rollbackRuns(tradesV2.id);
    expect(runs).toHaveLength(1);
    expect(runs[0]).toMatchObject({ runId: result.rollbackRunId, status: 'completed', user: 'on-call', identity: 'firebase-auth/u-admin <admin@example.com>', reason: 'console: bad skills data' });
    expect((await new RunStore(db, paths).get(tradesV2.id, source)).status).toBe('rolled_back');
    const after = await rawCollections(db, wire, ['trades']);
    for (const [path, fields] of after) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path)!) });
    expect(await eventDoc('1234567890')).toMatchObject({ eventId: '1234567890', outcome: 'dispatched', rollbackRunId: result.rollbackRunId });
    const events = (await new AuditLog(db, paths).forRun(result.rollbackRunId!)).map((event) => [event.action, event.user, event.identity]);
    // Between start and completion the mode policy changes the mode twice, as the same caller.
    expect(events).toEqual([
      ['rollback.started', 'on-call', 'firebase-auth/u-admin <admin@example.com>'],
      ['mode.changed', 'on-call', 'firebase-auth/u-admin <admin@example.com>'],
      ['mode.changed', 'on-call', 'firebase-auth/u-admin <admin@example.com>'],
      ['rollback.completed', 'on-call', 'firebase-auth/u-admin <admin@example.com>'],
    ]);

    // At-least-once delivery: the same event again changes nothing.
    const before = await dumpDatabase(db, wire);
    expect(await handleRollbackRequest(deps, '1234567890', message)).toEqual({ outcome: 'duplicate', detail: null, rollbackRunId: null });
    expect(await dumpDatabase(db, wire)).toEqual(before);
    expect(verifier.calls).toHaveLength(1);
  });

  it('names the migration: the token\'s email answers for it when no user is given', async () => {
    await seedDemoData(db, seeded);
    await migrate(tradesV2);
    const result = await handleRollbackRequest(deps, 'evt-migration', { idToken: 'admin-token', migrationId: tradesV2.id, confirm: true, reason: 'whole migration' });
    expect(result.outcome).toBe('dispatched');
    await queue.idle();
    const runs = await rollbackRuns(tradesV2.id);
    expect(runs.map((run) => [run.status, run.user])).toEqual([['completed', 'admin@example.com']]);
  });

  it('acknowledges, logs and records every message it refuses, without any effect and without storing or logging the token', async () => {
    await seedDemoData(db, seeded);
    const source = await migrate(tradesV2);
    const valid = { idToken: 'admin-token', runId: source, confirm: true, reason: 'r' };
    const cases: Array<{ eventId: string; message: unknown; outcome: string; detail: RegExp; user: string }> = [
      { eventId: 'e-null', message: null, outcome: 'malformed', detail: /\(message\): /, user: 'unverified' },
      { eventId: 'e-no-confirm', message: { ...valid, confirm: undefined }, outcome: 'malformed', detail: /confirm: confirm must be true/, user: 'unverified' },
      { eventId: 'e-confirm-false', message: { ...valid, confirm: false }, outcome: 'malformed', detail: /confirm: confirm must be true/, user: 'unverified' },
      { eventId: 'e-no-reason', message: { ...valid, reason: '  ' }, outcome: 'malformed', detail: /reason: reason must not be empty/, user: 'unverified' },
      { eventId: 'e-both', message: { ...valid, migrationId: tradesV2.id }, outcome: 'malformed', detail: /migrationId: name exactly one of migrationId/, user: 'unverified' },
      { eventId: 'e-extra', message: { ...valid, execute: true }, outcome: 'malformed', detail: /Unrecognized key/, user: 'unverified' },
      { eventId: 'e-bad-token', message: { ...valid, idToken: 'forged-token' }, outcome: 'unauthenticated', detail: /auth\/argument-error/, user: 'unverified' },
      { eventId: 'e-revoked', message: { ...valid, idToken: 'revoked-admin-token' }, outcome: 'unauthenticated', detail: /auth\/id-token-revoked/, user: 'unverified' },
      { eventId: 'e-broken', message: { ...valid, idToken: 'broken-token' }, outcome: 'verification-failed', detail: /could not be verified/, user: 'unverified' },
      { eventId: 'e-viewer', message: { ...valid, idToken: 'viewer-token' }, outcome: 'forbidden', detail: /migrationAdmin claim/, user: 'viewer@example.com' },
      { eventId: 'e-no-run', message: { ...valid, runId: '20200101-000000-000000' }, outcome: 'unknown-target', detail: /was not found/, user: 'admin@example.com' },
      { eventId: 'e-no-migration', message: { ...valid, runId: undefined, migrationId: 'nope' }, outcome: 'unknown-target', detail: /"nope" is not deployed/, user: 'admin@example.com' },
    ];
    const originals = await rawCollections(db, wire, ['trades']);
    for (const { eventId, message, outcome, detail } of cases) {
      const result = await handleRollbackRequest(deps, eventId, message);
      expect({ eventId, result }).toEqual({ eventId, result: { outcome, detail: expect.stringMatching(detail), rollbackRunId: null } });
      expect(await eventDoc(eventId)).toMatchObject({ eventId, outcome, detail: result.detail, rollbackRunId: null });
      // Redelivered, it is not even parsed again.
      expect((await handleRollbackRequest(deps, eventId, message)).outcome).toBe('duplicate');
    }
    // A request for a migration another run holds is refused by the engine, recorded the same way.
    const held = { holder: 'another-host/1/abc', expiresAt: new Date(Date.now() + 60_000) };
    await db.doc(paths.migration(tradesV2.id)).update({ activeRunId: '20260101-000000-aaaaaa', lease: held });
    const leaseRefusal = await handleRollbackRequest(deps, 'e-held', valid);
    expect(leaseRefusal).toMatchObject({ outcome: 'refused', detail: expect.stringMatching(/is being run by run 20260101-000000-aaaaaa/) });

    await queue.idle();
    expect(await rollbackRuns(tradesV2.id)).toEqual([]);
    const after = await rawCollections(db, wire, ['trades']);
    expect([...after.keys()]).toEqual([...originals.keys()]);
    for (const [path, fields] of after) expect(canonical(fields)).toBe(canonical(originals.get(path)!));
    expect((await new RunStore(db, paths).get(tradesV2.id, source)).status).toBe('completed');

    const recorded = await refusals();
    expect(recorded.map((event) => [event.details.eventId, event.details.outcome, event.user]).sort()).toEqual(
      [...cases.map(({ eventId, outcome, user }) => [eventId, outcome, user]), ['e-held', 'refused', 'admin@example.com']].sort(),
    );
    expect(recorded.every((event) => event.details.via === 'pubsub' && event.runId === null)).toBe(true);
    const stored = JSON.stringify([...(await dumpDatabase(db, wire)).values()]);
    const logged = logLines.join('\n');
    for (const token of ['admin-token', 'viewer-token', 'forged-token', 'revoked-admin-token']) {
      expect(stored.includes(token)).toBe(false);
      expect(logged.includes(token)).toBe(false);
    }
    expect(logLines.filter((line) => line.includes('"severity":"ERROR"') && line.includes('refused')).length).toBe(cases.length + 1);
  });

  it('an event id that cannot name a document is refused in the log and the audit trail', async () => {
    const result = await handleRollbackRequest(deps, 'bad/id', { idToken: 'admin-token', migrationId: tradesV2.id, confirm: true, reason: 'r' });
    expect(result.outcome).toBe('malformed');
    expect(verifier.calls).toEqual([]);
    expect((await refusals()).map((event) => event.details)).toEqual([{ eventId: 'bad/id', outcome: 'malformed', via: 'pubsub' }]);
  });
});
