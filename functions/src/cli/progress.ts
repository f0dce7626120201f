/**
 * How `run --execute` shows a run's progress, gh-ost style — done/total, rate, ETA, failures and
 * batches in flight, all from the runner's live counters:
 * - `bar`: a cli-progress bar on a terminal (stderr), log lines printed above it;
 * - `json`: one JSON object per second on stdout (`type: "progress"`), then the summary;
 * - `log`: a structured INFO entry every `LOG_EVERY_MS` (for log collectors, not terminals).
 */
import { MultiBar, type SingleBar } from 'cli-progress';
import type { ProgressSnapshot } from '../control/progress';
import { formatCount, formatDuration } from './output';
import type { Logger } from './log';

export type ProgressMode = 'bar' | 'json' | 'log';

export const JSON_EVERY_MS = 1000;
export const LOG_EVERY_MS = 10_000;
const BAR_EVERY_MS = 250;

export interface ProgressSource {
  progress(): ProgressSnapshot;
}

export interface RunLabel {
  runId: string;
  migrationId: string;
}

/** The JSON-lines record of one progress tick. */
export function progressRecord(label: RunLabel, snapshot: ProgressSnapshot) {
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
  };
}

/** `4,512/5,000 (90.2 %) · 1,830 docs/s · ETA 12 s · failed 70 · 4 batches in flight` */
export function progressText(snapshot: ProgressSnapshot): string {
  const done = snapshot.total === null ? formatCount(snapshot.processed) : `${formatCount(snapshot.processed)}/${formatCount(snapshot.total)}`;
  const share = snapshot.total ? ` (${((Math.min(snapshot.processed, snapshot.total) / snapshot.total) * 100).toFixed(1)} %)` : '';
  const eta = snapshot.etaSeconds === null ? 'ETA unknown' : `ETA ${formatDuration(snapshot.etaSeconds)}`;
  return (
    `${done}${share} · ${formatCount(Math.round(snapshot.docsPerSecond))} docs/s · ${eta} · ` +
    `migrated ${formatCount(snapshot.migrated)} · failed ${formatCount(snapshot.failed)} · ${snapshot.inFlight} batches in flight`
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
      this.bar = this.bars.create(first.total ?? 0, first.processed, { text: progressText(first) });
    }
    const every = this.mode === 'bar' ? BAR_EVERY_MS : this.mode === 'json' ? JSON_EVERY_MS : LOG_EVERY_MS;
    this.timer = setInterval(() => this.tick(source.progress()), every);
  }

  private tick(snapshot: ProgressSnapshot): void {
    if (this.mode === 'bar') {
      if (snapshot.total !== null && snapshot.processed > snapshot.total) this.bar?.setTotal(snapshot.processed);
      this.bar?.update(snapshot.processed, { text: progressText(snapshot) });
    } else if (this.mode === 'json') {
      process.stdout.write(`${JSON.stringify(progressRecord(this.label, snapshot))}\n`);
    } else {
      this.logger.info(`progress: ${progressText(snapshot)}`, progressRecord(this.label, snapshot));
    }
  }

  /** Stops the ticks; the bar is drawn one last time with `last`. */
  stop(last: ProgressSnapshot): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.mode === 'bar') {
      this.tick(last);
      this.bars?.stop();
      this.bars = undefined;
    }
  }
}
