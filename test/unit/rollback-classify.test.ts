import { z } from 'zod';
import { defineMigration } from '../../functions/src/definitions/define';
import { applyChange, captureBeforeImage, imageHash, type BackupRecord, type RawChange } from '../../functions/src/engine/before-image';
import { classifyRestore, fieldsAfterRestore } from '../../functions/src/engine/restore';
import type { RawDocument, RawFields } from '../../functions/src/engine/wire/types';
import { chooseStrategy } from '../../functions/src/rollback/strategy';
import type { SourceRun } from '../../functions/src/rollback/source-runs';

const time = { seconds: '1700000000', nanos: 0 };
const doc = (fields: RawFields): RawDocument => ({ path: 'c/d', exists: true, fields, updateTime: time, createTime: time });

/** A migration write on `fields` and the backup it would store. */
function migrate(fields: RawFields, change: RawChange): { after: RawFields; backup: BackupRecord } {
  const image = captureBeforeImage(fields, change);
  const after = applyChange(fields, change);
  return { after, backup: { path: 'c/d', image, beforeUpdateTime: time, afterHash: imageHash(after, image), migrationId: 'm', runId: 'r' } };
}

describe('classifyRestore (shared by the assessment and the rollback batch)', () => {
  const original: RawFields = { name: { stringValue: 'a' }, count: { doubleValue: 1 }, legacy: { stringValue: 'x' } };
  const change: RawChange = { kind: 'patch', entries: [{ path: ['added'], value: { stringValue: 'new' } }, { path: ['legacy'] }, { path: ['schemaVersion'], value: { stringValue: '2' } }] };
  const { after, backup } = migrate(original, change);

  it('restores a document whose migrated fields are as the migration wrote them', () => {
    expect(classifyRestore(doc(after), backup)).toBe('restore');
  });

  it('restores a document whose OTHER fields changed since (a new message is no conflict)', () => {
    expect(classifyRestore(doc({ ...after, name: { stringValue: 'changed by the app' } }), backup)).toBe('restore');
  });

  it('calls a change of a migrated field a conflict; force restores it', () => {
    const edited = doc({ ...after, added: { stringValue: 'edited by the app' } });
    expect(classifyRestore(edited, backup)).toBe('conflict');
    expect(classifyRestore(edited, backup, true)).toBe('forced');
  });

  it('counts a document equal to its before-image as already restored, a type change (double 1.0 vs integer 1) as not equal', () => {
    expect(classifyRestore(doc(original), backup)).toBe('already-restored');
    expect(classifyRestore(doc({ ...original, legacy: { stringValue: 'x' }, count: { integerValue: '1' } }), backup)).toBe('already-restored');
    const typed = migrate(original, { kind: 'patch', entries: [{ path: ['count'], value: { stringValue: 'one' } }] });
    expect(classifyRestore(doc({ ...typed.after, count: { integerValue: '1' } }), typed.backup)).toBe('conflict');
    expect(classifyRestore(doc({ ...typed.after, count: { doubleValue: 1 } }), typed.backup)).toBe('already-restored');
  });

  it('reports missing documents and backups', () => {
    expect(classifyRestore({ path: 'c/d', exists: false }, backup)).toBe('missing-document');
    expect(classifyRestore(doc(after), null)).toBe('missing-backup');
  });

  it('fieldsAfterRestore gives back the before-image (absent fields removed, changed ones back)', () => {
    const restored = fieldsAfterRestore({ ...after, name: { stringValue: 'kept' } }, backup.image);
    expect(restored).toEqual({ ...original, name: { stringValue: 'kept' } });
    expect(classifyRestore(doc(restored), backup)).toBe('already-restored');
  });

  it('two runs: after the newer run is restored, the older backup judges the document right', () => {
    // Run 1 migrates; a legacy client rewrites the document in the old shape; run 2 migrates it again.
    const run1 = migrate(original, change);
    const rewritten: RawFields = { name: { stringValue: 'rewritten' }, count: { doubleValue: 1 }, legacy: { stringValue: 'x' } };
    const run2 = migrate(rewritten, change);
    const afterRun2Restore = fieldsAfterRestore(run2.after, run2.backup.image);
    expect(afterRun2Restore).toEqual(rewritten);
    // Run 1 changed only fields the rewrite left as run 1 found them: already restored, the app's rewrite kept.
    expect(classifyRestore(doc(afterRun2Restore), run1.backup)).toBe('already-restored');
    // Had the rewrite changed a field run 1 had changed, run 1's image would overwrite newer app data: a conflict.
    const rewrittenLegacy: RawFields = { ...rewritten, legacy: { stringValue: 'newer app value' } };
    const run2b = migrate(rewrittenLegacy, change);
    expect(classifyRestore(doc(fieldsAfterRestore(run2b.after, run2b.backup.image)), run1.backup)).toBe('conflict');
  });
});

describe('chooseStrategy', () => {
  const base = {
    id: 'm', version: '1', description: 'd', target: { collection: 'c' }, marker: { field: 'v', from: null, to: '2' },
    from: z.looseObject({}), to: z.looseObject({}), up: () => ({ a: 1 }),
  };
  const withDown = defineMigration({ ...base, down: () => ({}) });
  const withoutDown = defineMigration(base);
  const run = (runId: string, beforeImages: boolean): SourceRun => ({ runId, status: 'completed', beforeImages, createdAtMs: 0 });

  it('restores when every run has before-images', () => {
    expect(chooseStrategy(withoutDown, [run('r2', true), run('r1', true)])).toMatchObject({ chosen: 'restore', overridden: false, impossible: null });
  });

  it('reverts when a run has none, and says why; impossible without down()', () => {
    expect(chooseStrategy(withDown, [run('r2', true), run('r1', false)])).toMatchObject({ chosen: 'revert', impossible: null, reason: expect.stringMatching(/r1 ran with MIGRATION_ROLLBACK_ENABLED=false/) });
    expect(chooseStrategy(withoutDown, [run('r1', false)])).toMatchObject({ chosen: 'revert', impossible: expect.stringMatching(/defines no down\(\)/) });
  });

  it('honours an override, refusing restore without before-images', () => {
    expect(chooseStrategy(withDown, [run('r1', true)], 'revert')).toMatchObject({ chosen: 'revert', overridden: true, impossible: null });
    expect(chooseStrategy(withDown, [run('r1', false)], 'restore')).toMatchObject({ chosen: 'restore', overridden: true, impossible: expect.stringMatching(/no before-images/) });
  });
});
