import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Timestamp } from '@google-cloud/firestore';
import { assertFails, assertSucceeds, initializeTestEnvironment, type RulesTestEnvironment } from '@firebase/rules-unit-testing';
import { setLogLevel } from 'firebase/firestore';
import { main } from '../../functions/src/cli/main';
import { getMode, ModeError, setMode } from '../../functions/src/compat/modes';
import { ControlPaths, MODE_DOCUMENT_PATH } from '../../functions/src/control/paths';
import { describeEmulator, emulatorHost, resetProject, testFirestore } from '../support/emulator';

// The SDK logs every denied request as a warning; denials are what these tests expect.
setLogLevel('error');
jest.setTimeout(60_000);

const paths = new ControlPaths();
const trade = { title: 'Guitar for design', creatorId: 'alice', participantId: 'bob', status: 'active' };

describeEmulator('migration modes: the mode document, its audit trail, the CLI and the rules that read it', () => {
  const projectId = 'demo-modes';
  const db = testFirestore(projectId);
  let env: RulesTestEnvironment;

  beforeAll(async () => {
    const [host, port] = emulatorHost().split(':');
    env = await initializeTestEnvironment({
      projectId,
      firestore: { host, port: Number(port), rules: readFileSync(join(__dirname, '../../firestore.rules'), 'utf8') },
    });
  });
  afterAll(async () => {
    await env.cleanup();
    await db.terminate();
  });
  beforeEach(async () => {
    await resetProject(projectId);
    await db.doc('trades/t1').set(trade);
    await db.doc('conversations/c1').set({ participantIds: ['alice', 'bob'], lastMessage: 'hi' });
  });

  const stored = async (path: string) => (await db.doc(path).get()).data();
  const auditEvents = async () => (await db.collection(paths.audit()).get()).docs.map((doc) => doc.data());
  const alice = () => env.authenticatedContext('alice').firestore();

  it('reads normal when the mode document was never written', async () => {
    expect(await getMode(db)).toEqual({ mode: 'normal', collections: [], migrations: [], migrationId: null, runId: null, changedAt: null, changedBy: null, reason: null });
  });

  it('writes the mode document with the fields the rules read, and a mode.changed audit event', async () => {
    const before = Timestamp.now();
    const result = await setMode(db, {
      mode: 'maintenance',
      collections: ['trades', ' trades', 'conversations'],
      migrationId: 'tradeya-trades-v2',
      user: 'ops-oncall',
      identity: 'emulator',
      reason: 'backfill window',
    });
    const document = await stored(MODE_DOCUMENT_PATH);
    expect(document).toEqual({
      mode: 'maintenance',
      collections: ['trades', 'conversations'],
      migrationId: 'tradeya-trades-v2',
      changedAt: expect.any(Timestamp),
      changedBy: 'ops-oncall',
      reason: 'backfill window',
    });
    expect((document!.changedAt as Timestamp).toMillis()).toBeGreaterThanOrEqual(before.toMillis());
    expect(await getMode(db)).toEqual({ ...document, migrations: [], runId: null, migrationId: 'tradeya-trades-v2' });
    expect(result.previous).toEqual({ mode: 'normal', collections: [], migrations: [], migrationId: null, runId: null, changedAt: null, changedBy: null, reason: null });
    expect(result.current).toEqual(await getMode(db));

    const events = await auditEvents();
    expect(events).toHaveLength(1);
    expect(events[0]).toEqual({
      action: 'mode.changed',
      migrationId: 'tradeya-trades-v2',
      runId: null,
      user: 'ops-oncall',
      identity: 'emulator',
      reason: 'backfill window',
      details: { from: { mode: 'normal', collections: [], migrations: [] }, to: { mode: 'maintenance', collections: ['trades', 'conversations'], migrations: [] } },
      at: expect.any(Timestamp),
      recordedAt: expect.any(Timestamp),
    });
    expect((await db.collection(paths.audit()).doc(result.auditEventId).get()).exists).toBe(true);
  });

  it('replaces the whole document: nothing of the earlier mode survives a change back to normal', async () => {
    await setMode(db, { mode: 'dual-read', collections: ['trades'], migrationId: 'tradeya-trades-v2', user: 'a', reason: 'expand' });
    const result = await setMode(db, { mode: 'normal', user: 'b' });
    expect(await stored(MODE_DOCUMENT_PATH)).toEqual({ mode: 'normal', collections: [], changedAt: expect.any(Timestamp), changedBy: 'b', reason: null });
    expect(result.previous).toMatchObject({ mode: 'dual-read', collections: ['trades'], migrationId: 'tradeya-trades-v2', changedBy: 'a', reason: 'expand' });
    expect((await auditEvents()).map((event) => [event.action, event.details.to.mode])).toEqual(
      expect.arrayContaining([
        ['mode.changed', 'dual-read'],
        ['mode.changed', 'normal'],
      ]),
    );
  });

  it('refuses inconsistent changes and writes nothing', async () => {
    await expect(setMode(db, { mode: 'normal', collections: ['trades'], user: 'a' })).rejects.toThrow('mode normal applies to no collections; got trades');
    await expect(setMode(db, { mode: 'maintenance', collections: [], user: 'a' })).rejects.toThrow('mode maintenance needs the collections it applies to');
    await expect(setMode(db, { mode: 'dual-read', collections: ['users/u1/orders'], user: 'a' })).rejects.toThrow('invalid collection id(s) "users/u1/orders"');
    await expect(setMode(db, { mode: 'frozen' as 'normal', user: 'a' })).rejects.toThrow('unknown mode "frozen"');
    await expect(setMode(db, { mode: 'maintenance', collections: ['trades'], user: ' ' })).rejects.toThrow(ModeError);
    expect(await stored(MODE_DOCUMENT_PATH)).toBeUndefined();
    expect(await auditEvents()).toEqual([]);
  });

  it('reports a malformed mode document by field, and a change repairs it', async () => {
    await db.doc(MODE_DOCUMENT_PATH).set({ mode: 'Maintenance', collections: 'trades' });
    await expect(getMode(db)).rejects.toThrow(/_firemigrate_mode\/current is malformed \(mode: invalid_value; collections: invalid_type\)/);
    const result = await setMode(db, { mode: 'maintenance', collections: ['trades'], user: 'a' });
    expect(result.previous).toBeNull();
    expect((await auditEvents())[0].details.from).toBe('malformed');
    expect((await getMode(db)).mode).toBe('maintenance');
  });

  it('the rules deny a client trade write exactly while setMode has trades in maintenance', async () => {
    await assertSucceeds(alice().doc('trades/t1').update({ status: 'in_progress' }));

    await setMode(db, { mode: 'maintenance', collections: ['trades'], user: 'ops' });
    await assertFails(alice().doc('trades/t1').update({ status: 'completed' }));
    await assertFails(alice().doc('trades/t2').set({ creatorId: 'alice', status: 'open' }));
    await assertSucceeds(alice().doc('trades/t1').get());
    await assertSucceeds(alice().doc('conversations/c1').update({ lastMessage: 'still open' }));
    expect(await stored('trades/t1')).toEqual({ ...trade, status: 'in_progress' });
    expect(await stored('trades/t2')).toBeUndefined();

    await setMode(db, { mode: 'dual-read', collections: ['trades'], user: 'ops' });
    await assertSucceeds(alice().doc('trades/t1').update({ status: 'completed' }));
    await setMode(db, { mode: 'maintenance', collections: ['conversations'], user: 'ops' });
    await assertSucceeds(alice().doc('trades/t1').update({ status: 'cancelled' }));
    await assertFails(alice().doc('conversations/c1').update({ lastMessage: 'frozen' }));
    await setMode(db, { mode: 'normal', user: 'ops' });
    await assertSucceeds(alice().doc('conversations/c1').update({ lastMessage: 'open again' }));
    expect(await stored('trades/t1')).toEqual({ ...trade, status: 'cancelled' });
    expect((await stored('conversations/c1'))!.lastMessage).toBe('open again');
  });

  describe('firemigrate mode', () => {
    let stdout: string;
    let stderr: string;

    beforeEach(() => {
      stdout = '';
      stderr = '';
      jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
        stdout += chunk.toString();
        return true;
      });
      jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        stderr += chunk.toString();
        return true;
      });
    });
    afterEach(() => {
      jest.restoreAllMocks();
      // The CLI sets the exit code for its process; this test process must not inherit it.
      process.exitCode = undefined;
    });

    const cli = (...args: string[]) => main(['node', 'firemigrate', '--project', projectId, ...args]);

    it('sets maintenance for a migration’s collection, which the rules then enforce, and prints the mode', async () => {
      expect(await cli('--user', 'ops-oncall', 'mode', 'maintenance', '--migration', 'tradeya-trades-v2', '--reason', 'backfill', '--json')).toBe(0);
      const printed = JSON.parse(stdout);
      expect(printed.previous.mode).toBe('normal');
      expect(printed.current).toEqual({
        mode: 'maintenance',
        collections: ['trades'],
        migrations: [],
        migrationId: 'tradeya-trades-v2',
        runId: null,
        changedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
        changedBy: 'ops-oncall',
        reason: 'backfill',
      });
      expect(await stored(MODE_DOCUMENT_PATH)).toMatchObject({ mode: 'maintenance', collections: ['trades'], changedBy: 'ops-oncall' });
      const [event] = await auditEvents();
      expect(event).toMatchObject({ action: 'mode.changed', user: 'ops-oncall', identity: 'emulator', reason: 'backfill', migrationId: 'tradeya-trades-v2' });
      await assertFails(alice().doc('trades/t1').update({ status: 'completed' }));

      stdout = '';
      expect(await cli('mode')).toBe(0);
      expect(stdout).toMatch(/^Mode: maintenance for trades — client writes to these collections are denied/);
      expect(stdout).toContain('migration: tradeya-trades-v2');
      expect(stdout).toMatch(/changed \d{4}-\d\d-\d\dT\S+ by ops-oncall, reason: backfill/);

      stdout = '';
      expect(await cli('mode', 'normal', '--reason', 'done')).toBe(0);
      expect(stdout.split('\n')[0]).toBe('Mode changed: maintenance → normal');
      await assertSucceeds(alice().doc('trades/t1').update({ status: 'completed' }));
    });

    it('sets --collections, and refuses usage errors with exit 2 without writing', async () => {
      expect(await cli('mode', 'dual-read', '--collections', 'trades, conversations')).toBe(0);
      expect((await getMode(db)).collections).toEqual(['trades', 'conversations']);
      await db.doc(MODE_DOCUMENT_PATH).delete();

      expect(await cli('mode', 'maintenance')).toBe(2);
      expect(stderr).toContain('mode maintenance needs the collections it applies to (--collections a,b, or --migration <id> for its target collection)');
      expect(await cli('mode', 'frozen')).toBe(2);
      expect(await cli('mode', 'normal', '--collections', 'trades')).toBe(2);
      expect(await cli('mode', 'maintenance', '--migration', 'no-such-migration')).toBe(2);
      expect(await cli('mode', '--reason', 'why')).toBe(2);
      expect(await stored(MODE_DOCUMENT_PATH)).toBeUndefined();

      stdout = '';
      expect(await cli('mode', '--json')).toBe(0);
      expect(JSON.parse(stdout)).toEqual({ mode: 'normal', collections: [], migrations: [], migrationId: null, runId: null, changedAt: null, changedBy: null, reason: null });
    });
  });
});
