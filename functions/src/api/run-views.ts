import type { Timestamp } from '@google-cloud/firestore';
import { runFacts, type RunDocument } from '../control/runs';
import type { RunFigures } from './migration-state';

const iso = (time: Timestamp | null | undefined): string | null => (time ? time.toDate().toISOString() : null);

/** A run as the API returns it: the run document's facts (times as ISO strings) and its figures. */
export function runView(run: RunDocument, figures: RunFigures, now: Date) {
  return {
    ...runFacts(run),
    checksum: run.checksum,
    progress: figures.progress,
    throughput: figures.throughput,
    estimatedCompletion: figures.estimatedCompletion?.toISOString() ?? null,
    failureRecords: figures.failureRecords,
    partitions: { count: run.partitionCount, method: run.partitionMethod },
    lease: run.lease ? { holder: run.lease.holder, expiresAt: iso(run.lease.expiresAt), live: run.lease.expiresAt.toMillis() > now.getTime() } : null,
    resumes: run.resumes,
    createdAt: iso(run.createdAt),
    startedAt: iso(run.startedAt),
    finishedAt: iso(run.finishedAt),
    updatedAt: iso(run.updatedAt),
  };
}

export type RunView = ReturnType<typeof runView>;
