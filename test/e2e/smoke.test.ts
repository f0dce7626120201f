import { Firestore } from '@google-cloud/firestore';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { functionUrl, restCall, runningEmulators, suiteProjectId, suiteVariable } from './support/suite';

// Names unique to this run, so a second run against a long-lived suite (npm run serve) cannot collide.
const runId = `${process.pid}-${Date.now()}`;

describe('the emulator suite: auth, firestore, functions, pubsub, tasks', () => {
  const projectId = suiteProjectId();
  let admin: App;

  beforeAll(() => {
    admin = initializeApp({ projectId }, 'e2e-smoke');
  });
  afterAll(() => deleteApp(admin));

  test('the hub lists every emulator of the suite', async () => {
    const emulators = await runningEmulators();
    expect(Object.keys(emulators)).toEqual(
      expect.arrayContaining(['auth', 'firestore', 'functions', 'pubsub', 'tasks']),
    );
  });

  test('Auth: a user signed up over REST gets an ID token the Admin SDK verifies, revocation included', async () => {
    const email = `e2e-${runId}@example.com`;
    const identityToolkit = `http://${suiteVariable('FIREBASE_AUTH_EMULATOR_HOST')}/identitytoolkit.googleapis.com/v1`;
    const signUp = await restCall<{ idToken: string; localId: string; email: string }>(
      'POST',
      `${identityToolkit}/accounts:signUp?key=e2e-api-key`,
      { email, password: 'e2e-password', returnSecureToken: true },
    );
    expect(signUp.email).toBe(email);

    const decoded = await getAuth(admin).verifyIdToken(signUp.idToken, true);
    expect(decoded.uid).toBe(signUp.localId);
    expect(decoded.email).toBe(email);
    expect(decoded.aud).toBe(projectId);
    expect(decoded.firebase.sign_in_provider).toBe('password');
  });

  test('Functions: GET /api/migration/health answers 200 with status operational', async () => {
    const response = await fetch(await functionUrl('api', '/migration/health'));
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ status: 'operational' });
  });

  test('Firestore: a document written to the emulator reads back field by field', async () => {
    const db = new Firestore({ projectId }); // FIRESTORE_EMULATOR_HOST comes from emulators:exec
    try {
      const ref = db.collection('e2eSmoke').doc(runId);
      await ref.set({ name: 'smoke', count: 3, nested: { ok: true } });
      const snapshot = await ref.get();
      expect(snapshot.exists).toBe(true);
      expect(snapshot.get('name')).toBe('smoke');
      expect(snapshot.get('count')).toBe(3);
      expect(snapshot.get('nested.ok')).toBe(true);
    } finally {
      await db.terminate();
    }
  });

  test('Pub/Sub: a message published over REST is pulled with its data and attributes', async () => {
    const api = `http://${suiteVariable('PUBSUB_EMULATOR_HOST')}/v1`;
    const topic = `projects/${projectId}/topics/e2e-smoke-${runId}`;
    const subscription = `projects/${projectId}/subscriptions/e2e-smoke-${runId}`;
    await restCall('PUT', `${api}/${topic}`, {});
    await restCall('PUT', `${api}/${subscription}`, { topic, ackDeadlineSeconds: 10 });

    const payload = { runId, kind: 'smoke' };
    const published = await restCall<{ messageIds: string[] }>('POST', `${api}/${topic}:publish`, {
      messages: [{ data: Buffer.from(JSON.stringify(payload)).toString('base64'), attributes: { source: 'e2e' } }],
    });
    expect(published.messageIds).toHaveLength(1);

    const received = await pullOne(api, subscription);
    expect(received.message.messageId).toBe(published.messageIds[0]);
    expect(JSON.parse(Buffer.from(received.message.data, 'base64').toString('utf8'))).toEqual(payload);
    expect(received.message.attributes).toEqual({ source: 'e2e' });
    await restCall('POST', `${api}/${subscription}:acknowledge`, { ackIds: [received.ackId] });
  });
});

interface ReceivedMessage {
  ackId: string;
  message: { messageId: string; data: string; attributes?: Record<string, string> };
}

/** Pulls until the subscription hands out a message (a pull may come back empty right after publishing). */
async function pullOne(api: string, subscription: string): Promise<ReceivedMessage> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    const pulled = await restCall<{ receivedMessages?: ReceivedMessage[] }>('POST', `${api}/${subscription}:pull`, {
      maxMessages: 10,
    });
    const messages = pulled.receivedMessages ?? [];
    if (messages.length > 1) throw new Error(`expected one message on ${subscription}, pulled ${messages.length}`);
    if (messages.length === 1) return messages[0];
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`no message arrived on ${subscription} within 20 s`);
}
