import { Timestamp } from '@google-cloud/firestore';
import { main } from '../../functions/src/cli/main';
import { modeAfterCleanup, modeAfterRollback, modeForCleanupRun, modeForMigrateRun, modeForRollback } from '../../functions/src/compat/mode-policy';
import { getMode, setMode } from '../../functions/src/compat/modes';
import { ControlPaths, MODE_DOCUMENT_PATH } from '../../functions/src/control/paths';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import { describeEmulator, resetProject, testFirestore } from '../support/emulator';

jest.setTimeout(90_000);

const paths = new ControlPaths();
const legacyTrade = (n: number) => ({
  title: `trade ${n}`,
  status: 'open',
  creatorId: `user-${n}`,
  participantId: null,
  offeredSkills: ['guitar'],
  requestedSkills: ['logo'],
  createdAt: Timestamp.fromMillis(Date.UTC(2026, 10, 1) + n),
});

describeEmulator('mode policy: the mode around runs', () => {
  const projectId = 'demo-mode-policy';
  const db = testFirestore(projectId);
  const caller = { user: 'ops', identity: 'emulator' };

  beforeEach(async () => {
    await resetProject(projectId);
    for (let n = 0; n < 5; n++) await db.doc(`trades/t${n}`).set(legacyTrade(n));
  });
  afterAll(() => db.terminate());

  const auditEvents = async () => (await db.collection(paths.audit()).where('action', '==', 'mode.changed').get()).docs.map((doc) => doc.data());

  describe('firemigrate run --execute', () => {
    beforeEach(() => {
      jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
      jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    });
    afterEach(() => {
      jest.restoreAllMocks();
      process.exitCode = undefined;
    });
    const cli = (...args: string[]) => main(['node', 'firemigrate', '--project', projectId, '--user', 'ops-oncall', ...args]);

    it('puts the collection in dual-read with the sync trigger on, recorded with the run, and keeps it after completion', async () => {
      expect(await cli('run', tradesV2.id, '--execute', '--no-report', '--reason', 'expand trades', '--json')).toBe(0);
      const [run] = (await db.collection(paths.runs(tradesV2.id)).get()).docs.map((doc) => doc.data());
      expect(run.status).toBe('completed');
      const mode = await getMode(db);
      expect(mode).toMatchObject({ mode: 'dual-read', collections: ['trades'], migrations: [tradesV2.id], migrationId: tradesV2.id, runId: run.runId, changedBy: 'ops-oncall' });
      expect(mode.reason).toContain(`run ${run.runId}`);
      const events = await auditEvents();
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ runId: run.runId, migrationId: tradesV2.id, user: 'ops-oncall', details: { from: { mode: 'normal' }, to: { mode: 'dual-read', collections: ['trades'] } } });
      expect((await db.doc('trades/t0').get()).get('schemaVersion')).toBe('2.0');

      // `firemigrate status` reports the mode beside the runs.
      let printed = '';
      jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        printed += chunk.toString();
        return true;
      });
      expect(await cli('status', '--json')).toBe(0);
      expect(JSON.parse(printed).mode).toMatchObject({ mode: 'dual-read', collections: ['trades'], migrations: [tradesV2.id], runId: run.runId });
    });

    it('never overrides a maintenance mode an operator set', async () => {
      await setMode(db, { mode: 'maintenance', collections: ['trades'], user: 'operator', reason: 'freeze' });
      const before = (await db.doc(MODE_DOCUMENT_PATH).get()).data();
      expect(await cli('run', tradesV2.id, '--execute', '--no-report', '--json')).toBe(0);
      expect((await db.doc(MODE_DOCUMENT_PATH).get()).data()).toEqual(before);
      expect(await auditEvents()).toHaveLength(1);
      expect((await db.doc('trades/t4').get()).get('schemaVersion')).toBe('2.0');
    });
  });

  it('adds collections and migrations as runs start, turns the sync off for a rollback, and ends dual-read after rollback and cleanup', async () => {
    const trades = await modeForMigrateRun(db, paths, { migration: tradesV2, runId: 'r1', ...caller });
    expect(trades.action).toBe('changed');
    const conversations = await modeForMigrateRun(db, paths, { migration: conversationsV2, runId: 'r2', ...caller });
    expect(conversations.action).toBe('changed');
    expect(await getMode(db)).toMatchObject({ mode: 'dual-read', collections: ['trades', 'conversations'], migrations: [tradesV2.id, conversationsV2.id], runId: 'r2' });
    // A resume of the same run changes nothing and records nothing.
    expect((await modeForMigrateRun(db, paths, { migration: conversationsV2, runId: 'r2', ...caller })).action).toBe('unchanged');
    expect(await auditEvents()).toHaveLength(2);

    await modeForRollback(db, paths, { migration: tradesV2, runId: 'rb1', ...caller });
    expect(await getMode(db)).toMatchObject({ mode: 'dual-read', collections: ['trades', 'conversations'], migrations: [conversationsV2.id], runId: 'rb1' });
    await modeAfterRollback(db, paths, { migration: tradesV2, runId: 'rb1', ...caller });
    expect(await getMode(db)).toMatchObject({ mode: 'dual-read', collections: ['conversations'], migrations: [conversationsV2.id] });

    await modeForCleanupRun(db, paths, { migration: conversationsV2, runId: 'c1', ...caller });
    expect(await getMode(db)).toMatchObject({ mode: 'dual-read', collections: ['conversations'], migrations: [conversationsV2.id] });
    await modeAfterCleanup(db, paths, { migration: conversationsV2, runId: 'c1', ...caller }, [conversationsV2.id]);
    expect(await getMode(db)).toMatchObject({ mode: 'normal', collections: [], migrations: [], runId: 'c1', changedBy: 'ops' });
    expect(await auditEvents()).toHaveLength(5);
  });
});
