import { InvalidArgumentError, type Command } from 'commander';
import type { Firestore, Timestamp } from '@google-cloud/firestore';
import { PartitionStore, type PartitionStatus } from '../../control/partitions';
import { ControlPaths } from '../../control/paths';
import { countFailureRecords, processedOf, sumMarkers, type MarkerTotals } from '../../control/progress';
import { RunNotFoundError, RunStore, RESUMABLE_STATUSES, type RunDocument } from '../../control/runs';
import { resumeCommand } from '../../engine/shutdown';
import { CliError, EXIT_FAILURE, loadContextConfig, withFirestore, type GlobalOptions } from '../context';
import { formatCount, formatDuration, formatPercent, printJson, printLines, renderTable } from '../output';

interface StatusFlags {
  migration?: string;
  limit: number;
}

/** One run as `status` shows it: the run document's facts, progress summed from its markers. */
export interface RunStatusView {
  runId: string;
  migrationId: string;
  kind: RunDocument['kind'];
  mode: RunDocument['mode'];
  status: RunDocument['status'];
  statusReason: string | null;
  user: string;
  identity: string;
  reason: string | null;
  checksum: string;
  progress: MarkerTotals & { processed: number; targetDocuments: number | null };
  failureRecords: number;
  partitions: { count: number | null; method: RunDocument['partitionMethod']; byStatus?: Record<PartitionStatus, number> };
  lease: { holder: string; expiresAt: string; live: boolean } | null;
  resumes: number;
  timings: { createdAt: string; startedAt: string | null; finishedAt: string | null; updatedAt: string; elapsedSeconds: number | null };
  resumeCommand: string | null;
}

const iso = (time: Timestamp | null): string | null => (time ? time.toDate().toISOString() : null);

async function viewOf(db: Firestore, paths: ControlPaths, run: RunDocument, withPartitions: boolean): Promise<RunStatusView> {
  const [totals, failureRecords, partitions] = await Promise.all([
    sumMarkers(db, paths, run.migrationId, run.runId),
    countFailureRecords(db, paths, run.migrationId, run.runId),
    withPartitions ? new PartitionStore(db, paths).list(run.migrationId, run.runId) : Promise.resolve(null),
  ]);
  const now = Date.now();
  const end = run.finishedAt?.toMillis() ?? (run.status === 'running' ? now : run.updatedAt.toMillis());
  const live = run.lease ? run.lease.expiresAt.toMillis() > now : false;
  // A `running` run without a live lease has lost its process: resumable like a paused one.
  const resumable = RESUMABLE_STATUSES.includes(run.status) && run.kind === 'migrate' && run.mode === 'execute' && !(run.status === 'running' && live);
  let byStatus: Record<PartitionStatus, number> | undefined;
  if (partitions) {
    byStatus = { pending: 0, running: 0, exhausted: 0 };
    for (const partition of partitions) byStatus[partition.status]++;
  }
  return {
    runId: run.runId,
    migrationId: run.migrationId,
    kind: run.kind,
    mode: run.mode,
    status: run.status,
    statusReason: run.statusReason,
    user: run.user,
    identity: run.identity,
    reason: run.reason,
    checksum: run.checksum,
    progress: { ...totals, processed: processedOf(totals), targetDocuments: run.totals?.targetDocuments ?? null },
    failureRecords,
    partitions: { count: run.partitionCount, method: run.partitionMethod, ...(byStatus ? { byStatus } : {}) },
    lease: run.lease ? { holder: run.lease.holder, expiresAt: iso(run.lease.expiresAt)!, live } : null,
    resumes: run.resumes,
    timings: {
      createdAt: iso(run.createdAt)!,
      startedAt: iso(run.startedAt),
      finishedAt: iso(run.finishedAt),
      updatedAt: iso(run.updatedAt)!,
      elapsedSeconds: run.startedAt ? Math.max(0, (end - run.startedAt.toMillis()) / 1000) : null,
    },
    resumeCommand: resumable ? resumeCommand(run.migrationId, run.runId) : null,
  };
}

function progressText(view: RunStatusView): string {
  const { progress } = view;
  const total = progress.targetDocuments;
  return total ? `${formatCount(progress.processed)}/${formatCount(total)} (${formatPercent(Math.min(progress.processed, total), total)})` : formatCount(progress.processed);
}

export function renderRunDetail(view: RunStatusView): string[] {
  const { progress, timings } = view;
  const lines = [
    `Run ${view.runId} — ${view.migrationId} (${view.kind}, ${view.mode}): ${view.status.toUpperCase()}${view.statusReason ? ` — ${view.statusReason}` : ''}`,
    `  by ${view.user} (identity ${view.identity})${view.reason ? `, reason: ${view.reason}` : ''}; checksum ${view.checksum.slice(0, 12)}…`,
    `  progress: ${progressText(view)} documents — migrated ${formatCount(progress.migrated)}, already at target ${formatCount(progress.alreadyMigrated)}, ` +
      `skipped ${formatCount(progress.skipped)}, failed ${formatCount(progress.failed)}`,
    `  batches: ${formatCount(progress.batches)}${progress.meanLatencyMs === null ? '' : `, mean batch latency ${Math.round(progress.meanLatencyMs)} ms`}; ` +
      `failure records: ${formatCount(view.failureRecords)}`,
  ];
  const partitions = view.partitions;
  if (partitions.count !== null) {
    const states = partitions.byStatus ? `: ${Object.entries(partitions.byStatus).map(([status, n]) => `${n} ${status}`).join(', ')}` : '';
    lines.push(`  partitions: ${partitions.count} (${partitions.method})${states}`);
  }
  if (view.lease) {
    const left = (Date.parse(view.lease.expiresAt) - Date.now()) / 1000;
    lines.push(
      `  lease: ${view.lease.holder}, ${view.lease.live ? `live, expires in ${formatDuration(left)}` : `EXPIRED ${formatDuration(-left)} ago (its process is gone)`}`,
    );
  } else {
    lines.push('  lease: none');
  }
  lines.push(
    `  created ${timings.createdAt}; started ${timings.startedAt ?? '-'}; finished ${timings.finishedAt ?? '-'}` +
      `${timings.elapsedSeconds === null ? '' : `; ${formatDuration(timings.elapsedSeconds)} elapsed`}${view.resumes > 0 ? `; resumed ${view.resumes}×` : ''}`,
  );
  if (view.resumeCommand) lines.push(`  resume: ${view.resumeCommand}`);
  return lines;
}

export function renderRunTable(views: readonly RunStatusView[]): string[] {
  if (views.length === 0) return ['No runs.'];
  return renderTable(
    ['RUN', 'MIGRATION', 'KIND', 'STATUS', 'PROGRESS', 'MIGRATED', 'FAILED', 'LEASE', 'STARTED', 'FINISHED'],
    views.map((view) => [
      view.runId,
      view.migrationId,
      `${view.kind}/${view.mode}`,
      view.status,
      progressText(view),
      formatCount(view.progress.migrated),
      formatCount(view.failureRecords),
      view.lease ? (view.lease.live ? 'live' : 'expired') : '-',
      view.timings.startedAt ?? '-',
      view.timings.finishedAt ?? '-',
    ]),
  );
}

function positiveInteger(text: string): number {
  if (!/^[1-9]\d*$/.test(text)) throw new InvalidArgumentError('expected an integer of 1 or more');
  return Number(text);
}

export function register(program: Command): void {
  program
    .command('status [runId]')
    .description('Show runs: status, progress summed from the batch markers, failure records, lease and timings')
    .option('--migration <id>', 'only the runs of this migration')
    .option('--limit <n>', 'newest runs listed per migration', positiveInteger, 10)
    .action(async (runId: string | undefined, flags: StatusFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const config = loadContextConfig();
      const paths = new ControlPaths(config.migration.controlCollection);
      await withFirestore(globals, async ({ db }) => {
        const runs = new RunStore(db, paths);
        if (runId) {
          let run: RunDocument;
          try {
            run = flags.migration ? await runs.get(flags.migration, runId) : await runs.find(runId);
          } catch (error) {
            if (error instanceof RunNotFoundError) throw new CliError(error.message, EXIT_FAILURE);
            throw error;
          }
          const view = await viewOf(db, paths, run, true);
          if (globals.json) printJson(view);
          else printLines(renderRunDetail(view));
          return;
        }
        const list = flags.migration ? await runs.list(flags.migration, flags.limit) : await runs.listAll(flags.limit);
        const views = await Promise.all(list.map((run) => viewOf(db, paths, run, false)));
        if (globals.json) printJson({ runs: views });
        else printLines(renderRunTable(views));
      });
    });
}
