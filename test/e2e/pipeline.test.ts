import { Firestore } from '@google-cloud/firestore';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { ControlPaths } from '../../functions/src/control/paths';
import type { RunDocument } from '../../functions/src/control/runs';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { expectDemoTradesMigratedOnce } from '../support/demo-trades';
import { functionUrl, resetFirestore, setBackgroundTriggers, signedInUser, suiteProjectId } from './support/suite';

const FINAL = ['completed', 'failed', 'aborted', 'paused', 'emergency_stopped'];

describe('pipeline end to end: HTTP start → planRun task → migrateBatch tasks → completed', () => {
  const projectId = suiteProjectId();
  const tag = `${process.pid}-${Date.now()}`;
  let admin: App;
  let db: Firestore;

  beforeAll(() => {
    admin = initializeApp({ projectId }, 'e2e-pipeline');
    db = new Firestore({ projectId });
  });
  // The suite's Firestore is shared by the e2e files, which run one at a time: start from nothing.
  beforeAll(resetFirestore);
  afterAll(async () => {
    await db.terminate();
    await deleteApp(admin);
  });

  /** An Auth-emulator user with the migrationAdmin claim, signed in over REST: its ID token carries the claim. */
  async function adminToken(): Promise<string> {
    return (await signedInUser(admin, { migrationAdmin: true }, `pipeline-${tag}@example.com`)).token;
  }

  it('an admin starts an executed run over HTTPS and the Tasks emulator drives it to completion', async () => {
    const seeded = { docs: 300, seed: 23, now: new Date('2026-11-01T10:00:00Z') };
    // The dual-read sync triggers stay off while seeding: their events for the seeded trades would
    // otherwise arrive once planning has set dual-read, and migrate trades outside this run.
    await setBackgroundTriggers(false);
    try {
      await seedDemoData(db, seeded);
    } finally {
      await setBackgroundTriggers(true);
    }
    const token = await adminToken();

    const response = await fetch(await functionUrl('api', '/migration/runs'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ migrationId: tradesV2.id, execute: true, reason: 'e2e pipeline' }),
    });
    const body = (await response.json()) as { runId: string; status: string };
    expect(response.status).toBe(202);
    expect(body.status).toBe('planning');

    const runRef = db.doc(new ControlPaths().run(tradesV2.id, body.runId));
    const deadline = Date.now() + 150_000;
    let run = (await runRef.get()).data() as RunDocument;
    while (!FINAL.includes(run.status) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 500));
      run = (await runRef.get()).data() as RunDocument;
    }
    expect({ status: run.status, reason: run.statusReason }).toEqual({ status: 'completed', reason: null });
    expect(run.user).toBe(`pipeline-${tag}@example.com`);
    await expectDemoTradesMigratedOnce(db, seeded, [body.runId]);
  });
});
