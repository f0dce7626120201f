import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  assertFails,
  assertSucceeds,
  initializeTestEnvironment,
  type RulesTestEnvironment,
} from '@firebase/rules-unit-testing';
import { setLogLevel } from 'firebase/firestore';
import { describeEmulator, emulatorHost } from '../support/emulator';
import { checkRules } from '../../functions/src/compat/rules-check';
import { MODE_DOCUMENT_PATH } from '../../functions/src/control/paths';

type Data = Record<string, unknown>;
type MigrationMode = 'normal' | 'dual-read' | 'maintenance';

const legacyTrade = { title: 'Guitar for design', creatorId: 'alice', participantId: 'bob', status: 'active' };
const v2Trade = {
  title: 'Logo for lessons',
  participants: { creator: 'carol', participant: 'dave' },
  status: 'active',
  schemaVersion: '2.0',
};
const conversation = { participantIds: ['alice', 'bob'], participants: [{ id: 'alice' }, { id: 'bob' }], lastMessage: 'hi' };
const legacyConversation = { participants: [{ userId: 'alice', displayName: 'A' }, { id: 'bob', name: 'B' }], lastMessage: 'yo' };

// The SDK logs every denied request as a warning; denials are what half of these tests expect.
setLogLevel('error');
// jest ignores `testTimeout` inside a `projects` entry, so the 5 s default would apply on a busy machine.
jest.setTimeout(60_000);

const ROOT = join(__dirname, '../..');
const readRules = (path: string) => readFileSync(join(ROOT, path), 'utf8');

/**
 * A rules test environment on the emulator with `rules` loaded (set up and torn down with the
 * enclosing describe), and helpers: clients signed in or not, and reads and writes past the rules.
 */
function rulesEnvironment(projectId: string, rules: string) {
  let env: RulesTestEnvironment;
  beforeAll(async () => {
    const [host, port] = emulatorHost().split(':');
    env = await initializeTestEnvironment({ projectId, firestore: { host, port: Number(port), rules } });
  });
  afterAll(() => env.cleanup());

  function seed(docs: Record<string, Data>): Promise<void> {
    return env.withSecurityRulesDisabled(async (context) => {
      const db = context.firestore();
      for (const [path, data] of Object.entries(docs)) await db.doc(path).set(data);
    });
  }
  async function stored(path: string): Promise<Data | undefined> {
    let data: Data | undefined;
    await env.withSecurityRulesDisabled(async (context) => {
      data = (await context.firestore().doc(path).get()).data();
    });
    return data;
  }
  return {
    clear: () => env.clearFirestore(),
    seed,
    setMode: (mode: MigrationMode, collections: string[]) => seed({ [MODE_DOCUMENT_PATH]: { mode, collections } }),
    stored,
    as: (uid: string) => env.authenticatedContext(uid).firestore(),
    anonymous: () => env.unauthenticatedContext().firestore(),
  };
}

describeEmulator('firestore.rules: firemigrate rule functions and the TradeYa rules', () => {
  const { clear, seed, setMode, stored, as, anonymous } = rulesEnvironment('demo-rules', readRules('firestore.rules'));

  beforeEach(async () => {
    await clear();
    await seed({
      'users/alice': { name: 'Alice' },
      'users/bob': { name: 'Bob' },
      'trades/legacy': legacyTrade,
      'trades/v2': v2Trade,
      'conversations/c1': conversation,
      'conversations/legacy': legacyConversation,
      '_migrations/trades-v2': { id: 'trades-v2', status: 'running' },
      '_migrations/trades-v2/runs/r1/backups/abc': { path: 'trades/legacy', fields: { creatorId: 'alice' } },
    });
  });


  describe('control data', () => {
    const controlPaths = ['_migrations/trades-v2', '_migrations/trades-v2/runs/r1/backups/abc', MODE_DOCUMENT_PATH];

    it.each(controlPaths)('%s cannot be read or written by a signed-in user or anonymously', async (path) => {
      await setMode('dual-read', ['trades']);
      for (const db of [as('alice'), anonymous()]) {
        await assertFails(db.doc(path).get());
        await assertFails(db.doc(path).set({ status: 'applied' }));
        await assertFails(db.doc(path).delete());
      }
      await assertFails(as('alice').collection('_migrations').get());
    });

    it('a client cannot lift a maintenance window by rewriting the mode document', async () => {
      await setMode('maintenance', ['trades']);
      await assertFails(as('alice').doc(MODE_DOCUMENT_PATH).set({ mode: 'normal', collections: [] }));
      await assertFails(as('alice').doc(MODE_DOCUMENT_PATH).delete());
      expect(await stored(MODE_DOCUMENT_PATH)).toEqual({ mode: 'maintenance', collections: ['trades'] });
      expect(await stored('_migrations/trades-v2')).toEqual({ id: 'trades-v2', status: 'running' });
    });
  });

  describe('trades', () => {
    it('a participant updates their trade when no mode document exists (normal mode)', async () => {
      await assertSucceeds(as('bob').doc('trades/legacy').update({ status: 'in_progress' }));
      await assertSucceeds(as('carol').doc('trades/v2').update({ status: 'completed' }));
      expect(await stored('trades/legacy')).toEqual({ ...legacyTrade, status: 'in_progress' });
      expect(await stored('trades/v2')).toEqual({ ...v2Trade, status: 'completed' });
    });

    it.each<MigrationMode>(['normal', 'dual-read'])('a participant updates their trade in %s mode', async (mode) => {
      await setMode(mode, ['trades', 'conversations']);
      await assertSucceeds(as('alice').doc('trades/legacy').update({ status: 'in_progress' }));
      await assertSucceeds(as('dave').doc('trades/v2').update({ status: 'in_progress' }));
      expect((await stored('trades/legacy'))?.status).toBe('in_progress');
      expect((await stored('trades/v2'))?.status).toBe('in_progress');
    });

    it('maintenance for [trades] denies trade writes and still allows conversation writes', async () => {
      await setMode('maintenance', ['trades']);
      await assertFails(as('alice').doc('trades/legacy').update({ status: 'in_progress' }));
      await assertFails(as('carol').doc('trades/v2').delete());
      await assertFails(as('alice').doc('trades/new').set({ creatorId: 'alice', status: 'active' }));
      await assertSucceeds(as('alice').doc('conversations/c1').update({ lastMessage: 'still here' }));
      await assertSucceeds(as('alice').doc('trades/legacy').get());
      expect(await stored('trades/legacy')).toEqual(legacyTrade);
      expect(await stored('trades/v2')).toEqual(v2Trade);
      expect(await stored('trades/new')).toBeUndefined();
      expect((await stored('conversations/c1'))?.lastMessage).toBe('still here');
    });

    it('maintenance for [conversations] leaves trade writes open', async () => {
      await setMode('maintenance', ['conversations']);
      await assertFails(as('alice').doc('conversations/c1').update({ lastMessage: 'frozen' }));
      await assertSucceeds(as('bob').doc('trades/legacy').update({ status: 'in_progress' }));
      expect((await stored('conversations/c1'))?.lastMessage).toBe('hi');
      expect((await stored('trades/legacy'))?.status).toBe('in_progress');
    });

    it('a non-participant cannot update or delete a trade, in either shape', async () => {
      for (const path of ['trades/legacy', 'trades/v2']) {
        await assertFails(as('mallory').doc(path).update({ status: 'cancelled' }));
        await assertFails(as('mallory').doc(path).delete());
        await assertFails(anonymous().doc(path).update({ status: 'cancelled' }));
      }
      expect(await stored('trades/legacy')).toEqual(legacyTrade);
      expect(await stored('trades/v2')).toEqual(v2Trade);
    });

    it('a trade is created only by its creator, in either shape, and read only when signed in', async () => {
      await assertSucceeds(as('alice').doc('trades/a').set({ creatorId: 'alice', status: 'active' }));
      await assertSucceeds(as('alice').doc('trades/b').set({ participants: { creator: 'alice', participant: null } }));
      await assertFails(as('alice').doc('trades/c').set({ creatorId: 'bob', status: 'active' }));
      await assertFails(anonymous().doc('trades/d').set({ creatorId: 'alice' }));
      await assertSucceeds(as('mallory').doc('trades/v2').get());
      await assertFails(anonymous().doc('trades/v2').get());
      expect(await stored('trades/a')).toEqual({ creatorId: 'alice', status: 'active' });
      expect(await stored('trades/b')).toEqual({ participants: { creator: 'alice', participant: null } });
      expect(await stored('trades/c')).toBeUndefined();
      expect(await stored('trades/d')).toBeUndefined();
    });
  });

  describe('conversations', () => {
    it('members read and write by participantIds; others are denied', async () => {
      await assertSucceeds(as('bob').doc('conversations/c1').get());
      await assertSucceeds(as('bob').doc('conversations/c1').update({ lastMessage: 'hello' }));
      await assertFails(as('mallory').doc('conversations/c1').get());
      await assertFails(as('mallory').doc('conversations/c1').update({ lastMessage: 'spam' }));
      expect((await stored('conversations/c1'))?.lastMessage).toBe('hello');
      const mine = await assertSucceeds(
        as('alice').collection('conversations').where('participantIds', 'array-contains', 'alice').get(),
      );
      expect(mine.docs.map((doc) => doc.id)).toEqual(['c1']);
    });

    it('legacy conversations without participantIds admit members at the first two positions (id or userId)', async () => {
      await assertSucceeds(as('alice').doc('conversations/legacy').get());
      await assertSucceeds(as('bob').doc('conversations/legacy').update({ lastMessage: 'legacy ok' }));
      await assertFails(as('mallory').doc('conversations/legacy').get());
      expect((await stored('conversations/legacy'))?.lastMessage).toBe('legacy ok');
    });

    it('a conversation is created only by one of its members', async () => {
      await assertSucceeds(as('alice').doc('conversations/new').set({ participantIds: ['alice', 'carol'] }));
      await assertFails(as('mallory').doc('conversations/other').set({ participantIds: ['alice', 'carol'] }));
      expect(await stored('conversations/new')).toEqual({ participantIds: ['alice', 'carol'] });
      expect(await stored('conversations/other')).toBeUndefined();
    });
  });

  describe('users', () => {
    it('a signed-in user reads any profile and writes only their own', async () => {
      await assertSucceeds(as('alice').doc('users/bob').get());
      await assertFails(anonymous().doc('users/bob').get());
      await assertSucceeds(as('alice').doc('users/alice').update({ name: 'Alice A.' }));
      await assertFails(as('alice').doc('users/bob').update({ name: 'Bobby' }));
      await assertFails(as('alice').doc('users/mallory').set({ name: 'Mallory' }));
      expect(await stored('users/alice')).toEqual({ name: 'Alice A.' });
      expect(await stored('users/bob')).toEqual({ name: 'Bob' });
      expect(await stored('users/mallory')).toBeUndefined();
    });
  });
});

/** The firemigrate block of a rules file: from its BEGIN line to its END line. */
function firemigrateBlock(rules: string, file: string): string {
  const match = /^[ \t]*\/\/ ---- BEGIN firemigrate.*?\/\/ ---- END firemigrate[^\n]*$/ms.exec(rules);
  if (!match) throw new Error(`${file} has no "// ---- BEGIN firemigrate" … "// ---- END firemigrate" block`);
  return match[0];
}

describeEmulator('an app rules file that would otherwise allow everything, with the rule functions ANDed in as README says', () => {
  const FIXTURE = 'test/fixtures/rules/permissive-guarded.rules';
  const APP_COLLECTIONS = ['users', 'trades', 'conversations'];
  /** One existing document per collection, for the updates. */
  const EXISTING: Record<string, string> = { users: 'users/alice', trades: 'trades/t1', conversations: 'conversations/c1' };
  const { clear, seed, setMode, stored, as, anonymous } = rulesEnvironment('demo-rules-permissive', readRules(FIXTURE));
  const CONTROL = {
    '_migrations/trades-v2': { id: 'trades-v2', status: 'running' },
    '_migrations/trades-v2/runs/r1/backups/abc': { path: 'trades/t1', image: 'bytes' },
  };

  beforeEach(async () => {
    await clear();
    await seed({ 'users/alice': { name: 'Alice' }, 'trades/t1': legacyTrade, 'conversations/c1': conversation, ...CONTROL });
  });

  /** A create, an update and a delete by `db` in each of `collections`; each either lands or is refused. */
  async function writeEach(db: ReturnType<typeof anonymous>, collections: string[], outcome: 'allowed' | 'refused', tag: string): Promise<void> {
    const assertion = outcome === 'allowed' ? assertSucceeds : assertFails;
    for (const collection of collections) {
      await assertion(db.doc(`${collection}/new-${tag}`).set({ by: tag }));
      await assertion(db.doc(EXISTING[collection]).update({ editedBy: tag }));
      await assertion(db.doc(`${collection}/gone-${tag}`).delete());
    }
  }

  it("copies firestore.rules' firemigrate block verbatim, and `rules check` finds nothing in it", () => {
    const fixture = readRules(FIXTURE);
    expect(firemigrateBlock(fixture, FIXTURE)).toBe(firemigrateBlock(readRules('firestore.rules'), 'firestore.rules'));
    expect(checkRules(fixture, { collections: APP_COLLECTIONS.map((collectionGroup) => ({ collectionGroup })) })).toEqual([]);
  });

  it.each<[string, MigrationMode | null]>([
    ['with no mode document', null],
    ['in normal mode', 'normal'],
    ['in dual-read mode', 'dual-read'],
  ])('%s the broad app rule lets anyone write every collection', async (_label, mode) => {
    if (mode) await setMode(mode, ['trades', 'conversations']);
    await seed({ 'users/gone-anon': { name: 'x' }, 'trades/gone-anon': legacyTrade, 'conversations/gone-anon': conversation });
    await writeEach(anonymous(), APP_COLLECTIONS, 'allowed', 'anon');
    await writeEach(as('mallory'), APP_COLLECTIONS, 'allowed', 'mallory');
    for (const collection of APP_COLLECTIONS) {
      expect(await stored(`${collection}/new-anon`)).toEqual({ by: 'anon' });
      expect(await stored(`${collection}/new-mallory`)).toEqual({ by: 'mallory' });
      expect(await stored(`${collection}/gone-anon`)).toBeUndefined();
    }
    expect(await stored('trades/t1')).toEqual({ ...legacyTrade, editedBy: 'mallory' });
    expect(await stored('conversations/c1')).toEqual({ ...conversation, editedBy: 'mallory' });
    expect(await stored('users/alice')).toEqual({ name: 'Alice', editedBy: 'mallory' });
  });

  it('in maintenance, client writes to the collections under migration are refused; reads and the other collections stay open', async () => {
    await setMode('maintenance', ['trades', 'conversations']);
    await seed({ 'trades/gone-anon': legacyTrade, 'conversations/gone-anon': conversation, 'trades/gone-mallory': legacyTrade });
    await writeEach(anonymous(), ['trades', 'conversations'], 'refused', 'anon');
    await writeEach(as('mallory'), ['trades', 'conversations'], 'refused', 'mallory');
    await writeEach(as('mallory'), ['users'], 'allowed', 'mallory');

    expect(await stored('trades/t1')).toEqual(legacyTrade);
    expect(await stored('conversations/c1')).toEqual(conversation);
    for (const path of ['trades/new-anon', 'trades/new-mallory', 'conversations/new-anon', 'conversations/new-mallory']) expect([path, await stored(path)]).toEqual([path, undefined]);
    expect(await stored('trades/gone-anon')).toEqual(legacyTrade);
    expect(await stored('trades/gone-mallory')).toEqual(legacyTrade);
    expect(await stored('conversations/gone-anon')).toEqual(conversation);
    expect(await stored('users/new-mallory')).toEqual({ by: 'mallory' });
    expect(await stored('users/alice')).toEqual({ name: 'Alice', editedBy: 'mallory' });
    await assertSucceeds(anonymous().doc('trades/t1').get());
    await assertSucceeds(anonymous().collection('conversations').get());
  });

  it.each<MigrationMode>(['normal', 'dual-read', 'maintenance'])('in %s mode the control data and the mode document stay closed', async (mode) => {
    await setMode(mode, ['trades', 'conversations']);
    for (const db of [as('alice'), anonymous()]) {
      for (const path of [...Object.keys(CONTROL), MODE_DOCUMENT_PATH]) {
        await assertFails(db.doc(path).get());
        await assertFails(db.doc(path).set({ mode: 'normal', collections: [], status: 'applied' }));
        await assertFails(db.doc(path).delete());
      }
      await assertFails(db.collection('_migrations').get());
      await assertFails(db.collection(MODE_DOCUMENT_PATH.split('/')[0]).get());
    }
    expect(await stored(MODE_DOCUMENT_PATH)).toEqual({ mode, collections: ['trades', 'conversations'] });
    for (const [path, data] of Object.entries(CONTROL)) expect([path, await stored(path)]).toEqual([path, data]);
  });
});
