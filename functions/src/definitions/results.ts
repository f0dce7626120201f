import { FieldPath } from '@google-cloud/firestore';
import type { DocData, FieldSegments, PatchResult, ReplaceResult, SkipResult, TransformResult } from './types';

/** `up`/`down` decline a document (it is counted as skipped, with the reason). */
export function skip(reason: string): SkipResult {
  return { kind: 'skip', reason };
}

/** Replace the whole document (its before-image is then the whole document). */
export function replaceDocument(data: DocData): ReplaceResult {
  return { kind: 'replace', data };
}

/**
 * Set or delete nested fields: `patchPaths([[['participants', 'creator'], 'u1'], [['legacy'], FieldValue.delete()]])`.
 * Segments are literal field names (`FieldPath` semantics), so a field named `a.b` is `['a.b']`.
 */
export function patchPaths(entries: ReadonlyArray<readonly [FieldSegments | FieldPath, unknown]>): PatchResult {
  return {
    kind: 'patch',
    entries: entries.map(([path, value]) => [path instanceof FieldPath ? segmentsOf(path) : [...path], value] as const),
  };
}

function segmentsOf(path: FieldPath): string[] {
  // FieldPath keeps its segments; the public API only exposes them through the string form.
  return (path as unknown as { segments: string[] }).segments.slice();
}

export function isSkip(result: TransformResult): result is SkipResult {
  return (result as SkipResult)?.kind === 'skip' && typeof (result as SkipResult).reason === 'string';
}

export function isReplace(result: TransformResult): result is ReplaceResult {
  return (result as ReplaceResult)?.kind === 'replace' && typeof (result as ReplaceResult).data === 'object';
}

export function isPatch(result: TransformResult): result is PatchResult {
  return (result as PatchResult)?.kind === 'patch' && Array.isArray((result as PatchResult).entries);
}
