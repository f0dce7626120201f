import { rollbackRefusals } from '../../functions/src/cli/rollback-gate';
import { DEFAULT_BACKUP_PREFIX, ExportLocationError, exportLocation, outputUriPrefix } from '../../functions/src/rollback/backup/export-location';
import { INEXACT_RESTORE, newBackupId, targetCollectionId } from '../../functions/src/rollback/backup/managed-backups';
import { conversationsV2, tradesV2 } from '../../functions/src/migrations/tradeya';
import type { Migration } from '../../functions/src/definitions/types';

describe('managed backups: where an export goes', () => {
  it('takes the bucket and prefix from the flags, else the environment, else the default prefix', () => {
    expect(exportLocation({ bucket: 'gs://my-backups', prefix: 'pre/v2' }, {})).toEqual({ bucket: 'my-backups', prefix: 'pre/v2' });
    expect(exportLocation({}, { FIREMIGRATE_BACKUP_BUCKET: 'env-bucket', FIREMIGRATE_BACKUP_PREFIX: '/nightly/' })).toEqual({ bucket: 'env-bucket', prefix: 'nightly' });
    expect(exportLocation({ bucket: 'flag-bucket' }, { FIREMIGRATE_BACKUP_BUCKET: 'env-bucket' })).toEqual({ bucket: 'flag-bucket', prefix: DEFAULT_BACKUP_PREFIX });
    expect(exportLocation({ bucket: 'b.example.com', prefix: '' }, {})).toEqual({ bucket: 'b.example.com', prefix: '' });
  });

  it('names the flag or variable that is missing or wrong', () => {
    expect(() => exportLocation({}, {})).toThrow(new ExportLocationError('no Cloud Storage bucket for the export: pass --bucket <gs://bucket> or set FIREMIGRATE_BACKUP_BUCKET'));
    expect(() => exportLocation({ bucket: 'gs://Bad_Bucket' }, {})).toThrow(/^--bucket "gs:\/\/Bad_Bucket" is not a Cloud Storage bucket name/);
    expect(() => exportLocation({}, { FIREMIGRATE_BACKUP_BUCKET: 'gs://b/with/path' })).toThrow(/^FIREMIGRATE_BACKUP_BUCKET "gs:\/\/b\/with\/path" is not a Cloud Storage bucket name/);
    expect(() => exportLocation({ bucket: 'ok-bucket', prefix: 'a/../b' }, {})).toThrow('--prefix "a/../b" has an invalid folder ".."');
    expect(() => exportLocation({ bucket: 'ok-bucket' }, { FIREMIGRATE_BACKUP_PREFIX: 'has space' })).toThrow('FIREMIGRATE_BACKUP_PREFIX "has space" has an invalid folder "has space"');
  });

  it('gives every backup its own folder', () => {
    const id = newBackupId(new Date('2026-11-29T14:25:01Z'));
    expect(id).toMatch(/^bk-20261129-142501-[0-9a-f]{6}$/);
    expect(newBackupId()).not.toBe(newBackupId());
    expect(outputUriPrefix({ bucket: 'b', prefix: 'pre/v2' }, id)).toBe(`gs://b/pre/v2/${id}`);
    expect(outputUriPrefix({ bucket: 'b', prefix: '' }, id)).toBe(`gs://b/${id}`);
  });

  it('imports the collection id of the migration\'s target (the last segment of a nested collection)', () => {
    expect(targetCollectionId(tradesV2)).toBe('trades');
    expect(targetCollectionId(conversationsV2)).toBe('conversations');
    expect(targetCollectionId({ ...tradesV2, target: { collection: 'shops/s1/orders' } } as Migration)).toBe('orders');
    expect(targetCollectionId({ ...tradesV2, target: { collectionGroup: 'items' } } as Migration)).toBe('items');
    expect(INEXACT_RESTORE).toContain('it is not an exact rollback');
  });
});

describe('the CLI rollback gate', () => {
  const open = { requireConfirmation: true, confirmed: true };

  it('lets a confirmed rollback with a reason and a user through', () => {
    expect(rollbackRefusals({ rollback: open, reason: 'bad data', user: 'ops' })).toEqual([]);
    expect(rollbackRefusals({ rollback: { requireConfirmation: false, confirmed: false }, reason: 'bad data', user: 'ops' })).toEqual([]);
    expect(rollbackRefusals({ rollback: open, reason: 'bad data', user: 'ops', backupId: 'bk-1', acceptInexact: true })).toEqual([]);
  });

  it('lists every missing piece, each naming what to set', () => {
    expect(rollbackRefusals({ rollback: { requireConfirmation: true, confirmed: false }, reason: ' ', user: undefined, backupId: 'bk-1' })).toEqual([
      'a rollback rewrites application documents: set ROLLBACK_CONFIRMED=true in the environment to confirm it',
      'say why: --reason <text> (recorded in the rollback run and the audit trail)',
      'say who answers for it: --user <name> (recorded beside your Google identity)',
      expect.stringMatching(/^backup restoration is not exact .* confirm that with --accept-inexact$/),
    ]);
  });
});
