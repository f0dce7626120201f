import { Timestamp } from '@google-cloud/firestore';
import { CLEANUP_MARKER_FIELD, CleanupError, cleanupMigrationFor, withCleanupMigrations } from '../../functions/src/cleanup/cleanup-migration';
import { readInNewShape } from '../../functions/src/compat/reader';
import { classifyDocument } from '../../functions/src/definitions/classify';
import { createRegistry } from '../../functions/src/definitions/registry';
import type { DocData } from '../../functions/src/definitions/types';
import { projectMigrations } from '../../functions/src/migrations';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';

/** The cleanup (contract) migration derived from a migration's legacyFields. */
describe('cleanupMigrationFor', () => {
  const cleanup = cleanupMigrationFor(tradesV2);
  const ctx = { path: 'trades/t1', id: 't1' };
  const legacy: DocData = {
    title: 't',
    status: 'open',
    creatorId: 'alice',
    participantId: 'bob',
    offeredSkills: ['guitar'],
    requestedSkills: [],
    createdAt: Timestamp.fromMillis(0),
    appOwn: 1,
  };
  const v2 = (readInNewShape(tradesV2, legacy, ctx) as { data: DocData }).data;

  it('targets the same collection, with a marker field of its own at the migration’s version', () => {
    expect(cleanup).toMatchObject({ id: 'tradeya-trades-v2-cleanup', target: tradesV2.target, marker: { field: CLEANUP_MARKER_FIELD, from: null, to: '2.0' } });
    expect(cleanup.checksum).toMatch(/^[0-9a-f]{64}$/);
    expect(cleanupMigrationFor(tradesV2).checksum).toBe(cleanup.checksum);
  });

  it('removes exactly the legacy fields of a v2 document, and keeps the migration’s marker', () => {
    const result = classifyDocument(cleanup, v2, ctx, { validate: true });
    expect(result.outcome).toBe('migrate');
    if (result.outcome !== 'migrate') return;
    const expected = Object.fromEntries(Object.entries(v2).filter(([field]) => !tradesV2.legacyFields!.includes(field)));
    expect(result.after).toEqual({ ...expected, [CLEANUP_MARKER_FIELD]: '2.0' });
    expect(result.after.schemaVersion).toBe('2.0');
    // The migration itself still sees the cleaned document at its target; the reader reads it in the new shape.
    expect(classifyDocument(tradesV2, result.after, ctx, { validate: true }).outcome).toBe('already-at-target');
    expect(readInNewShape(tradesV2, result.after, ctx).shape).toBe('new');
    expect(classifyDocument(cleanup, result.after, ctx, { validate: true }).outcome).toBe('already-at-target');
  });

  it('leaves a document still in the old shape alone (invalid-source), and refuses migrations with nothing to contract', () => {
    const result = classifyDocument(cleanup, legacy, ctx, { validate: true });
    expect(result).toMatchObject({ outcome: 'fail', failure: { errorClass: 'invalid-source' } });
    expect(() => cleanupMigrationFor(conversationsV2)).toThrow(CleanupError);
  });

  it('withCleanupMigrations resolves <id>-cleanup ids for the rollback engine without listing them', () => {
    const registry = withCleanupMigrations(createRegistry(projectMigrations));
    expect(registry.has('tradeya-trades-v2-cleanup')).toBe(true);
    expect(registry.get('tradeya-trades-v2-cleanup').checksum).toBe(cleanup.checksum);
    expect(registry.has('tradeya-conversations-v2-cleanup')).toBe(false);
    expect(() => registry.get('tradeya-conversations-v2-cleanup')).toThrow('tradeya-conversations-v2-cleanup');
    expect(registry.all().map((migration) => migration.id)).toEqual(['tradeya-conversations-v2', 'tradeya-trades-v2']);
  });
});
