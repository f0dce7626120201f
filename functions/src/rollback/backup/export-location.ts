/**
 * Where a managed export goes: `gs://<bucket>/<prefix>/<backupId>`. Each backup gets a folder of
 * its own, so an import names exactly one export (an import of a prefix holding several exports
 * is refused by the Admin API).
 */

/** `--bucket` default: FIREMIGRATE_BACKUP_BUCKET. */
export const BACKUP_BUCKET_VARIABLE = 'FIREMIGRATE_BACKUP_BUCKET';
/** `--prefix` default: FIREMIGRATE_BACKUP_PREFIX, else `firemigrate-backups`. */
export const BACKUP_PREFIX_VARIABLE = 'FIREMIGRATE_BACKUP_PREFIX';
export const DEFAULT_BACKUP_PREFIX = 'firemigrate-backups';

// Cloud Storage's rules for bucket names (dots allowed, as in domain-named buckets).
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT = /^[A-Za-z0-9._-]+$/;

export class ExportLocationError extends Error {
  override readonly name = 'ExportLocationError';
}

export interface ExportLocation {
  bucket: string;
  /** Folder path inside the bucket, without leading or trailing slashes ('' for the bucket's root). */
  prefix: string;
}

/**
 * The bucket (`name` or `gs://name`) and prefix from the flags, else the environment. Throws
 * `ExportLocationError` naming the flag or variable that is missing or wrong.
 */
export function exportLocation(flags: { bucket?: string; prefix?: string }, env: NodeJS.ProcessEnv = process.env): ExportLocation {
  const bucketText = flags.bucket?.trim() || env[BACKUP_BUCKET_VARIABLE]?.trim();
  if (!bucketText) {
    throw new ExportLocationError(`no Cloud Storage bucket for the export: pass --bucket <gs://bucket> or set ${BACKUP_BUCKET_VARIABLE}`);
  }
  const bucketSource = flags.bucket?.trim() ? '--bucket' : BACKUP_BUCKET_VARIABLE;
  const bucket = bucketText.replace(/^gs:\/\//, '').replace(/\/+$/, '');
  if (!BUCKET.test(bucket)) {
    throw new ExportLocationError(
      `${bucketSource} "${bucketText}" is not a Cloud Storage bucket name (3–63 lowercase letters, digits, ".", "-", "_"; ` +
        'no path: put folders in --prefix)',
    );
  }
  const prefixSource = flags.prefix !== undefined ? '--prefix' : BACKUP_PREFIX_VARIABLE;
  const prefixText = (flags.prefix ?? env[BACKUP_PREFIX_VARIABLE] ?? DEFAULT_BACKUP_PREFIX).trim().replace(/^\/+|\/+$/g, '');
  const segments = prefixText === '' ? [] : prefixText.split('/');
  const bad = segments.find((segment) => !PREFIX_SEGMENT.test(segment) || segment === '.' || segment === '..');
  if (bad !== undefined) {
    throw new ExportLocationError(`${prefixSource} "${prefixText}" has an invalid folder "${bad}" (letters, digits, ".", "-", "_"; not "." or "..")`);
  }
  return { bucket, prefix: segments.join('/') };
}

/** `gs://bucket/prefix/backupId`. */
export function outputUriPrefix(location: ExportLocation, backupId: string): string {
  return `gs://${[location.bucket, location.prefix, backupId].filter((part) => part !== '').join('/')}`;
}
