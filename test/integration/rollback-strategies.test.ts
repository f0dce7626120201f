import { FieldValue } from '@google-cloud/firestore';
import { z } from 'zod';
import type { FiremigrateConfig } from '../../functions/src/config';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore } from '../../functions/src/control/runs';
import { createLogger } from '../../functions/src/cli/log';
import { defineMigration } from '../../functions/src/definitions/define';
import { createRegistry } from '../../functions/src/definitions/registry';
import { patchPaths, replaceDocument } from '../../functions/src/definitions/results';
import type { Migration } from '../../functions/src/definitions/types';
import { seedDemoData } from '../../functions/src/demo/seed-data';
import { startRun } from '../../functions/src/engine/runner';
import { tradesV2 } from '../../functions/src/migrations/tradeya';
import { assessRollback, startRollback, type RollbackContext } from '../../functions/src/rollback';
import { describeEmulator, resetProject, testFirestore, emulatorConfig } from '../support/emulator';
import { bigFields, canonical, exoticFields, seedRaw, testWire } from '../support/raw-seed';
import { dumpDatabase, rawCollections } from '../support/rollback-support';

const THINGS = 'things';

const nestedPatch = defineMigration({
  id: 'things-nested-patch',
  version: '1.0',
  description: 'changes awkward values in place: nested doubles, int64, dotted names, absent parents',
  target: { collection: THINGS },
  marker: { field: 'schemaVersion', from: null, to: '2' },
  from: z.looseObject({}),
  to: z.looseObject({ schemaVersion: z.literal('2') }),
  up: () =>
    patchPaths([
      [['nested', 'inner', 'doubleOne'], 'changed'],
      [['nested', 'inner', 'deep', 'int64Big'], FieldValue.delete()],
      [['a.b'], FieldValue.delete()],
      [['a', 'b'], 'created under absent a'],
      [['fresh', 'deeper', 'leaf'], 9007199254740993n],
      [['doubleOne'], 2],
      [['timestampMicros'], FieldValue.delete()],
    ]),
  down: () => ({}),
});

const wholeReplace = defineMigration({
  id: 'things-replace',
  version: '1.0',
  description: 'replaces each document whole',
  target: { collection: THINGS },
  marker: { field: 'schemaVersion', from: null, to: '2' },
  from: z.looseObject({}),
  to: z.looseObject({ schemaVersion: z.literal('2') }),
  up: (doc) => replaceDocument({ summary: `had ${Object.keys(doc).length} fields` }),
});

describeEmulator('rollback: strategies (restore of awkward values through the runner, revert via down)', () => {
  const projectId = 'demo-rollback-strategies';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const baseEnv = { MIGRATION_BATCH_SIZE: '60', ROLLBACK_BATCH_SIZE: '40', MIGRATION_RETRY_DELAY: '5' };
  const config = emulatorConfig(baseEnv);
  const log = createLogger({ format: 'json', write: () => undefined, minSeverity: 'ERROR' });
  const lease = { ttlMs: 10_000, renewEveryMs: 3000 };
  const ctx: RollbackContext = { db, wire, config, paths, registry: createRegistry([tradesV2, nestedPatch, wholeReplace]), lease, holder: 'test-host/1/strategies', log };
  const caller = { user: 'tester', identity: 'emulator', reason: 'strategy test' };

  beforeEach(() => resetProject(projectId));
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function migrate(migration: Migration, runConfig: FiremigrateConfig = config): Promise<string> {
    const session = await startRun({ db, wire, migration, config: runConfig, paths, lease, holder: ctx.holder, log }, { user: 'tester', identity: 'emulator', reason: 'migrate' });
    const outcome = await session.outcome;
    expect(outcome.status).toBe('completed');
    return outcome.runId;
  }

  async function seedThings(): Promise<Map<string, unknown>> {
    const documents: Record<string, ReturnType<typeof exoticFields>> = {};
    for (let i = 0; i < 30; i++) documents[`${THINGS}/t${String(i).padStart(2, '0')}`] = exoticFields(wire);
    documents[`${THINGS}/big`] = bigFields(1_040_000);
    await seedRaw(wire, documents);
    return rawCollections(db, wire, [THINGS]);
  }

  it.each([
    ['a nested patch', nestedPatch],
    ['a whole-document replace', wholeReplace],
  ])('restores every awkward raw value after %s run by the runner', async (_, migration) => {
    const originals = await seedThings();
    await migrate(migration);
    const migrated = await rawCollections(db, wire, [THINGS]);
    for (const [path, fields] of migrated) expect(canonical(fields)).not.toBe(canonical(originals.get(path) as never));

    const outcome = await (await startRollback(ctx, { migrationId: migration.id, force: false, ...caller }, { sampleAll: true })).outcome;
    expect(outcome).toMatchObject({ status: 'completed', strategy: 'restore' });
    expect(outcome.totals).toMatchObject({ restored: originals.size, conflicts: 0, failed: 0 });
    expect(outcome.validation).toMatchObject({ ok: true, sampled: originals.size, equal: originals.size });
    const after = await rawCollections(db, wire, [THINGS]);
    for (const [path, fields] of after) expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(originals.get(path) as never) });
    const sample = after.get(`${THINGS}/t00`)!;
    expect(sample.doubleOne).toMatchObject({ doubleValue: 1, valueType: 'doubleValue' });
    expect(sample.int64Big).toMatchObject({ integerValue: '9007199254740993' });
    expect(sample['a.b']).toMatchObject({ stringValue: 'literal dotted name' });
    expect(sample.timestampMicros.timestampValue).toMatchObject({ nanos: 123456000 });
    expect(sample).not.toHaveProperty('a');
    expect(sample).not.toHaveProperty('fresh');
  });

  it('reverts with down() a run made with MIGRATION_ROLLBACK_ENABLED=false', async () => {
    const manifest = await seedDemoData(db, { docs: 160, seed: 3, now: new Date('2026-11-01T10:00:00Z') });
    const originals = await rawCollections(db, wire, ['trades']);
    const noImages = emulatorConfig({ ...baseEnv, MIGRATION_ROLLBACK_ENABLED: 'false' });
    const runId = await migrate(tradesV2, noImages);
    expect((await db.collection(paths.backups(tradesV2.id, runId)).count().get()).data().count).toBe(0);

    const before = await dumpDatabase(db, wire);
    const assessment = await assessRollback(ctx, { migrationId: tradesV2.id });
    expect(await dumpDatabase(db, wire)).toEqual(before);
    expect(assessment.strategy.chosen).toBe('revert');
    expect(assessment.strategy.reason).toMatch(/MIGRATION_ROLLBACK_ENABLED=false/);
    expect(assessment.documents).toMatchObject({ total: manifest.trades.legacy + manifest.trades.alreadyV2, toRestore: manifest.trades.legacy + manifest.trades.alreadyV2 });
    expect(assessment.ready).toBe(true);
    // Restore is impossible without before-images, and says so.
    const forcedRestore = await assessRollback(ctx, { migrationId: tradesV2.id, strategy: 'restore' });
    expect(forcedRestore.ready).toBe(false);
    expect(forcedRestore.readiness.find((check) => check.check === 'strategy')).toMatchObject({ ok: false, detail: expect.stringMatching(/no before-images/) });
    await expect(startRollback(ctx, { migrationId: tradesV2.id, strategy: 'restore', force: false, ...caller })).rejects.toThrow(/no before-images/);

    const outcome = await (await startRollback(ctx, { migrationId: tradesV2.id, force: false, ...caller }, { sampleAll: true })).outcome;
    expect({ status: outcome.status, reason: outcome.statusReason, strategy: outcome.strategy }).toEqual({ status: 'completed', reason: null, strategy: 'revert' });
    expect(outcome.totals).toMatchObject({ restored: manifest.trades.legacy + manifest.trades.alreadyV2, failed: 0 });
    expect(outcome.validation).toMatchObject({ ok: true, mismatches: [] });
    const after = await rawCollections(db, wire, ['trades']);
    for (const [path, fields] of after) {
      const original = originals.get(path)!;
      if (original.schemaVersion) {
        // Already v2 before the run: revert cannot tell them apart from migrated ones (it has no before-images).
        expect(fields).not.toHaveProperty('schemaVersion');
        expect(fields).not.toHaveProperty('skillsOffered');
      } else {
        // TradeYa's down() removes exactly what up() added: the legacy documents are back as they were.
        expect({ path, fields: canonical(fields) }).toEqual({ path, fields: canonical(original) });
      }
    }
    expect((await new RunStore(db, paths).get(tradesV2.id, runId)).status).toBe('rolled_back');
  });

  it('says revert is impossible for a migration without down() and no before-images', async () => {
    await seedThings();
    await migrate(wholeReplace, emulatorConfig({ ...baseEnv, MIGRATION_ROLLBACK_ENABLED: 'false' }));
    const assessment = await assessRollback(ctx, { migrationId: wholeReplace.id });
    expect(assessment.ready).toBe(false);
    expect(assessment.readiness.find((check) => check.check === 'strategy')).toMatchObject({ ok: false, detail: expect.stringMatching(/defines no down\(\)/) });
    await expect(startRollback(ctx, { migrationId: wholeReplace.id, force: false, ...caller })).rejects.toThrow(/defines no down\(\)/);
  });

  it('ROLLBACK_BACKUP_VALIDATION: a damaged before-image makes the assessment not ready and the start refuse, writing nothing', async () => {
    await seedThings();
    const runId = await migrate(nestedPatch);
    const damaged = (await db.collection(paths.backups(nestedPatch.id, runId)).limit(1).get()).docs[0].ref;
    await damaged.set({ overwritten: 'by mistake' });

    const assessment = await assessRollback(ctx, { migrationId: nestedPatch.id });
    expect(assessment.ready).toBe(false);
    expect(assessment.readiness.find((check) => check.check === 'before-images')).toMatchObject({ ok: false, detail: expect.stringContaining(damaged.id) });

    const before = await dumpDatabase(db, wire);
    await expect(startRollback(ctx, { migrationId: nestedPatch.id, force: false, ...caller })).rejects.toThrow(/1 of 31 before-images are damaged/);
    expect(await dumpDatabase(db, wire)).toEqual(before);

    // Without the check the rollback starts, and the batch holding the damaged backup fails the run (resumable).
    const unchecked = { ...ctx, config: emulatorConfig({ ...baseEnv, ROLLBACK_BACKUP_VALIDATION: 'false' }) };
    const outcome = await (await startRollback(unchecked, { migrationId: nestedPatch.id, force: false, ...caller })).outcome;
    expect(outcome.status).toBe('failed');
    expect(outcome.statusReason).toMatch(/not a backup document/);
  });
});
