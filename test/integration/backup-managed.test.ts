/**
 * The managed-backup flows with their records in Firestore (the emulator). The Firestore Admin
 * API (exportDocuments / importDocuments) does not exist on the emulator, so ONLY that port is
 * replaced, by a recording test adapter; everything the flows store is real and asserted.
 */
import { ControlPaths } from '../../functions/src/control/paths';
import type { StoredAuditEvent } from '../../functions/src/control/audit';
import { tradesV2 } from '../../functions/src/migrations/tradeya';
import type { ExportRequest, ExportState, ImportRequest, ManagedBackupAdmin, StartedOperation } from '../../functions/src/rollback/backup/admin-port';
import { ManagedBackupError, ManagedBackups, NO_ADMIN_API, type BackupRecord } from '../../functions/src/rollback/backup/managed-backups';
import { describeEmulator, resetProject, testFirestore } from '../support/emulator';
import { testWire } from '../support/raw-seed';
import { dumpDatabase } from '../support/rollback-support';

/** Records the calls and answers as the Admin API would; `state` is the export's operation state. */
class RecordingAdminForTests implements ManagedBackupAdmin {
  readonly exports: ExportRequest[] = [];
  readonly imports: ImportRequest[] = [];
  readonly stateQueries: string[] = [];
  state: ExportState = { done: true, error: null, outputUriPrefix: null };

  async startExport(request: ExportRequest): Promise<StartedOperation> {
    this.exports.push(request);
    this.state = { done: true, error: null, outputUriPrefix: request.outputUriPrefix };
    return { operationName: `projects/${request.database.projectId}/databases/(default)/operations/export-${this.exports.length}` };
  }

  async exportState(operationName: string): Promise<ExportState> {
    this.stateQueries.push(operationName);
    return this.state;
  }

  async startImport(request: ImportRequest): Promise<StartedOperation> {
    this.imports.push(request);
    return { operationName: `projects/${request.database.projectId}/databases/(default)/operations/import-${this.imports.length}` };
  }
}

describeEmulator('managed backups: export records and backup restoration (Firestore Admin API mocked: cannot run on the emulator)', () => {
  const projectId = 'demo-backup-managed';
  const db = testFirestore(projectId);
  const wire = testWire(projectId);
  const paths = new ControlPaths();
  const database = { projectId, databaseId: '(default)' };
  const actor = { user: 'ops', identity: 'ops@example.com' };
  const location = { bucket: 'my-backups', prefix: 'pre-v2' };
  let admin: RecordingAdminForTests;
  let backups: ManagedBackups;

  beforeEach(async () => {
    await resetProject(projectId);
    admin = new RecordingAdminForTests();
    backups = new ManagedBackups({ db, paths, database, admin });
  });
  afterAll(async () => {
    await wire.close();
    await db.terminate();
  });

  async function auditEvents(action: string): Promise<StoredAuditEvent[]> {
    return (await db.collection(paths.audit()).where('action', '==', action).get()).docs.map((doc) => doc.data() as StoredAuditEvent);
  }

  it('starts an export into its own folder and records the operation, output URI, who and why, with its audit event (Firestore Admin API mocked: cannot run on the emulator)', async () => {
    const started = await backups.start({ collectionIds: ['trades', 'users', 'trades'], location, actor, reason: 'before v2' });
    expect(started.executed).toBe(true);
    const backupId = started.plan.backupId;
    expect(admin.exports).toEqual([{ database, collectionIds: ['trades', 'users'], outputUriPrefix: `gs://my-backups/pre-v2/${backupId}` }]);
    const record = (await db.collection(paths.managedBackups()).doc(backupId).get()).data() as BackupRecord;
    expect(record).toEqual({
      backupId,
      database,
      collectionIds: ['trades', 'users'],
      outputUriPrefix: `gs://my-backups/pre-v2/${backupId}`,
      operationName: `projects/${projectId}/databases/(default)/operations/export-1`,
      user: 'ops',
      identity: 'ops@example.com',
      reason: 'before v2',
      createdAt: expect.anything(),
      imports: [],
    });
    const [event] = await auditEvents('backup.started');
    expect(event).toMatchObject({ migrationId: null, runId: null, user: 'ops', identity: 'ops@example.com', reason: 'before v2', details: { backupId, operationName: record.operationName, outputUriPrefix: record.outputUriPrefix, collectionIds: ['trades', 'users'] } });
    expect((await backups.list()).map((listed) => listed.backupId)).toEqual([backupId]);
  });

  it('restores a finished export: imports the migration\'s collection from the URI the operation reports, records the import as NOT exact (Firestore Admin API mocked: cannot run on the emulator)', async () => {
    const started = await backups.start({ collectionIds: [], location, actor, reason: null });
    const backupId = started.plan.backupId;
    admin.state = { done: true, error: null, outputUriPrefix: `gs://my-backups/pre-v2/${backupId}/` };
    const restored = await backups.restore({ backupId, migration: tradesV2, actor: { user: 'on-call', identity: 'oncall@example.com' }, reason: 'v2 broke search' });
    expect(restored.executed).toBe(true);
    expect(admin.stateQueries).toEqual([`projects/${projectId}/databases/(default)/operations/export-1`]);
    expect(admin.imports).toEqual([{ database, collectionIds: ['trades'], inputUriPrefix: `gs://my-backups/pre-v2/${backupId}/` }]);
    const record = (await db.collection(paths.managedBackups()).doc(backupId).get()).data() as BackupRecord;
    expect(record.imports).toEqual([
      {
        operationName: `projects/${projectId}/databases/(default)/operations/import-1`,
        inputUriPrefix: `gs://my-backups/pre-v2/${backupId}/`,
        collectionIds: ['trades'],
        migrationId: tradesV2.id,
        user: 'on-call',
        identity: 'oncall@example.com',
        reason: 'v2 broke search',
        at: expect.anything(),
      },
    ]);
    const [event] = await auditEvents('backup.import-started');
    expect(event).toMatchObject({ migrationId: tradesV2.id, user: 'on-call', reason: 'v2 broke search', details: { backupId, strategy: 'backup-restoration', exact: false, collectionIds: ['trades'] } });
  });

  it('refuses an unknown backup, an unfinished or failed export, and an export without the target collection — importing and writing nothing (Firestore Admin API mocked: cannot run on the emulator)', async () => {
    const request = (backupId: string) => ({ backupId, migration: tradesV2, actor, reason: 'r' });
    await expect(backups.restore(request('bk-missing'))).rejects.toThrow(new ManagedBackupError(`backup bk-missing is not recorded in ${paths.managedBackups()} (list them with: firemigrate backup --list)`));

    const usersOnly = (await backups.start({ collectionIds: ['users'], location, actor, reason: null })).plan.backupId;
    await expect(backups.restore(request(usersOnly))).rejects.toThrow(`backup ${usersOnly} exported users only; migration "${tradesV2.id}" targets trades`);

    const all = (await backups.start({ collectionIds: [], location, actor, reason: null })).plan.backupId;
    admin.state = { done: false, error: null, outputUriPrefix: null };
    await expect(backups.restore(request(all))).rejects.toThrow(/has not finished yet: try again once it has/);
    admin.state = { done: true, error: 'PERMISSION_DENIED: the service agent cannot write to the bucket', outputUriPrefix: null };
    await expect(backups.restore(request(all))).rejects.toThrow(`the export of backup ${all} failed (PERMISSION_DENIED: the service agent cannot write to the bucket): it cannot be imported`);

    expect(admin.imports).toEqual([]);
    expect(await auditEvents('backup.import-started')).toEqual([]);
    for (const record of await backups.list()) expect(record.imports).toEqual([]);
  });

  it('without an Admin API (the emulator) reports what it would do and writes nothing', async () => {
    const offline = new ManagedBackups({ db, paths, database, admin: null });
    const before = await dumpDatabase(db, wire);
    const started = await offline.start({ collectionIds: ['trades'], location, actor, reason: 'r' });
    expect(started).toEqual({ executed: false, why: NO_ADMIN_API, plan: { backupId: started.plan.backupId, database, collectionIds: ['trades'], outputUriPrefix: `gs://my-backups/pre-v2/${started.plan.backupId}` } });
    const restored = await offline.restore({ backupId: 'bk-any', migration: tradesV2, actor, reason: 'r' });
    expect(restored).toMatchObject({ executed: false, why: NO_ADMIN_API, plan: { backupId: 'bk-any', collectionIds: ['trades'], inputUriPrefix: null } });
    expect(await dumpDatabase(db, wire)).toEqual(before);
  });
});
