/**
 * What a run needs to know of its target before the first batch: how many documents it holds,
 * how many are already at the target version, and the key ranges its partitions work through.
 *
 * Where Firestore has PartitionQuery (production) that is two count aggregations and one
 * PartitionQuery: no document is read. Where it does not (the emulator answers UNIMPLEMENTED),
 * the ranges need a scan of the keys anyway, and the emulator executes each count as a scan of
 * its own — so ONE stream of every document's marker field yields all three (the total, the
 * documents at target, split points sampled as it goes: `SplitPointSampler`).
 */
import { FieldPath, type Firestore } from '@google-cloud/firestore';
import type { PartitionMethod, KeyRange } from '../control/partitions';
import type { Migration, MigrationTarget } from '../definitions/types';
import { streamQueryDocuments, type KeyReaderOptions } from './key-reader';
import { desiredPartitionCount, isUnimplemented, partitionQuerySplitPoints, rangesFromSplitPoints, SplitPointSampler } from './partitioner';
import { targetQuery } from './planner';
import type { WireClient } from './wire/client';
import { grpcCode, Status } from './wire/status';
import type { RawFields } from './wire/types';

export interface TargetSurvey {
  total: number;
  /** Documents already at the target version; null where the count needs an index the project lacks. */
  atTarget: number | null;
  method: PartitionMethod;
  ranges: KeyRange[];
}

export interface SurveyOptions extends KeyReaderOptions {
  /** Partitions in flight at once (MIGRATION_CONCURRENT_BATCHES): sizes the ranges. */
  workers: number;
  /** Where a figure could not be taken (it only misses from the report). */
  warn?: (message: string) => void;
}

/** Whether a document's marker field (as the v1 API returns it) holds the target version. */
export function hasTargetMarker(fields: RawFields | null | undefined, marker: Migration['marker']): boolean {
  return fields?.[marker.field]?.stringValue === marker.to;
}

export async function countTarget(db: Firestore, target: MigrationTarget): Promise<number> {
  return (await targetQuery(db, target).count().get()).data().count;
}

/**
 * Documents already at the target version, by an equality count on the marker. A collection
 * group or a filtered target may need an index for it that the project does not have
 * (FAILED_PRECONDITION): the figure is then unknown (null), which only the report misses.
 */
async function countAtTarget(db: Firestore, migration: Pick<Migration, 'target' | 'marker'>, warn: (message: string) => void): Promise<number | null> {
  const { field, to } = migration.marker;
  try {
    return (await targetQuery(db, migration.target).where(new FieldPath(field), '==', to).count().get()).data().count;
  } catch (error) {
    if (grpcCode(error) !== Status.FAILED_PRECONDITION) throw error;
    warn(`documents already at "${to}" not counted (the count needs an index): ${(error as Error).message}`);
    return null;
  }
}

const partitionQuerySupport = new WeakMap<Firestore, boolean>();

/** Asks PartitionQuery for two ranges once per client: a cheap call where it exists, UNIMPLEMENTED on the emulator. */
async function supportsPartitionQuery(db: Firestore, target: MigrationTarget): Promise<boolean> {
  let supported = partitionQuerySupport.get(db);
  if (supported === undefined) {
    try {
      await partitionQuerySplitPoints(db, target, 2);
      supported = true;
    } catch (error) {
      if (!isUnimplemented(error)) throw error;
      supported = false;
    }
    partitionQuerySupport.set(db, supported);
  }
  return supported;
}

/** The marker-field scan: total, documents at target and split points in one pass. */
async function scanTarget(db: Firestore, wire: WireClient, migration: Pick<Migration, 'target' | 'marker'>, options: SurveyOptions): Promise<TargetSurvey> {
  const sampler = new SplitPointSampler(options.workers);
  let atTarget = 0;
  const query = targetQuery(db, migration.target).select(new FieldPath(migration.marker.field)).orderBy(FieldPath.documentId());
  for await (const { path, document } of streamQueryDocuments(db, wire, query, options)) {
    sampler.add(path);
    if (hasTargetMarker(document.fields as RawFields, migration.marker)) atTarget++;
  }
  const points = sampler.splitPoints();
  return { total: sampler.total, atTarget, method: points.length === 0 ? 'whole-target' : 'key-scan', ranges: rangesFromSplitPoints(points) };
}

export async function surveyTarget(db: Firestore, wire: WireClient, migration: Pick<Migration, 'target' | 'marker'>, options: SurveyOptions): Promise<TargetSurvey> {
  if (!(await supportsPartitionQuery(db, migration.target))) return scanTarget(db, wire, migration, options);
  const [total, atTarget] = await Promise.all([countTarget(db, migration.target), countAtTarget(db, migration, options.warn ?? (() => {}))]);
  const desired = desiredPartitionCount(total, options.workers);
  if (desired === 1) return { total, atTarget, method: 'whole-target', ranges: rangesFromSplitPoints([]) };
  return { total, atTarget, method: 'partition-query', ranges: rangesFromSplitPoints(await partitionQuerySplitPoints(db, migration.target, desired)) };
}
