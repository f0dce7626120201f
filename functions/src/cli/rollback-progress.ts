/**
 * How `rollback --execute` shows a rollback's progress, in the four modes of `run` (progress.ts):
 * a bar on a terminal, a plain line, one JSON object per second with --json, or a structured log
 * entry. The counters are a rollback's (restored, conflicts, failed), not a migration's.
 */
import { MultiBar, type SingleBar } from 'cli-progress';
import type { RollbackProgress } from '../rollback/types';
import type { Logger } from './log';
import { formatCount, formatDuration } from './output';
import { JSON_EVERY_MS, LINE_EVERY_MS, LOG_EVERY_MS, type ProgressMode } from './progress';

const BAR_EVERY_MS = 250;

export interface RollbackLabel {
  runId: string;
  migrationId: string;
}

function etaSeconds(progress: RollbackProgress): number | null {
  if (progress.total === null || progress.docsPerSecond <= 0) return null;
  return Math.max(0, progress.total - progress.processed) / progress.docsPerSecond;
}

export function rollbackProgressRecord(label: RollbackLabel, progress: RollbackProgress) {
  const eta = etaSeconds(progress);
  return {
    type: 'progress' as const,
    runId: label.runId,
    migrationId: label.migrationId,
    processed: progress.processed,
    total: progress.total,
    restored: progress.restored,
    alreadyRestored: progress.alreadyRestored,
    conflicts: progress.conflicts,
    forced: progress.forced,
    missingDocuments: progress.missingDocuments,
    missingBackups: progress.missingBackups,
    failed: progress.failed,
    batches: progress.batches,
    currentRunId: progress.currentRunId,
    docsPerSecond: Math.round(progress.docsPerSecond * 10) / 10,
    etaSeconds: eta === null ? null : Math.round(eta),
    elapsedMs: Date.now() - progress.startedAt,
  };
}

/** `4,512/5,000 (90.2 %) · 1,830 docs/s · ETA 12 s · restored 4,400 · conflicts 3 · failed 0 · run 20261129-…` */
export function rollbackProgressText(progress: RollbackProgress): string {
  const done = progress.total === null ? formatCount(progress.processed) : `${formatCount(progress.processed)}/${formatCount(progress.total)}`;
  const share = progress.total ? ` (${((Math.min(progress.processed, progress.total) / progress.total) * 100).toFixed(1)} %)` : '';
  const eta = etaSeconds(progress);
  const run = progress.currentRunId ? ` · undoing run ${progress.currentRunId}` : '';
  return (
    `${done}${share} · ${formatCount(Math.round(progress.docsPerSecond))} docs/s · ${eta === null ? 'ETA unknown' : `ETA ${formatDuration(eta)}`} · ` +
    `restored ${formatCount(progress.restored)} · conflicts ${formatCount(progress.conflicts)} · failed ${formatCount(progress.failed)}${run}`
  );
}

export class RollbackProgressDisplay {
  private timer?: NodeJS.Timeout;
  private bars?: MultiBar;
  private bar?: SingleBar;

  constructor(
    readonly mode: ProgressMode,
    private readonly label: RollbackLabel,
    private readonly logger: Logger,
  ) {}

  /** A line for the user while the bar is drawn (the bar is redrawn below it). */
  write(line: string): void {
    if (this.bars) this.bars.log(line.endsWith('\n') ? line : `${line}\n`);
    else process.stderr.write(line);
  }

  start(source: { progress(): RollbackProgress }): void {
    if (this.mode === 'bar') {
      this.bars = new MultiBar({ format: '{bar} {percentage}% | {text}', hideCursor: true, clearOnComplete: false, stopOnComplete: false, barsize: 30, fps: 1000 / BAR_EVERY_MS });
      const first = source.progress();
      this.bar = this.bars.create(first.total ?? 0, first.processed, { text: rollbackProgressText(first) });
    }
    const every = { bar: BAR_EVERY_MS, line: LINE_EVERY_MS, json: JSON_EVERY_MS, log: LOG_EVERY_MS }[this.mode];
    this.timer = setInterval(() => this.tick(source.progress()), every);
  }

  private tick(progress: RollbackProgress): void {
    if (this.mode === 'bar') {
      if (progress.total !== null && progress.processed > progress.total) this.bar?.setTotal(progress.processed);
      this.bar?.update(progress.processed, { text: rollbackProgressText(progress) });
    } else if (this.mode === 'line') {
      process.stderr.write(`progress: ${rollbackProgressText(progress)}\n`);
    } else if (this.mode === 'json') {
      process.stdout.write(`${JSON.stringify(rollbackProgressRecord(this.label, progress))}\n`);
    } else {
      this.logger.info(`progress: ${rollbackProgressText(progress)}`, rollbackProgressRecord(this.label, progress));
    }
  }

  /** Stops the ticks; the bar (or line) is drawn one last time. */
  stop(source: { progress(): RollbackProgress }): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'bar' || this.mode === 'line') this.tick(source.progress());
    if (this.mode === 'bar') {
      this.bars?.stop();
      this.bars = undefined;
    }
  }
}
