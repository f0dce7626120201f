/**
 * End to end through the emulator suite: rollback requests on the `migration-rollback` topic.
 * - An executed run of tradeya-trades-v2 over 200 demo trades, started over HTTP by an admin and
 *   driven to completion by the Tasks emulator.
 * - Messages that must not start a rollback — not JSON, the wrong shape, no token, two forged
 *   tokens, a viewer's token, an admin's token without `confirm: true` — are each handled and
 *   recorded as refused (their `rollback-requests` event document and one audit event), and
 *   change nothing: no rollback run, the migrate run, the registry entry and every trade as before.
 * - An authorised message: the deployed `onRollbackRequest` creates the rollback run and the
 *   Tasks emulator runs its `rollbackBatch` chain to completion; every trade is back to its
 *   seeded state at the Firestore value level (typed values, read over the REST API), the migrate
 *   run and the migration are `rolled_back`, and the request is recorded once.
 *
 * The emulator names each CloudEvent with a fresh uuid (not the Pub/Sub message id) and acks
 * every message whatever the function does, so a redelivery of one event cannot be staged here:
 * the test publishes one message at a time and attributes the one new event document to it.
 */
import { createSign, generateKeyPairSync } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import { PubSub, type Topic } from '@google-cloud/pubsub';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import type { StoredAuditEvent } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import type { DocData } from '../../functions/src/definitions/types';
import { DemoDataset, demoManifest, seedDemoData } from '../../functions/src/demo/seed-data';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import type { RollbackRequestEvent, RollbackRequestOutcome } from '../../functions/src/pipeline/rollback-request';
import type { RollbackRunDocument } from '../../functions/src/rollback/rollback-run';
import { TOPICS } from '../../functions/src/transports/names';
import { expectDemoTradesMigratedOnce } from '../support/demo-trades';
import { functionUrl, readRun, resetFirestore, setBackgroundTriggers, signedInUser, suiteProjectId, suiteVariable, waitForFinalRun } from './support/suite';

const paths = new ControlPaths();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A REST document's typed fields (integerValue vs doubleValue, timestampValue with its micros): what "exact" means. */
type RawFields = Record<string, unknown>;

/** Every trade's typed fields by id, over the emulator's REST API as the owner (no rules). */
async function rawTrades(projectId: string): Promise<Map<string, RawFields>> {
  const byId = new Map<string, RawFields>();
  let pageToken = '';
  do {
    const url = `http://${suiteVariable('FIRESTORE_EMULATOR_HOST')}/v1/projects/${projectId}/databases/(default)/documents/trades?pageSize=300${pageToken ? `&pageToken=${encodeURIComponent(pageToken)}` : ''}`;
    const response = await fetch(url, { headers: { authorization: 'Bearer owner' } });
    if (!response.ok) throw new Error(`GET ${url} answered HTTP ${response.status}: ${await response.text()}`);
    const page = (await response.json()) as { documents?: Array<{ name: string; fields?: RawFields }>; nextPageToken?: string };
    for (const doc of page.documents ?? []) byId.set(doc.name.slice(doc.name.lastIndexOf('/') + 1), doc.fields ?? {});
    pageToken = page.nextPageToken ?? '';
  } while (pageToken);
  return byId;
}

function base64url(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

/** The claims of a Firebase ID token for `projectId` (issuer, audience, times), as the Auth emulator issues them. */
function idTokenClaims(projectId: string, uid: string, email: string, extra: Record<string, unknown>): Record<string, unknown> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: `https://securetoken.google.com/${projectId}`,
    aud: projectId,
    auth_time: now,
    user_id: uid,
    sub: uid,
    iat: now,
    exp: now + 3600,
    email,
    email_verified: false,
    firebase: { identities: { email: [email] }, sign_in_provider: 'password' },
    ...extra,
  };
}

describe('rollback requests end to end: migration-rollback → onRollbackRequest → rollbackBatch tasks', () => {
  const projectId = suiteProjectId();
  const tag = `${process.pid}-${Date.now()}`;
  const seeded = { docs: 200, seed: 31, now: new Date('2026-11-01T10:00:00Z') };
  const dataset = new DemoDataset(seeded);
  let admin: App;
  let db: Firestore;
  let pubsub: PubSub;
  let topic: Topic;
  let adminUser: { uid: string; email: string; token: string };
  /** Typed fields of every trade before the migrate run, and after it. */
  let beforeRun: Map<string, RawFields>;
  let afterRun: Map<string, RawFields>;
  let migrateRunId: string;
  /** Event documents already attributed to a published message. */
  const seenEvents = new Set<string>();
  let refusals = 0;

  beforeAll(async () => {
    admin = initializeApp({ projectId }, 'e2e-rollback-request');
    db = new Firestore({ projectId });
    pubsub = new PubSub({ projectId });
    topic = pubsub.topic(TOPICS.rollback);
    // The suite's Firestore is shared by the e2e files, which run one at a time (--runInBand): start from nothing.
    await resetFirestore();
  });
  afterAll(async () => {
    await resetFirestore();
    await pubsub.close();
    await db.terminate();
    await deleteApp(admin);
  });

  async function userWith(claims: Record<string, boolean>, name: string): Promise<{ uid: string; email: string; token: string }> {
    return signedInUser(admin, claims, `${name}-${tag}@example.com`);
  }

  const runOf = (runId: string) => readRun(db, tradesV2.id, runId);
  const waitForFinal = (runId: string, timeoutMs: number) => waitForFinalRun(db, tradesV2.id, runId, timeoutMs);

  /**
   * Publishes one message and waits for the one event document `onRollbackRequest` records for
   * it, handled (no longer `processing`). Messages are published one at a time, so the only new
   * event document is this message's.
   */
  async function publishAndAwaitRecord(message: { data: Buffer } | { json: unknown }, timeoutMs = 60_000): Promise<RollbackRequestEvent> {
    await topic.publishMessage(message);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const fresh = (await db.collection(paths.rollbackRequestEvents()).get()).docs.filter((doc) => !seenEvents.has(doc.id));
      expect(fresh.length).toBeLessThanOrEqual(1);
      if (fresh.length === 1 && fresh[0].get('outcome') !== 'processing') {
        seenEvents.add(fresh[0].id);
        const record = fresh[0].data() as RollbackRequestEvent;
        expect(record.eventId).toBe(fresh[0].id);
        return record;
      }
      if (Date.now() > deadline) throw new Error(`onRollbackRequest recorded no handled event within ${timeoutMs} ms`);
      await sleep(200);
    }
  }

  /** The record says refused with `outcome`; one audit event says the same; no token is stored in either. */
  async function expectRefused(record: RollbackRequestEvent, outcome: RollbackRequestOutcome, detail: RegExp, who: { user: string; identity: string }): Promise<void> {
    refusals++;
    expect({ outcome: record.outcome, detail: record.detail, rollbackRunId: record.rollbackRunId, handled: record.handledAt !== null }).toEqual({
      outcome,
      detail: expect.stringMatching(detail),
      rollbackRunId: null,
      handled: true,
    });
    const events = (await db.collection(paths.audit()).where('details.eventId', '==', record.eventId).get()).docs.map((doc) => doc.data() as StoredAuditEvent);
    expect(events).toEqual([
      expect.objectContaining({
        action: 'rollback.request-refused',
        migrationId: null,
        runId: null,
        user: who.user,
        identity: who.identity,
        reason: record.detail,
        details: { eventId: record.eventId, outcome, via: 'pubsub' },
      }),
    ]);
    expect(JSON.stringify(record)).not.toContain(adminUser.token);
    expect(JSON.stringify(events)).not.toContain(adminUser.token);
  }

  const unverified = { user: 'unverified', identity: 'unverified pubsub publisher' };

  it('setup: an admin runs tradeya-trades-v2 over HTTP on 200 demo trades; the Tasks emulator completes it', async () => {
    // The dual-read sync triggers stay off while seeding (one invocation per seeded document otherwise).
    await setBackgroundTriggers(false);
    try {
      await seedDemoData(db, seeded);
    } finally {
      await setBackgroundTriggers(true);
    }
    beforeRun = await rawTrades(projectId);
    expect(beforeRun.size).toBe(seeded.docs);
    adminUser = await userWith({ migrationAdmin: true }, 'rollback-admin');

    const response = await fetch(await functionUrl('api', '/migration/runs'), {
      method: 'POST',
      headers: { authorization: `Bearer ${adminUser.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ migrationId: tradesV2.id, execute: true, reason: 'e2e rollback request: the run to undo' }),
    });
    const body = (await response.json()) as { runId: string };
    expect(response.status).toBe(202);
    migrateRunId = body.runId;
    const run = await waitForFinal(migrateRunId, 150_000);
    expect({ kind: run.kind, status: run.status, reason: run.statusReason }).toEqual({ kind: 'migrate', status: 'completed', reason: null });
    await expectDemoTradesMigratedOnce(db, seeded, [migrateRunId]);
    afterRun = await rawTrades(projectId);
    // The comparisons after the rollback are not vacuous: the run changed exactly the legacy trades' typed fields.
    const changed = [...afterRun].filter(([id, fields]) => !isDeepStrictEqual(fields, beforeRun.get(id))).map(([id]) => id).sort();
    const legacyIds = Array.from({ length: seeded.docs }, (_, index) => dataset.trade(index)).filter((trade) => trade.case.kind === 'legacy').map((trade) => trade.id).sort();
    expect(changed).toEqual(legacyIds);
  }, 200_000);

  it('unauthorised and malformed requests are each recorded as refused and change nothing', async () => {
    expect(migrateRunId).toBeDefined();
    const viewer = await userWith({ migrationViewer: true }, 'rollback-viewer');
    const runBefore = await runOf(migrateRunId);
    const entryBefore = (await db.doc(paths.migration(tradesV2.id)).get()).data();
    const unconfirmed = { migrationId: tradesV2.id, reason: 'e2e: must be refused', user: 'on-call-e2e' };
    const request = { ...unconfirmed, confirm: true };

    // Not JSON: the function reads no message at all.
    await expectRefused(await publishAndAwaitRecord({ data: Buffer.from('{ not json') }), 'malformed', /^the message is not a rollback request: \(message\): /, unverified);
    // The wrong shape: unknown keys, no token, no confirmation, no reason.
    await expectRefused(
      await publishAndAwaitRecord({ json: { rollback: 'everything', migrationId: tradesV2.id } }),
      'malformed',
      /^the message is not a rollback request: (?=.*idToken: )(?=.*confirm: )(?=.*reason: )(?=.*\(message\): )/,
      unverified,
    );
    // No token.
    await expectRefused(await publishAndAwaitRecord({ json: request }), 'malformed', /^the message is not a rollback request: idToken: [^;]*$/, unverified);

    // Forged: the admin's identity and claim in a token signed with a key of the forger's own
    // (rejected by the emulator's verifier, which accepts unsigned tokens only, as by Google's keys in production).
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const unsigned = `${base64url({ alg: 'RS256', kid: 'forged-key', typ: 'JWT' })}.${base64url(idTokenClaims(projectId, adminUser.uid, adminUser.email, { migrationAdmin: true }))}`;
    const selfSigned = `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(privateKey).toString('base64url')}`;
    await expectRefused(await publishAndAwaitRecord({ json: { ...request, idToken: selfSigned } }), 'unauthenticated', /^the ID token was rejected \(auth\/argument-error\)$/, unverified);
    // Forged: an unsigned token (the emulator's format) with the admin claim for a user that does not
    // exist — the revocation check looks the user up.
    const ghost = `${base64url({ alg: 'none', typ: 'JWT' })}.${base64url(idTokenClaims(projectId, `ghost-${tag}`, `ghost-${tag}@example.com`, { migrationAdmin: true }))}.`;
    await expectRefused(await publishAndAwaitRecord({ json: { ...request, idToken: ghost } }), 'unauthenticated', /^the ID token was rejected \(auth\/user-not-found\)$/, unverified);

    // A genuine token without the migrationAdmin claim.
    await expectRefused(
      await publishAndAwaitRecord({ json: { ...request, idToken: viewer.token } }),
      'forbidden',
      /^the ID token does not carry the migrationAdmin claim/,
      { user: viewer.email, identity: `firebase-auth/${viewer.uid} <${viewer.email}>` },
    );

    // An admin's token without the confirmation, then with `confirm: false`.
    await expectRefused(await publishAndAwaitRecord({ json: { ...unconfirmed, idToken: adminUser.token } }), 'malformed', /^the message is not a rollback request: confirm: [^;]*$/, unverified);
    await expectRefused(
      await publishAndAwaitRecord({ json: { ...request, confirm: false, idToken: adminUser.token } }),
      'malformed',
      /^the message is not a rollback request: confirm: confirm must be true: a rollback request is an explicit confirmation$/,
      unverified,
    );

    // No effect: no rollback run, the migrate run and the registry entry as they were, every trade as migrated.
    const runs = (await db.collection(paths.runs(tradesV2.id)).get()).docs.map((doc) => ({ runId: doc.id, kind: doc.get('kind') as string }));
    expect(runs).toEqual([{ runId: migrateRunId, kind: 'migrate' }]);
    expect(await runOf(migrateRunId)).toEqual(runBefore);
    expect((await db.doc(paths.migration(tradesV2.id)).get()).data()).toEqual(entryBefore);
    expect(entryBefore).toMatchObject({ status: 'applied', lastRunId: migrateRunId });
    const trades = await rawTrades(projectId);
    expect(trades.size).toBe(seeded.docs);
    for (const [id, fields] of afterRun) expect({ id, fields: trades.get(id) }).toEqual({ id, fields });
    // Every refusal has its one event document, none is left half-handled.
    const records = (await db.collection(paths.rollbackRequestEvents()).get()).docs.map((doc) => doc.get('outcome') as string);
    expect(records.length).toBe(refusals);
    expect(records.filter((outcome) => outcome === 'processing' || outcome === 'dispatched')).toEqual([]);
  }, 180_000);

  it('an admin request with confirm: true rolls the migration back through rollbackBatch tasks: every trade as seeded, exactly', async () => {
    expect(migrateRunId).toBeDefined();
    const record = await publishAndAwaitRecord({
      json: { idToken: adminUser.token, migrationId: tradesV2.id, confirm: true, reason: 'e2e rollback request: undo the trades run', user: 'on-call-e2e' },
    });
    expect(record).toMatchObject({ outcome: 'dispatched', rollbackRunId: expect.any(String), detail: `rollback run ${record.rollbackRunId} (restore)` });
    const rollbackRunId = record.rollbackRunId!;

    const rollbackRun = (await waitForFinal(rollbackRunId, 120_000)) as RollbackRunDocument;
    const legacy = Array.from({ length: seeded.docs }, (_, index) => dataset.trade(index)).filter((trade) => trade.case.kind === 'legacy');
    expect({
      kind: rollbackRun.kind,
      mode: rollbackRun.mode,
      status: rollbackRun.status,
      statusReason: rollbackRun.statusReason,
      user: rollbackRun.user,
      identity: rollbackRun.identity,
      reason: rollbackRun.reason,
      strategy: rollbackRun.rollback.strategy,
      sourceRuns: rollbackRun.rollback.sourceRuns,
      validationOk: rollbackRun.rollback.validation?.ok,
    }).toEqual({
      kind: 'rollback',
      mode: 'execute',
      status: 'completed',
      statusReason: null,
      user: 'on-call-e2e',
      identity: `firebase-auth/${adminUser.uid} <${adminUser.email}>`,
      reason: 'e2e rollback request: undo the trades run',
      strategy: 'restore',
      sourceRuns: [migrateRunId],
      validationOk: true,
    });
    expect(rollbackRun.rollback.rollbackTotals).toMatchObject({ restored: legacy.length, alreadyRestored: 0, conflicts: 0, forced: 0, missingDocuments: 0, missingBackups: 0, failed: 0 });
    // More than one rollbackBatch task ran (ROLLBACK_BATCH_SIZE 50 by default): one marker per batch.
    const markers = await db.collection(paths.batches(tradesV2.id, rollbackRunId)).get();
    expect(markers.size).toBe(rollbackRun.rollback.rollbackTotals!.batches);
    expect(markers.size).toBeGreaterThan(1);

    // The source run and the migration are rolled back.
    const source = await runOf(migrateRunId);
    expect({ status: source.status, reason: source.statusReason }).toEqual({ status: 'rolled_back', reason: `rolled back by run ${rollbackRunId} (restore)` });
    expect((await db.doc(paths.migration(tradesV2.id)).get()).get('status')).toBe('rolled_back');
    const runs = (await db.collection(paths.runs(tradesV2.id)).get()).docs.map((doc) => doc.id).sort();
    expect(runs).toEqual([migrateRunId, rollbackRunId].sort());

    // A few seconds for anything the restores could still set off (the dual-read sync trigger), then
    // every trade field by field: typed values as before the migrate run, and the seeded data.
    await sleep(3000);
    const trades = await rawTrades(projectId);
    expect(trades.size).toBe(seeded.docs);
    for (const [id, fields] of beforeRun) expect({ id, fields: trades.get(id) }).toEqual({ id, fields });
    const stored = new Map<string, DocData>();
    for await (const snapshot of db.collection('trades').stream() as AsyncIterable<QueryDocumentSnapshot>) stored.set(snapshot.id, snapshot.data());
    for (let index = 0; index < seeded.docs; index++) {
      const trade = dataset.trade(index);
      expect({ id: trade.id, data: stored.get(trade.id) }).toEqual({ id: trade.id, data: trade.data });
      if (trade.case.kind === 'legacy') expect({ id: trade.id, schemaVersion: stored.get(trade.id)!.schemaVersion }).toEqual({ id: trade.id, schemaVersion: undefined });
    }
    const atTarget = (await db.collection('trades').where('schemaVersion', '==', '2.0').count().get()).data().count;
    expect(atTarget).toBe(demoManifest(seeded).trades.alreadyV2);

    // The request is recorded once, beside the refusals; the rollback's audit trail names the admin.
    const records = (await db.collection(paths.rollbackRequestEvents()).get()).docs.map((doc) => doc.data() as RollbackRequestEvent);
    expect(records.length).toBe(refusals + 1);
    expect(records.filter((entry) => entry.rollbackRunId !== null)).toEqual([record]);
    const actions = (await db.collection(paths.audit()).where('runId', '==', rollbackRunId).get()).docs
      .map((doc) => doc.data() as StoredAuditEvent)
      .sort((a, b) => a.recordedAt.toMillis() - b.recordedAt.toMillis())
      .map((event) => ({ action: event.action, user: event.user, identity: event.identity }));
    expect(actions.filter((event) => event.action.startsWith('rollback.'))).toEqual([
      { action: 'rollback.started', user: 'on-call-e2e', identity: `firebase-auth/${adminUser.uid} <${adminUser.email}>` },
      { action: 'rollback.completed', user: 'on-call-e2e', identity: `firebase-auth/${adminUser.uid} <${adminUser.email}>` },
    ]);
    const refusedInAudit = (await db.collection(paths.audit()).where('action', '==', 'rollback.request-refused').count().get()).data().count;
    expect(refusedInAudit).toBe(refusals);
  }, 180_000);
});
