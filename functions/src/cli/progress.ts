/**
 * How `run --execute` shows a run's progress, gh-ost style — done/total, rate, ETA, failures,
 * batches in flight, the phase (partitions, then the final sweep) and, when batches are held
 * back, the throttle's reason — all from the runner's live state:
 * - `bar`: a cli-progress bar on a terminal (stderr), log lines printed above it;
 * - `line`: the same text as a plain line every `LINE_EVERY_MS` (a terminal-less human reader);
 * - `json`: one JSON object per second on stdout (`type: "progress"`), then the summary;
 * - `log`: a structured INFO entry every `LOG_EVERY_MS` (for log collectors, not terminals).
 */
import { MultiBar, type SingleBar } from 'cli-progress';
import type { ProgressSnapshot } from '../control/progress';
import type { SweepProgress } from '../engine/final-sweep';
import type { RunPhase } from '../engine/runner';
import type { ThrottleState } from '../engine/throttler';
import { formatCount, formatDuration } from './output';
import type { Logger } from './log';

export type ProgressMode = 'bar' | 'line' | 'json' | 'log';

export const JSON_EVERY_MS = 1000;
export const LINE_EVERY_MS = 2000;
export const LOG_EVERY_MS = 10_000;
const BAR_EVERY_MS = 250;

/** What a running session shows besides its counters. */
export interface LiveStatus {
  phase: RunPhase;
  sweep: SweepProgress | null;
  throttle: Pick<ThrottleState, 'throttled' | 'reason'>;
}

export interface ProgressSource {
  progress(): ProgressSnapshot;
  phase(): RunPhase;
  sweepProgress(): SweepProgress | null;
  throttleState(): ThrottleState;
}

export interface RunLabel {
  runId: string;
  migrationId: string;
}

export function liveStatusOf(source: ProgressSource): LiveStatus {
  return { phase: source.phase(), sweep: source.sweepProgress(), throttle: source.throttleState() };
}

/** The JSON-lines record of one progress tick (with `live`: the phase, the sweep and the throttle too). */
export function progressRecord(label: RunLabel, snapshot: ProgressSnapshot, live?: LiveStatus) {
  return {
    type: 'progress' as const,
    runId: label.runId,
    migrationId: label.migrationId,
    processed: snapshot.processed,
    total: snapshot.total,
    migrated: snapshot.migrated,
    skipped: snapshot.skipped,
    alreadyMigrated: snapshot.alreadyMigrated,
    failed: snapshot.failed,
    batches: snapshot.batches,
    inFlight: snapshot.inFlight,
    docsPerSecond: Math.round(snapshot.docsPerSecond * 10) / 10,
    etaSeconds: snapshot.etaSeconds === null ? null : Math.round(snapshot.etaSeconds),
    elapsedMs: snapshot.elapsedMs,
    ...(live ? { phase: live.phase, sweep: live.sweep, throttled: live.throttle.throttled, throttleReason: live.throttle.reason } : {}),
  };
}

/** `final sweep pass 1: 12,000 scanned · 40 in the old shape examined · 3 migrated · 37 failed` */
export function sweepText(sweep: SweepProgress): string {
  return (
    `final sweep pass ${sweep.pass}: ${formatCount(sweep.scanned)} scanned · ${formatCount(sweep.examined)} in the old shape examined · ` +
    `${formatCount(sweep.migrated)} migrated · ${formatCount(sweep.failed)} failed`
  );
}

/**
 * `4,512/5,000 (90.2 %) · 1,830 docs/s · ETA 12 s · migrated 4,442 · failed 70 · 4 batches in flight`,
 * then ` · throttled: <reason>` while the throttle holds batches back; during the final sweep the
 * sweep's figures replace the rate and ETA.
 */
export function progressText(snapshot: ProgressSnapshot, live?: LiveStatus): string {
  const done = snapshot.total === null ? formatCount(snapshot.processed) : `${formatCount(snapshot.processed)}/${formatCount(snapshot.total)}`;
  const share = snapshot.total ? ` (${((Math.min(snapshot.processed, snapshot.total) / snapshot.total) * 100).toFixed(1)} %)` : '';
  const throttled = live?.throttle.throttled && live.throttle.reason ? ` · throttled: ${live.throttle.reason}` : '';
  if (live?.phase === 'planning') return `planning the partitions${throttled}`;
  if (live?.sweep && live.phase !== 'migrating') return `${done}${share} · ${sweepText(live.sweep)}${throttled}`;
  const eta = snapshot.etaSeconds === null ? 'ETA unknown' : `ETA ${formatDuration(snapshot.etaSeconds)}`;
  return (
    `${done}${share} · ${formatCount(Math.round(snapshot.docsPerSecond))} docs/s · ${eta} · ` +
    `migrated ${formatCount(snapshot.migrated)} · failed ${formatCount(snapshot.failed)} · ${snapshot.inFlight} batches in flight${throttled}`
  );
}

export class ProgressDisplay {
  private timer?: NodeJS.Timeout;
  private bars?: MultiBar;
  private bar?: SingleBar;

  constructor(
    readonly mode: ProgressMode,
    private readonly label: RunLabel,
    private readonly logger: Logger,
    /** Where `line` mode writes (default stderr, beside the other human output). */
    private readonly out: NodeJS.WritableStream = process.stderr,
  ) {}

  /** A line for the user while the bar is drawn (the bar is redrawn below it). */
  write(line: string): void {
    if (this.bars) this.bars.log(line.endsWith('\n') ? line : `${line}\n`);
    else process.stderr.write(line);
  }

  start(source: ProgressSource): void {
    if (this.mode === 'bar') {
      this.bars = new MultiBar({
        format: '{bar} {percentage}% | {text}',
        hideCursor: true,
        clearOnComplete: false,
        stopOnComplete: false,
        barsize: 30,
        fps: 1000 / BAR_EVERY_MS,
      });
      const first = source.progress();
      this.bar = this.bars.create(first.total ?? 0, first.processed, { text: progressText(first, liveStatusOf(source)) });
    }
    const every = { bar: BAR_EVERY_MS, line: LINE_EVERY_MS, json: JSON_EVERY_MS, log: LOG_EVERY_MS }[this.mode];
    this.timer = setInterval(() => this.tick(source.progress(), liveStatusOf(source)), every);
  }

  private tick(snapshot: ProgressSnapshot, live: LiveStatus): void {
    if (this.mode === 'bar') {
      if (snapshot.total !== null && snapshot.processed > snapshot.total) this.bar?.setTotal(snapshot.processed);
      this.bar?.update(snapshot.processed, { text: progressText(snapshot, live) });
    } else if (this.mode === 'line') {
      this.out.write(`progress: ${progressText(snapshot, live)}\n`);
    } else if (this.mode === 'json') {
      process.stdout.write(`${JSON.stringify(progressRecord(this.label, snapshot, live))}\n`);
    } else {
      this.logger.info(`progress: ${progressText(snapshot, live)}`, progressRecord(this.label, snapshot, live));
    }
  }

  /** Stops the ticks; the bar (or line) is drawn one last time from `source`. */
  stop(source: ProgressSource): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'bar' || this.mode === 'line') this.tick(source.progress(), liveStatusOf(source));
    if (this.mode === 'bar') {
      this.bars?.stop();
      this.bars = undefined;
    }
  }
}
