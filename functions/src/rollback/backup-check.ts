import { FieldPath } from '@google-cloud/firestore';
import { backupId } from '../engine/before-image';
import { streamKeys } from '../engine/key-reader';
import { Backoff, withRetry } from '../engine/retry';
import { readBackupDocuments } from '../engine/restore';
import type { RollbackContext } from './types';

/** Backups read per batchGet. */
const CHECK_CHUNK = 300;

export interface BackupCheck {
  checked: number;
  damaged: number;
  /** The first damaged backup and what is wrong with it. */
  firstDamage: string | null;
}

/**
 * ROLLBACK_BACKUP_VALIDATION: reads and decodes every before-image of the runs (chunks
 * included), checking that each names the document its id is the hash of — before the rollback
 * writes anything, rather than failing half-way on a damaged backup.
 */
export async function checkBackups(ctx: RollbackContext, migrationId: string, runIds: readonly string[]): Promise<BackupCheck> {
  const result: BackupCheck = { checked: 0, damaged: 0, firstDamage: null };
  const timeout = { timeoutMs: ctx.config.migration.transactionTimeoutMs };
  const backoff = () => new Backoff({ baseDelayMs: ctx.config.migration.retryDelayMs, maxRetries: ctx.config.rollback.maxRetries });
  for (const runId of runIds) {
    const backupsPath = ctx.paths.backups(migrationId, runId);
    const check = async (ids: string[]) => {
      const stored = await withRetry(() => ctx.wire.batchGet(ids.map((id) => `${backupsPath}/${id}`), timeout), backoff());
      for (const [i, document] of stored.entries()) {
        result.checked++;
        try {
          const [record] = await readBackupDocuments(ctx.wire, [document], backoff(), () => undefined, timeout);
          if (record && backupId(record.path) !== ids[i]) throw new Error(`it holds the image of ${record.path}, whose backup id differs`);
        } catch (error) {
          result.damaged++;
          result.firstDamage ??= `${backupsPath}/${ids[i]}: ${(error as Error).message}`;
        }
      }
    };
    let ids: string[] = [];
    const query = ctx.db.collection(backupsPath).select().orderBy(FieldPath.documentId());
    for await (const path of streamKeys(ctx.db, ctx.wire, query, { maxRetries: ctx.config.rollback.maxRetries, retryDelayMs: ctx.config.migration.retryDelayMs })) {
      ids.push(path.slice(path.lastIndexOf('/') + 1));
      if (ids.length === CHECK_CHUNK) {
        await check(ids);
        ids = [];
      }
    }
    if (ids.length > 0) await check(ids);
  }
  return result;
}
