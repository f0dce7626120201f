import type { DocData, Migration } from '../functions/src/definitions/types';
import { isPatch, isReplace, isSkip } from '../functions/src/definitions/results';

/**
 * What a hand-written script writes for one document: the migration's own `up()` result plus the
 * marker — no schema checks, no before-image. Null for a document the script leaves alone
 * (already at target, `up` skips or throws). The bench migration (trades) returns plain objects.
 */
export function handUpdate(migration: Migration, path: string, data: DocData): DocData | null {
  if (data[migration.marker.field] === migration.marker.to) return null;
  let result;
  try {
    result = migration.up(data, { path, id: path.slice(path.lastIndexOf('/') + 1) });
  } catch {
    return null;
  }
  if (isSkip(result)) return null;
  if (isPatch(result) || isReplace(result)) throw new Error(`the hand-written contenders handle plain-object results only; ${migration.id} returned a ${result.kind}`);
  return { ...result, [migration.marker.field]: migration.marker.to };
}
