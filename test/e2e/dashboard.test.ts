/**
 * The operator dashboard end to end, in a real browser (Debian's Chromium driven by
 * playwright-core) against the emulator suite:
 * - the page is served by the `api` function, signs in with the Auth emulator, and loads nothing
 *   from beyond 127.0.0.1 / localhost;
 * - an admin starts an executed tradeya-trades-v2 run over 600 demo trades from the page, watches
 *   its progress reach 100 % (a screenshot mid-run goes to docs/dashboard-mid-run.png), sees the
 *   partitions, throughput, batch-latency P95, failures and the health score;
 * - the admin opens the rollback assessment, confirms it with a reason and the typed run id, and
 *   the page shows the run rolled back; every trade is then checked field by field in Firestore;
 * - a viewer sees the page without any action, and the API refuses the viewer an action.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Firestore, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import { deleteApp, initializeApp, type App } from 'firebase-admin/app';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createLogger } from '../../functions/src/cli/log';
import { loadConfig } from '../../functions/src/config';
import { ControlPaths } from '../../functions/src/control/paths';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { DocData } from '../../functions/src/definitions/types';
import { DemoDataset, demoManifest, seedDemoData } from '../../functions/src/demo/seed-data';
import { projectMigrations } from '../../functions/src/migrations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { runHealthCheck } from '../../functions/src/monitor/health-run';
import type { RollbackRunDocument } from '../../functions/src/rollback/rollback-run';
import { expectDemoTradesMigratedOnce } from '../support/demo-trades';
import { E2E_PASSWORD, FINAL_RUN_STATUSES, functionUrl, readRun, resetFirestore, setBackgroundTriggers, signedInUser, suiteProjectId, waitForFinalRun } from './support/suite';

const paths = new ControlPaths();
const SCREENSHOT = join(__dirname, '..', '..', 'docs', 'dashboard-mid-run.png');
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('operator dashboard end to end (Chromium on the emulator suite)', () => {
  const projectId = suiteProjectId();
  const tag = `${process.pid}-${Date.now()}`;
  const seeded = { docs: 600, seed: 47, now: new Date('2026-11-01T10:00:00Z') };
  const dataset = new DemoDataset(seeded);
  const manifest = demoManifest(seeded);
  const registry = createRegistry(projectMigrations);
  const log = createLogger({ format: 'json', write: () => undefined });
  const password = E2E_PASSWORD;
  let admin: App;
  let db: Firestore;
  let userDataDir: string;
  let context: BrowserContext;
  let page: Page;
  let dashboardUrl: string;
  /** Every URL the browser requested: the page must stay on this machine. */
  const requested: string[] = [];
  let adminEmail: string;
  let adminUid: string;
  let runId: string;

  beforeAll(async () => {
    admin = initializeApp({ projectId }, 'e2e-dashboard');
    db = new Firestore({ projectId });
    // The suite's Firestore is shared by the e2e files, which run one at a time (--runInBand): start from nothing.
    await resetFirestore();
    userDataDir = mkdtempSync(join(tmpdir(), 'firemigrate-dashboard-chromium-'));
    context = await chromium.launchPersistentContext(userDataDir, { executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS, viewport: { width: 1280, height: 1400 } });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('request', (request) => void requested.push(request.url()));
    dashboardUrl = await functionUrl('api', '/dashboard/?poll=700');
  });
  afterAll(async () => {
    await context?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
    await resetFirestore();
    await db.terminate();
    await deleteApp(admin);
  });

  const userWith = (claims: Record<string, boolean>, name: string) => signedInUser(admin, claims, `${name}-${tag}@example.com`);

  async function signIn(email: string): Promise<void> {
    await page.goto(dashboardUrl);
    await page.locator('#sign-in input[name=email]').fill(email);
    await page.locator('#sign-in input[name=password]').fill(password);
    await page.locator('#sign-in button[type=submit]').click();
    await page.locator('[data-testid=signed-in-as]').filter({ hasText: email }).waitFor();
  }

  const runOf = (runId: string) => readRun(db, tradesV2.id, runId);
  const waitForFinal = (runId: string, timeoutMs: number) => waitForFinalRun(db, tradesV2.id, runId, timeoutMs);

  async function healthCheck(): Promise<{ score: number; status: string }> {
    const { snapshot } = await runHealthCheck({ db, paths, config: loadConfig({}), registry, alerts: { publish: async () => 'not-published' }, stallAfterMs: 3_600_000, log, indexes: null });
    return { score: snapshot.score, status: snapshot.status.toLowerCase() };
  }

  it('an admin signs in, executes a run from the page and watches it reach 100 %, with its figures and the health score', async () => {
    await setBackgroundTriggers(false);
    try {
      await seedDemoData(db, seeded);
    } finally {
      await setBackgroundTriggers(true);
    }
    ({ email: adminEmail, uid: adminUid } = await userWith({ migrationAdmin: true }, 'dashboard-admin'));
    const baseline = await healthCheck();

    await signIn(adminEmail);
    await expectText('[data-testid=role]', 'admin');
    await page.locator('[data-testid=health-score]').and(page.locator(`[data-score="${baseline.score}"]`)).waitFor();
    await page.locator('[data-testid=mode] [data-mode]').waitFor();

    await page.locator(`tr[data-migration-id="${tradesV2.id}"] button[data-action=start][data-execute=true]`).click();
    const notice = page.locator('[data-testid=notice]').filter({ hasText: /^Run \S+ started\.$/ });
    await notice.waitFor();
    runId = /^Run (\S+) started\.$/.exec((await notice.textContent())!)![1];
    const runPanel = page.locator(`[data-testid=run][data-run-id="${runId}"]`);
    await runPanel.waitFor();

    // The screenshot: the first poll showing the run between 30 and 90 % (else the first showing it
    // part-way, else the first showing it running). After the first part-way screenshot a health
    // check runs, so the timeline has a point taken mid-run.
    const progress = runPanel.locator('[data-testid=run-progress]');
    let midRun = false;
    let shotInRange = false;
    let shotRunning = false;
    let lastPercent = Number.NaN;
    const deadline = Date.now() + 150_000;
    const screenshot = async () => {
      mkdirSync(join(SCREENSHOT, '..'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    };
    for (;;) {
      const status = await runPanel.getAttribute('data-status');
      const percent = Number((await progress.getAttribute('data-percent')) || 'NaN');
      if (percent > 0 && percent < 100 && percent !== lastPercent) {
        if (!midRun) {
          await screenshot();
          midRun = true;
          await healthCheck();
        }
        if (!shotInRange && percent >= 30 && percent < 90) {
          await screenshot();
          shotInRange = true;
        }
      } else if (!midRun && !shotRunning && status === 'running') {
        await screenshot();
        shotRunning = true;
      }
      lastPercent = percent;
      if (status === 'completed' && percent === 100) break;
      if (status && FINAL_RUN_STATUSES.includes(status) && status !== 'completed') throw new Error(`the page shows run ${runId} ${status}`);
      if (Date.now() > deadline) throw new Error(`the page shows run ${runId} ${status} at ${percent} % after 150 s`);
      await sleep(150);
    }
    expect(midRun || shotRunning).toBe(true);
    process.stdout.write(`dashboard e2e: screenshot ${SCREENSHOT} taken ${shotInRange ? 'between 30 and 90 %' : midRun ? 'part-way through the run' : 'while the run was running'}\n`);

    // Firestore: the run completed and migrated every legacy trade once, field by field.
    const run = await waitForFinal(runId, 30_000);
    expect({ status: run.status, user: run.user, identity: run.identity, mode: run.mode }).toEqual({
      status: 'completed',
      user: adminEmail,
      identity: `firebase-auth/${adminUid} <${adminEmail}>`,
      mode: 'execute',
    });
    await expectDemoTradesMigratedOnce(db, seeded, [runId]);

    // What the page shows agrees with the control data.
    const total = run.totals!.targetDocuments;
    expect(total).toBe(seeded.docs);
    const markers = await db.collection(paths.batches(tradesV2.id, runId)).get();
    // Processed counts every marker's documents: the final sweep reads some trades again (already at target).
    const processed = markers.docs.reduce((sum, doc) => sum + ['migrated', 'skipped', 'alreadyMigrated', 'failed'].reduce((n, field) => n + (doc.get(field) as number), 0), 0);
    expect(processed).toBeGreaterThanOrEqual(seeded.docs);
    await expect(progress.getAttribute('data-processed')).resolves.toBe(String(processed));
    await expect(progress.getAttribute('data-total')).resolves.toBe(String(total));
    const partitionDocs = await db.collection(paths.partitions(tradesV2.id, runId)).get();
    await expect(runPanel.locator('[data-testid=partitions] tbody tr').count()).resolves.toBe(partitionDocs.size);
    const latencies = markers.docs.map((doc) => doc.get('latencyMs') as number).sort((a, b) => a - b);
    const p95 = latencies[Math.ceil(0.95 * latencies.length) - 1];
    await expectText('[data-testid=latency-p95]', `P95 ${p95.toLocaleString('en-US', { maximumFractionDigits: 0 })} ms`);
    const malformed = manifest.trades.malformed.missingCreator + manifest.trades.malformed.skillsNotArray;
    await expectText('[data-testid=failure-count]', String(malformed));
    const failurePaths = (await db.collection(paths.failures(tradesV2.id, runId)).get()).docs.map((doc) => doc.get('path') as string).sort();
    const listed = (await runPanel.locator('[data-testid=failures] tbody tr td:first-child').allTextContents()).sort();
    expect(listed).toEqual(failurePaths.slice(0, 50));
    await expect(runPanel.locator('[data-testid=throughput-chart] svg').count()).resolves.toBe(markers.size > 1 ? 1 : 0);
    await expect(page.locator(`[data-run-row="${runId}"]`).getAttribute('data-status')).resolves.toBe('completed');
    await expectText(`[data-run-row="${runId}"] td:nth-child(5)`, adminEmail);

    // A health check after the run: the page shows its score, and the timeline every snapshot.
    const after = await healthCheck();
    await page.locator('[data-testid=health-score]').and(page.locator(`[data-score="${after.score}"]`)).waitFor();
    await page.locator(`[data-testid=health-status] [data-status="${after.status}"]`).waitFor();
    // Three snapshots: before the run, part-way (when the page showed it part-way) and after it.
    await expect(page.locator('[data-testid=health-timeline] circle').count()).resolves.toBe(midRun ? 3 : 2);
  }, 240_000);

  it('the admin opens the rollback assessment, confirms with a reason and the run id, and the page shows the run rolled back', async () => {
    expect(runId).toBeDefined();
    const legacy = Array.from({ length: seeded.docs }, (_, index) => dataset.trade(index)).filter((trade) => trade.case.kind === 'legacy');
    await page.locator(`a[data-action=select-run][data-run-id="${runId}"]`).first().click();
    await page.locator('[data-testid=run-actions] button[data-action=assess-rollback]').click();
    const assessment = page.locator('[data-testid=rollback-assessment]');
    await assessment.waitFor();
    await expectText('[data-testid=rollback-total]', legacy.length.toLocaleString('en-US'));
    await expectText('[data-testid=rollback-to-restore]', legacy.length.toLocaleString('en-US'));
    await expectText('[data-testid=rollback-conflicts]', '0');
    await assessment.locator('[data-testid=rollback-impact]').waitFor({ state: 'attached' });

    // Assessing wrote nothing: no rollback run yet.
    expect((await db.collection(paths.runs(tradesV2.id)).get()).docs.map((doc) => doc.id)).toEqual([runId]);

    const confirm = assessment.locator('button[data-action=confirm-rollback]');
    const reason = 'e2e dashboard: undo the trades run';
    await assessment.locator('input[name=reason]').fill(reason);
    await expect(confirm.isDisabled()).resolves.toBe(true);
    await assessment.locator('input[name=confirmation]').fill(`${runId}x`);
    await expect(confirm.isDisabled()).resolves.toBe(true);
    await assessment.locator('input[name=confirmation]').fill(runId);
    await expect(confirm.isDisabled()).resolves.toBe(false);
    await confirm.click();
    const started = page.locator('[data-testid=rollback-started]');
    await started.waitFor();
    const rollbackRunId = (await started.getAttribute('data-rollback-run-id'))!;

    await page.locator(`[data-testid=run][data-run-id="${runId}"][data-status=rolled_back]`).waitFor({ timeout: 150_000 });
    await page.locator(`[data-run-row="${rollbackRunId}"][data-status=completed]`).waitFor({ timeout: 30_000 });

    // Firestore: the rollback run, the source run and the migration, then every trade as seeded.
    const rollbackRun = (await waitForFinal(rollbackRunId, 30_000)) as RollbackRunDocument;
    expect({
      kind: rollbackRun.kind,
      status: rollbackRun.status,
      user: rollbackRun.user,
      identity: rollbackRun.identity,
      reason: rollbackRun.reason,
      sourceRuns: rollbackRun.rollback.sourceRuns,
      validationOk: rollbackRun.rollback.validation?.ok,
    }).toEqual({
      kind: 'rollback',
      status: 'completed',
      user: adminEmail,
      identity: `firebase-auth/${adminUid} <${adminEmail}>`,
      reason,
      sourceRuns: [runId],
      validationOk: true,
    });
    expect(rollbackRun.rollback.rollbackTotals).toMatchObject({ restored: legacy.length, conflicts: 0, forced: 0, missingDocuments: 0, missingBackups: 0, failed: 0 });
    const source = await runOf(runId);
    expect({ status: source.status, reason: source.statusReason }).toEqual({ status: 'rolled_back', reason: `rolled back by run ${rollbackRunId} (restore)` });
    expect((await db.doc(paths.migration(tradesV2.id)).get()).get('status')).toBe('rolled_back');

    const stored = new Map<string, DocData>();
    for await (const snapshot of db.collection('trades').stream() as AsyncIterable<QueryDocumentSnapshot>) stored.set(snapshot.id, snapshot.data());
    expect(stored.size).toBe(seeded.docs);
    for (let index = 0; index < seeded.docs; index++) {
      const trade = dataset.trade(index);
      expect({ id: trade.id, data: stored.get(trade.id) }).toEqual({ id: trade.id, data: trade.data });
    }
    const atTarget = (await db.collection('trades').where('schemaVersion', '==', '2.0').count().get()).data().count;
    expect(atTarget).toBe(manifest.trades.alreadyV2);
  }, 240_000);

  it('a viewer sees the runs and health without any action, and the API refuses the viewer an action', async () => {
    expect(runId).toBeDefined();
    await page.locator('#sign-out').click();
    await page.locator('#sign-in-panel').waitFor();
    const viewer = await userWith({ migrationViewer: true }, 'dashboard-viewer');
    await signIn(viewer.email);
    await expectText('[data-testid=role]', 'viewer');
    await page.locator(`[data-run-row="${runId}"][data-status=rolled_back]`).waitFor();
    await page.locator(`[data-testid=run][data-run-id]`).waitFor();
    await page.locator('[data-testid=health-score]').waitFor();
    await expect(page.locator('button[data-action]').count()).resolves.toBe(0);

    // The same route the page's Execute button calls, resolved from the page's own URL.
    const runsUrl = new URL('../migration/runs', page.url()).href;
    const refused = await fetch(runsUrl, {
      method: 'POST',
      headers: { authorization: `Bearer ${viewer.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ migrationId: tradesV2.id, execute: true }),
    });
    expect(refused.status).toBe(403);
    expect(((await refused.json()) as { requiredClaim: string }).requiredClaim).toBe('migrationAdmin');

    // Nothing the page loaded came from beyond this machine (no CDN fonts or scripts).
    const offHost = requested.filter((url) => !/^(https?|wss?):\/\/(127\.0\.0\.1|localhost)(:\d+)?\//.test(url) && !url.startsWith('data:'));
    expect(offHost).toEqual([]);
    expect(requested.length).toBeGreaterThan(0);
  }, 120_000);

  async function expectText(selector: string, text: string): Promise<void> {
    const locator = page.locator(selector).first();
    const deadline = Date.now() + 20_000;
    let seen = await locator.textContent();
    while (seen?.trim() !== text) {
      if (Date.now() > deadline) throw new Error(`${selector} shows ${JSON.stringify(seen)}, expected ${JSON.stringify(text)}`);
      await sleep(200);
      seen = await locator.textContent();
    }
  }
});
