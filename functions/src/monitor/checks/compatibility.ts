/**
 * Compatibility: sampled documents of any shape are read through the compatibility reader
 * (`readInNewShape`) and each result it calls readable is parsed again with `to` here, so a reader
 * bug cannot vouch for itself; and the dual-read sync trigger keeping up (legacy writes made during
 * dual-read still legacy after a grace period).
 */
import type { QueryDocumentSnapshot, Timestamp } from '@google-cloud/firestore';
import type { AlertThresholds } from '../../config';
import type { ModeState } from '../../compat/modes';
import { readInNewShape } from '../../compat/reader';
import type { Migration } from '../../definitions/types';
import { evaluateBelow, formatRatio } from '../evaluate';
import type { CheckResult } from '../types';

export interface ReaderFigures {
  sampled: number;
  /** Stored in the target shape. */
  new: number;
  /** Old shape, upgraded in memory. */
  legacy: number;
  /** Readable in neither shape, by reason (invalid-source, transform-error, …). */
  invalid: Record<string, number>;
  /** Results the reader returned as readable that do not parse with `to`. */
  wrong: number;
  /** Reads that threw. */
  threw: number;
}

export function readDocuments(migration: Migration, docs: readonly QueryDocumentSnapshot[]): ReaderFigures {
  const figures: ReaderFigures = { sampled: docs.length, new: 0, legacy: 0, invalid: {}, wrong: 0, threw: 0 };
  for (const doc of docs) {
    try {
      const read = readInNewShape(migration, doc);
      if (read.shape === 'invalid') {
        figures.invalid[read.reason] = (figures.invalid[read.reason] ?? 0) + 1;
        continue;
      }
      figures[read.shape]++;
      if (!migration.to.safeParse(read.data).success) figures.wrong++;
    } catch {
      figures.threw++;
    }
  }
  return figures;
}

export function readerCheck(figures: ReaderFigures, thresholds: AlertThresholds): CheckResult {
  const base = { name: 'compatReader', dimension: 'compatibility' as const, unit: 'ratio' };
  if (figures.sampled === 0) {
    return { ...base, status: 'not-checkable', value: null, threshold: null, message: 'not measured: the target has no documents', recommendedAction: null };
  }
  const invalid = Object.values(figures.invalid).reduce((sum, count) => sum + count, 0);
  const readable = figures.new + figures.legacy - figures.wrong;
  const share = readable / figures.sampled;
  const reasons = Object.entries(figures.invalid).map(([reason, count]) => `${reason} ${count}`).join(', ');
  const summary =
    `${readable} of ${figures.sampled} sampled documents read in the new shape (${formatRatio(share)}): ${figures.new} stored new, ${figures.legacy} upgraded from legacy` +
    `${invalid > 0 ? `; ${invalid} unreadable in either shape (${reasons})` : ''}`;
  if (figures.wrong > 0 || figures.threw > 0) {
    return {
      ...base, status: 'critical', value: share, threshold: null,
      message: `${summary}; ${figures.wrong} readable results did not parse with the target schema and ${figures.threw} reads threw`,
      recommendedAction: 'The compatibility reader is handing the app data it cannot use: switch the mode back to normal (firemigrate mode normal) and fix the reader or the migration.',
    };
  }
  const verdict = evaluateBelow(share, thresholds.integrity);
  return {
    ...base, status: verdict.status, value: share, threshold: verdict.threshold, message: summary,
    recommendedAction: verdict.status === 'ok' ? null : 'Documents the app cannot read in either shape: read the failure records and fix the data, or keep the app on the legacy reader.',
  };
}

/** What the sync trigger's lag is measured from. */
export interface SyncFigures {
  /** The mode document, or why it could not be read. */
  mode: ModeState | Error;
  migrationId: string;
  /** Sampled documents still in the legacy shape that were written during dual-read, longer than `graceMs` ago. */
  lagging: string[];
  /** Sampled documents written during dual-read. */
  writtenDuringDualRead: number;
  /** Documents the sync trigger upgraded (its sync run's batch markers). */
  synced: number;
  graceMs: number;
}

/**
 * A document a client wrote in the legacy shape while the mode was dual-read must reach the new
 * shape within `graceMs` (the trigger normally lands within seconds): an older legacy write in the
 * sample is a document the trigger missed or has not reached.
 */
export function lagging(docs: readonly QueryDocumentSnapshot[], migration: Migration, since: Timestamp, before: number): string[] {
  return docs
    .filter((doc) => doc.updateTime.toMillis() >= since.toMillis() && doc.updateTime.toMillis() <= before)
    .filter((doc) => {
      try {
        return readInNewShape(migration, doc).shape === 'legacy';
      } catch {
        return false;
      }
    })
    .map((doc) => doc.ref.path);
}

export function syncTriggerCheck(figures: SyncFigures): CheckResult {
  const base = { name: 'syncTrigger', dimension: 'compatibility' as const, unit: 'docs' };
  if (figures.mode instanceof Error) {
    return { ...base, status: 'not-checkable', value: null, threshold: null, message: `not measured: ${figures.mode.message}`, recommendedAction: 'Repair the mode document with firemigrate mode.' };
  }
  const { mode } = figures;
  if (mode.mode !== 'dual-read' || !mode.migrations.includes(figures.migrationId) || !mode.changedAt) {
    return { ...base, status: 'not-checkable', value: null, threshold: null, message: `not measured: no sync trigger activity (mode ${mode.mode}${mode.mode === 'dual-read' ? ` for ${mode.migrations.join(', ') || 'no migration'}` : ''})`, recommendedAction: null };
  }
  const grace = `${Math.round(figures.graceMs / 1000)} s`;
  const count = figures.lagging.length;
  return {
    ...base, status: count > 0 ? 'warning' : 'ok', value: count, threshold: 0,
    message:
      `${count} of ${figures.writtenDuringDualRead} sampled documents written since dual-read began (${mode.changedAt.toDate().toISOString()}) are still in the legacy shape after ${grace}` +
      `${count > 0 ? `: ${figures.lagging.slice(0, 10).join(', ')}` : ''}; the trigger has upgraded ${figures.synced} documents`,
    recommendedAction: count > 0 ? 'The sync trigger is not keeping up: check the sync-<collection> function\'s logs and errors; the final sweep of the next run catches what it missed.' : null,
  };
}
