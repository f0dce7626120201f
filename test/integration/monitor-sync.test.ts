import { createLogger } from '../../functions/src/cli/log';
import { setMode } from '../../functions/src/compat/modes';
import { handleSyncWrite, type SyncContext } from '../../functions/src/compat/sync-trigger';
import { ControlPaths } from '../../functions/src/control/paths';
import { createRegistry } from '../../functions/src/definitions/registry';
import { DemoDataset, seedDemoData } from '../../functions/src/demo/seed-data';
import { WireClient } from '../../functions/src/engine/wire/client';
import { projectMigrations } from '../../functions/src/migrations';
import { tradesV2 } from '../../functions/src/migrations/tradeya/trades';
import { runHealthCheck } from '../../functions/src/monitor/health-run';
import type { HealthCheck } from '../../functions/src/monitor/types';
import { InProcessAlertBus } from '../../functions/src/transports/in-process-alert-bus';
import { TOPICS } from '../../functions/src/transports/names';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

describeEmulator('health monitor: the dual-read sync trigger keeping up', () => {
  const projectId = 'demo-monitor-sync';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  // Loose latency thresholds: the shared machine's load must not add alerts to the ones under test.
  const config = emulatorConfig({
    MONITOR_SAMPLE_SIZE: '100',
    MONITOR_ALERT_THRESHOLDS: '{"responseTime":{"warning":30000,"critical":60000}}',
  });
  const registry = createRegistry(projectMigrations);
  const log = createLogger({ format: 'json', write: () => undefined });
  const seeded = { docs: 100, seed: 3, now: new Date('2026-11-01T10:00:00Z') };
  const GRACE_MS = 800;

  beforeEach(() => resetProject(projectId));
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  it('counts legacy writes made during dual-read that the trigger has not upgraded after the grace period, and clears as it catches up', async () => {
    await seedDemoData(db, seeded);
    const bus = new InProcessAlertBus({ maxDeliveryAttempts: 1, retryDelayMs: 0 });
    const kinds: string[] = [];
    bus.subscribe(TOPICS.alerts, (message) => {
      kinds.push(`${(message.json as { kind: string }).kind}:${(message.json as { alert?: { metric: string } }).alert?.metric}`);
    });
    const health = async () => {
      const result = await runHealthCheck({ db, paths, config, registry, alerts: bus, stallAfterMs: 300_000, log, indexes: null, migrationIds: [tradesV2.id], syncGraceMs: GRACE_MS });
      await bus.idle();
      return result.snapshot.checks.find((check) => check.name === 'syncTrigger' && check.scope.migrationId === tradesV2.id) as HealthCheck;
    };

    const normal = await health();
    expect(normal).toMatchObject({ status: 'not-checkable', value: null, message: 'not measured: no sync trigger activity (mode normal)' });

    await setMode(db, { mode: 'dual-read', collections: ['trades'], migrations: [tradesV2.id], user: 'ops', reason: 'monitor test' }, paths);
    // Two legacy clients edit legacy trades; no trigger runs in this test until we run it.
    const dataset = new DemoDataset(seeded);
    const legacy = Array.from({ length: seeded.docs }, (_, i) => dataset.trade(i)).filter((trade) => trade.case.kind === 'legacy').slice(0, 2);
    const written = legacy.map((trade) => `trades/${trade.id}`);
    for (const path of written) await db.doc(path).update({ title: 'edited by an old client' });
    await new Promise((resolve) => setTimeout(resolve, GRACE_MS + 200));

    const behind = await health();
    expect(behind).toMatchObject({ status: 'warning', value: 2, threshold: 0 });
    expect(behind.message).toContain('2 of 2 sampled documents written since dual-read began');
    expect(behind.message).toContain(`still in the legacy shape after 1 s: ${[...written].sort().join(', ')}`);
    expect(behind.message).toContain('the trigger has upgraded 0 documents');
    expect(kinds).toEqual(['alert:syncTrigger']);

    const ctx: SyncContext = { db, wire, config, paths, registry, log };
    const upgrade = async (path: string) => {
      const snapshot = await db.doc(path).get();
      const outcome = await handleSyncWrite(ctx, { id: `event-${snapshot.id}`, document: path, after: { exists: true, data: () => snapshot.data() } });
      expect(outcome.action).toBe('applied');
    };
    await upgrade(written[0]);
    const halfway = await health();
    expect(halfway).toMatchObject({ status: 'warning', value: 1 });
    expect(halfway.message).toContain(`after 1 s: ${written[1]};`);
    expect(halfway.message).toContain('the trigger has upgraded 1 documents');
    // Same condition, same severity: not announced again.
    expect(kinds).toEqual(['alert:syncTrigger']);

    await upgrade(written[1]);
    const caughtUp = await health();
    expect(caughtUp).toMatchObject({ status: 'ok', value: 0 });
    expect(caughtUp.message).toContain('0 of 2 sampled documents written since dual-read began');
    expect(caughtUp.message).toContain('the trigger has upgraded 2 documents');
    expect(kinds).toEqual(['alert:syncTrigger', 'resolved:syncTrigger']);
  });
});
