import { InvalidArgumentError, type Command } from 'commander';
import type { Firestore, Timestamp } from '@google-cloud/firestore';
import { PartitionStore, type PartitionStatus } from '../../control/partitions';
import { ControlPaths } from '../../control/paths';
import { countFailureRecords, processedOf, type MarkerTotals } from '../../control/progress';
import { RunNotFoundError, RunStore, RESUMABLE_STATUSES, runFacts, type RunDocument, type RunSweepSummary, type RunThrottleSummary } from '../../control/runs';
import { totalsByPhase } from '../../engine/final-sweep';
import { sumRollbackMarkers, type RollbackRunDocument } from '../../rollback/rollback-run';
import type { RollbackTotals } from '../../rollback/types';
import { resumeCommand } from '../../engine/shutdown';
import type { ValidationReport } from '../../engine/validation';
import { getMode, ModeError } from '../../compat/modes';
import { CliError, EXIT_FAILURE, loadContextConfig, withFirestore, type GlobalOptions } from '../context';
import { formatCount, formatDuration, formatPercent, printJson, printLines, renderTable } from '../output';
import { modeJson, renderMode } from './mode';
import { rollbackResumeCommand } from './rollback';

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
  /** The main pass: the partitions' batch markers. */
  progress: MarkerTotals & { processed: number; targetDocuments: number | null };
  /** The final sweep: its batch markers over every session, and the latest session's summary. */
  sweep: { markers: MarkerTotals; latest: (Omit<RunSweepSummary, 'completedAt'> & { completedAt: string | null }) | null };
  /** The throttle and circuit breaker at the latest checkpoint. */
  throttle: (Omit<RunThrottleSummary, 'at'> & { at: string }) | null;
  failureRecords: number;
  /** The latest validation report (`firemigrate report`, or run's own after completing). */
  report: ValidationReport | null;
  /** Resumes that accepted a changed definition. */
  definitionChanges: number;
  partitions: { count: number | null; method: RunDocument['partitionMethod']; byStatus?: Record<PartitionStatus, number> };
  lease: { holder: string; expiresAt: string; live: boolean } | null;
  resumes: number;
  timings: { createdAt: string; startedAt: string | null; finishedAt: string | null; updatedAt: string; elapsedSeconds: number | null };
  resumeCommand: string | null;
  /** A rollback run's strategy, its source runs and its totals summed from its batch markers. */
  rollback: { strategy: string; force: boolean; sourceRuns: string[]; totals: RollbackTotals; validationOk: boolean | null } | null;
}

const iso = (time: Timestamp | null): string | null => (time ? time.toDate().toISOString() : null);

/** A run as `status` shows it (`withPartitions`: count its partitions by status, for the detail view). */
export async function viewOf(db: Firestore, paths: ControlPaths, run: RunDocument, withPartitions: boolean): Promise<RunStatusView> {
  const rollbackFields = run.kind === 'rollback' ? (run as RollbackRunDocument).rollback : undefined;
  const [byPhase, failureRecords, partitions, rollbackTotals] = await Promise.all([
    totalsByPhase(db, paths, run.migrationId, run.runId),
    countFailureRecords(db, paths, run.migrationId, run.runId),
    withPartitions ? new PartitionStore(db, paths).list(run.migrationId, run.runId) : Promise.resolve(null),
    rollbackFields ? sumRollbackMarkers({ db, paths }, run.migrationId, run.runId) : Promise.resolve(null),
  ]);
  const now = Date.now();
  const end = run.finishedAt?.toMillis() ?? (run.status === 'running' ? now : run.updatedAt.toMillis());
  const live = run.lease ? run.lease.expiresAt.toMillis() > now : false;
  // A `running` run without a live lease has lost its process: resumable like a paused one.
  const resumable = RESUMABLE_STATUSES.includes(run.status) && run.mode === 'execute' && !(run.status === 'running' && live);
  let byStatus: Record<PartitionStatus, number> | undefined;
  if (partitions) {
    byStatus = { pending: 0, running: 0, exhausted: 0 };
    for (const partition of partitions) byStatus[partition.status]++;
  }
  return {
    ...runFacts(run),
    checksum: run.checksum,
    progress: { ...byPhase.partitions, processed: processedOf(byPhase.partitions), targetDocuments: run.totals?.targetDocuments ?? null },
    sweep: { markers: byPhase.sweep, latest: run.sweep ? { ...run.sweep, completedAt: iso(run.sweep.completedAt) } : null },
    throttle: run.throttle ? { ...run.throttle, at: iso(run.throttle.at)! } : null,
    failureRecords,
    report: run.report ?? null,
    definitionChanges: run.definitionChanges?.length ?? 0,
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
    resumeCommand: !resumable ? null : rollbackFields ? rollbackResumeCommand(run.runId, []) : resumeCommand(run.migrationId, run.runId),
    rollback:
      rollbackFields && rollbackTotals
        ? { strategy: rollbackFields.strategy, force: rollbackFields.force, sourceRuns: rollbackFields.sourceRuns, totals: rollbackTotals, validationOk: rollbackFields.validation?.ok ?? null }
        : null,
  };
}

function progressText(view: RunStatusView): string {
  const { progress } = view;
  const total = progress.targetDocuments;
  return total ? `${formatCount(progress.processed)}/${formatCount(total)} (${formatPercent(Math.min(progress.processed, total), total)})` : formatCount(progress.processed);
}

/**
 * `throttle at …: throttled — ramp: trades 400 ops/s (minute 0, safety 0.8); pool 10/10 RPCs; RSS 120/512 MB;
 * ramp trades 400 ops/s; breaker 2.0 % failed of the last 1,000 documents (stops above 10.0 %)`
 */
export function throttleText(throttle: NonNullable<RunStatusView['throttle']>): string {
  const state = throttle.throttled && throttle.reason ? `throttled — ${throttle.reason}` : 'not throttled';
  const ramp = !throttle.rampEnabled
    ? 'ramp off (emulator)'
    : throttle.ramp.length > 0
      ? `ramp ${throttle.ramp.map((r) => `${r.collection} ${formatCount(r.opsPerSecond)} ops/s`).join(', ')}`
      : 'ramp not started';
  const { breaker } = throttle;
  return (
    `throttle at ${throttle.at}: ${state}; pool ${throttle.poolInUse}/${throttle.poolSize} RPCs; RSS ${throttle.rssMb}/${throttle.thresholdMb} MB; ${ramp}; ` +
    `breaker ${formatPercent(breaker.failed, breaker.sample)} failed of the last ${formatCount(breaker.sample)} documents (stops above ${(breaker.threshold * 100).toFixed(1)} %)`
  );
}

/** `report: PASSED at … — 2,940 at the target version all parse, 60 failed, 0 left in the old shape` */
export function reportText(report: ValidationReport): string {
  const { after, integrity } = report;
  const parse = integrity.invalid === 0 ? 'all parse' : `${formatCount(integrity.invalid)} do not parse`;
  return (
    `report: ${report.ok ? 'PASSED' : 'FAILED'} at ${report.validatedAt} — ${formatCount(after.total)} documents: ` +
    `${formatCount(after.atTarget)} at the target version (${parse}), ${formatCount(after.skipped)} skipped, ${formatCount(after.failed)} failed, ` +
    `${formatCount(after.remaining)} left in the old shape (firemigrate report ${report.runId})`
  );
}

function rollbackLines(rollback: NonNullable<RunStatusView['rollback']>): string[] {
  const t = rollback.totals;
  const validation = rollback.validationOk === null ? 'not validated yet' : rollback.validationOk ? 'validation passed' : 'validation FAILED';
  return [
    `  rollback: ${rollback.strategy}${rollback.force ? ' (force)' : ''} of runs ${rollback.sourceRuns.join(', ')}; ${validation}`,
    `  restored ${formatCount(t.restored)}, already restored ${formatCount(t.alreadyRestored)}, conflicts ${formatCount(t.conflicts)}` +
      `${t.forced ? ` (${formatCount(t.forced)} forced)` : ''}, missing documents ${formatCount(t.missingDocuments)}, missing before-images ${formatCount(t.missingBackups)}, ` +
      `failed ${formatCount(t.failed)}; batches ${formatCount(t.batches)}`,
  ];
}

export function renderRunDetail(view: RunStatusView): string[] {
  const { progress, timings } = view;
  const lines = [
    `Run ${view.runId} — ${view.migrationId} (${view.kind}, ${view.mode}): ${view.status.toUpperCase()}${view.statusReason ? ` — ${view.statusReason}` : ''}`,
    `  by ${view.user} (identity ${view.identity})${view.reason ? `, reason: ${view.reason}` : ''}; checksum ${view.checksum.slice(0, 12)}…`,
    ...(view.rollback ? rollbackLines(view.rollback) : [
      `  progress: ${progressText(view)} documents — migrated ${formatCount(progress.migrated)}, already at target ${formatCount(progress.alreadyMigrated)}, ` +
        `skipped ${formatCount(progress.skipped)}, failed ${formatCount(progress.failed)}`,
      `  batches: ${formatCount(progress.batches)}${progress.meanLatencyMs === null ? '' : `, mean batch latency ${Math.round(progress.meanLatencyMs)} ms`}; ` +
        `failure records: ${formatCount(view.failureRecords)}`,
    ]),
  ];
  const sweep = view.sweep;
  if (sweep.latest || sweep.markers.batches > 0) {
    const latest = sweep.latest;
    const passes = latest ? `${latest.passes} ${latest.passes === 1 ? 'pass' : 'passes'}, ` : '';
    const state = latest?.completedAt ? `, clean at ${latest.completedAt}` : latest ? ', not clean' : '';
    lines.push(
      `  final sweep: ${passes}${formatCount(processedOf(sweep.markers))} documents in the old shape examined, ` +
        `${formatCount(sweep.markers.migrated)} migrated, ${formatCount(sweep.markers.failed)} failed${state}`,
    );
  }
  if (view.throttle) lines.push(`  ${throttleText(view.throttle)}`);
  if (view.report) lines.push(`  ${reportText(view.report)}`);
  if (view.definitionChanges > 0) lines.push(`  definition changed on ${view.definitionChanges} resume${view.definitionChanges === 1 ? '' : 's'} (accepted; see the audit trail)`);
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
      view.rollback ? `${formatCount(view.rollback.totals.restored)} restored` : progressText(view),
      formatCount(view.rollback ? view.rollback.totals.restored : view.progress.migrated + view.sweep.markers.migrated),
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
    .description(
      'Show runs: status and why, progress summed from the batch markers, the final sweep, the throttle and circuit breaker at the ' +
        'latest checkpoint, the validation report, failure records, lease and timings',
    )
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
        // A malformed mode document is reported, not fatal: the runs are what `status` is for.
        const mode = getMode(db).catch((error: Error) => (error instanceof ModeError ? error : Promise.reject(error)));
        const [views, state] = await Promise.all([Promise.all(list.map((run) => viewOf(db, paths, run, false))), mode]);
        const modeLines = state instanceof ModeError ? [`Mode: unreadable — ${state.message}`] : renderMode(state);
        if (globals.json) printJson({ runs: views, mode: state instanceof ModeError ? { error: state.message } : modeJson(state) });
        else printLines([...renderRunTable(views), '', ...modeLines]);
      });
    });
}
