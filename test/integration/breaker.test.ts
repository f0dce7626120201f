/**
 * The circuit breaker: a migration whose up() fails 20 % of the documents stops as
 * `emergency_stopped` once its failure rate passes MIGRATION_EMERGENCY_THRESHOLD (10 %), with the
 * state as committed — every document either untouched or fully migrated with its before-image.
 * The transform is then fixed; the fixed definition has another checksum, and the run resumes
 * with it only when the change is accepted explicitly (--accept-definition-change: a fix is the
 * normal way out of an emergency stop; refusing it would strand the run, and accepting it
 * silently would let any edit slip into a half-done run). The resume completes exactly: every
 * document migrated once, the ones that failed before retried by the final sweep.
 */
import { FieldPath, Timestamp, type QueryDocumentSnapshot } from '@google-cloud/firestore';
import { z } from 'zod';
import { AuditLog } from '../../functions/src/control/audit';
import { ControlPaths } from '../../functions/src/control/paths';
import { RunStore } from '../../functions/src/control/runs';
import { createLogger } from '../../functions/src/cli/log';
import { defineMigration } from '../../functions/src/definitions/define';
import type { DocData, MigrationDefinition } from '../../functions/src/definitions/types';
import { readBackup } from '../../functions/src/engine/before-image';
import { ResumeRefusedError, resumeRun, startRun, type RunnerContext } from '../../functions/src/engine/runner';
import { validateRun } from '../../functions/src/engine/validation';
import { WireClient } from '../../functions/src/engine/wire/client';
import { rawDocumentFromSnapshot } from '../../functions/src/engine/wire/snapshot';
import type { RawFields } from '../../functions/src/engine/wire/types';
import { describeEmulator, emulatorHost, resetProject, testFirestore, emulatorConfig } from '../support/emulator';

const DOCS = 1000;
const base: Omit<MigrationDefinition, 'up'> = {
  id: 'items-v2',
  version: '2',
  description: 'items get a label',
  target: { collection: 'items' },
  marker: { field: 'schemaVersion', from: null, to: '2' },
  from: z.object({ n: z.number().int(), name: z.string() }),
  to: z.object({ n: z.number().int(), name: z.string(), label: z.string(), schemaVersion: z.literal('2') }),
};
/** The bug: every fifth item (n divisible by 5) makes up() throw. */
const buggy = defineMigration({
  ...base,
  up: (doc) => {
    if ((doc.n as number) % 5 === 0) throw new Error('label service unavailable');
    return { label: `item-${doc.name as string}` };
  },
});
const fixed = defineMigration({ ...base, up: (doc) => ({ label: `item-${doc.name as string}` }) });

const idOf = (n: number) => `i${String(n).padStart(4, '0')}`;
const seededItem = (n: number): DocData => ({ n, name: `thing ${n}` });
const migratedItem = (n: number): DocData => ({ ...seededItem(n), label: `item-thing ${n}`, schemaVersion: '2' });

describeEmulator('circuit breaker: emergency stop and resume with a fixed transform', () => {
  const projectId = 'demo-breaker';
  const db = testFirestore(projectId);
  const wire = new WireClient({ projectId, emulatorHost: emulatorHost() });
  const paths = new ControlPaths();
  const config = emulatorConfig({ MIGRATION_BATCH_SIZE: '25', MIGRATION_CONNECTION_POOL_SIZE: '4' });
  const ctx: RunnerContext = {
    db,
    wire,
    migration: buggy,
    config,
    paths,
    lease: { ttlMs: 5000, renewEveryMs: 1500 },
    holder: 'test-host/1/breaker',
    log: createLogger({ format: 'json', write: () => undefined }),
  };
  const caller = { user: 'oncall', identity: 'emulator', reason: 'breaker test' };
  const runs = new RunStore(db, paths);

  beforeAll(async () => {
    await resetProject(projectId);
    const writer = db.bulkWriter();
    for (let n = 0; n < DOCS; n++) void writer.create(db.doc(`items/${idOf(n)}`), seededItem(n));
    await writer.close();
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function items(): Promise<Map<string, DocData>> {
    const snapshot = await db.collection('items').orderBy(FieldPath.documentId()).get();
    return new Map(snapshot.docs.map((doc) => [doc.id, doc.data()]));
  }

  async function collection(path: string): Promise<DocData[]> {
    return (await db.collection(path).get()).docs.map((doc: QueryDocumentSnapshot) => ({ id: doc.id, ...doc.data() }));
  }

  let runId: string;

  it('stops the run as emergency_stopped, naming the rate, with every document untouched or fully migrated', async () => {
    const session = await startRun(ctx, caller);
    runId = session.runId;
    const outcome = await session.outcome;
    expect(outcome.status).toBe('emergency_stopped');
    // One partition, batches of 25 consecutive items: 5 of each 25 fail; the breaker acts from 100 documents on.
    const reason = 'failure rate 20 % (20 of the last 100 documents) is above MIGRATION_EMERGENCY_THRESHOLD 10 %';
    expect(outcome.statusReason).toBe(reason);
    expect(outcome.sweep).toBeNull();

    const run = await runs.get(buggy.id, runId);
    expect(run).toMatchObject({ status: 'emergency_stopped', statusReason: reason, lease: null, finishedAt: null });
    expect(run.throttle!.breaker).toMatchObject({ threshold: 0.1 });
    expect((await db.doc(paths.migration(buggy.id)).get()).data()).toMatchObject({ status: 'running', activeRunId: null, lease: null });
    const events = await new AuditLog(db, paths).forRun(runId);
    expect(events.map((event) => event.action)).toEqual(['run.started', 'run.stopped']);
    expect(events[1]).toMatchObject({ user: 'oncall', details: { statusReason: reason, trip: { rate: 0.2, failed: 20, sample: 100, threshold: 0.1, window: 1000 } } });

    // The batches in flight at the trip settled; no new one started: at most the pool's 4 after the first 4.
    const markers = await collection(paths.batches(buggy.id, runId));
    expect(markers.length).toBeGreaterThanOrEqual(4);
    expect(markers.length).toBeLessThanOrEqual(8);
    const covered = new Set<number>();
    for (const marker of markers) {
      expect(marker).toMatchObject({ migrated: 20, failed: 5, skipped: 0, alreadyMigrated: 0 });
      const first = Number((marker.firstKey as string).slice('items/i'.length));
      for (let n = first; n < first + 25; n++) covered.add(n);
    }
    const stored = await items();
    expect(stored.size).toBe(DOCS);
    const backups = await collection(paths.backups(buggy.id, runId));
    const failures = await collection(paths.failures(buggy.id, runId));
    let migrated = 0;
    for (let n = 0; n < DOCS; n++) {
      const expected = covered.has(n) && n % 5 !== 0 ? migratedItem(n) : seededItem(n);
      if (expected.schemaVersion) migrated++;
      expect({ n, data: stored.get(idOf(n)) }).toEqual({ n, data: expected });
    }
    expect(migrated).toBe(markers.length * 20);
    expect(backups.map((backup) => backup.path).sort()).toEqual([...covered].filter((n) => n % 5 !== 0).map((n) => `items/${idOf(n)}`).sort());
    expect(failures.map((failure) => failure.path).sort()).toEqual([...covered].filter((n) => n % 5 === 0).map((n) => `items/${idOf(n)}`).sort());
    expect(failures.every((failure) => failure.errorClass === 'transform-error' && failure.severity === 'high')).toBe(true);
  });

  it('refuses the fixed definition unless the change is accepted, then completes exactly once per document', async () => {
    const fixedCtx = { ...ctx, migration: fixed };
    await expect(resumeRun(fixedCtx, runId, caller)).rejects.toThrow(ResumeRefusedError);
    await expect(resumeRun(fixedCtx, runId, caller)).rejects.toThrow(/resume with --accept-definition-change/);
    expect(await runs.get(buggy.id, runId)).toMatchObject({ status: 'emergency_stopped', checksum: buggy.checksum });

    const before = Timestamp.now();
    const session = await resumeRun(fixedCtx, runId, { ...caller, reason: 'label service fixed' }, { acceptDefinitionChange: true });
    const outcome = await session.outcome;
    expect(outcome.error).toBeNull();
    expect(outcome.status).toBe('completed');

    const stored = await items();
    for (let n = 0; n < DOCS; n++) expect({ n, data: stored.get(idOf(n)) }).toEqual({ n, data: migratedItem(n) });
    // Once per document: one before-image each (all the fields written were absent), and the
    // markers' migrated counts add up to the number of documents.
    const backups = (await db.collection(paths.backups(buggy.id, runId)).get()).docs.map((doc) => readBackup((rawDocumentFromSnapshot(doc) as { fields: RawFields }).fields));
    expect(backups).toHaveLength(DOCS);
    expect(new Set(backups.map((backup) => backup.path)).size).toBe(DOCS);
    for (const backup of backups) {
      expect(backup).toMatchObject({ image: { mode: 'patch' }, runId, migrationId: buggy.id });
      expect([...backup.image.absent].sort()).toEqual(['label', 'schemaVersion']);
    }
    const markers = await collection(paths.batches(buggy.id, runId));
    expect(markers.reduce((sum, marker) => sum + (marker.migrated as number), 0)).toBe(DOCS);
    // The items that failed before the stop were retried by the final sweep, with the fixed transform.
    const swept = markers.filter((marker) => (marker.id as string).startsWith('sweep1-'));
    expect(swept.reduce((sum, marker) => sum + (marker.migrated as number), 0)).toBe(outcome.sweep!.migrated);
    expect(outcome.sweep!.migrated).toBeGreaterThan(0);

    const run = await runs.get(fixed.id, runId);
    expect(run).toMatchObject({ status: 'completed', checksum: fixed.checksum, resumes: 1, lease: null, statusReason: null });
    expect(run.definitionChanges).toEqual([{ from: buggy.checksum, to: fixed.checksum, user: 'oncall', identity: 'emulator', reason: 'label service fixed', at: expect.any(Timestamp) }]);
    expect(run.definitionChanges![0].at.toMillis()).toBeGreaterThanOrEqual(before.toMillis() - 1000);
    expect((await db.doc(paths.migration(fixed.id)).get()).data()).toMatchObject({ status: 'applied', checksum: fixed.checksum, activeRunId: null });
    const events = await new AuditLog(db, paths).forRun(runId);
    expect(events.map((event) => event.action)).toEqual(['run.started', 'run.stopped', 'run.resumed', 'run.completed']);
    expect(events[2].details).toMatchObject({ previousStatus: 'emergency_stopped', definitionChange: { from: buggy.checksum, to: fixed.checksum } });

    const report = await validateRun({ db, migration: fixed, config, paths, run });
    expect(report).toMatchObject({
      ok: true,
      definitionMatchesRun: true,
      before: { total: DOCS, atTarget: 0, oldShape: DOCS },
      after: { total: DOCS, atTarget: DOCS, migrated: DOCS, alreadyAtTarget: 0, skipped: 0, failed: 0, remaining: 0 },
      integrity: { checked: DOCS, valid: DOCS, invalid: 0 },
      failures: [],
      remainingPaths: [],
    });
  });
});
