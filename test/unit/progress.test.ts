import { ProgressTracker, RATE_WINDOW_MS, ZERO_TOTALS, processedOf } from '../../functions/src/control/progress';
import { createLogger, formatEntry } from '../../functions/src/cli/log';
import { progressRecord, progressText } from '../../functions/src/cli/progress';

const batch = (migrated: number, failed = 0, alreadyMigrated = 0, skipped = 0) => ({ migrated, failed, alreadyMigrated, skipped });

describe('ProgressTracker', () => {
  it('starts from the totals of earlier sessions and adds each committed batch', () => {
    const base = { ...ZERO_TOTALS, batches: 4, migrated: 380, failed: 20 };
    const tracker = new ProgressTracker(base, 1000, 0);
    tracker.batchStarted();
    tracker.batchStarted();
    expect(tracker.snapshot(0).inFlight).toBe(2);
    tracker.batchEnded(batch(90, 5, 5), 1000);
    tracker.batchEnded(null, 1000);
    const snapshot = tracker.snapshot(1000);
    expect(snapshot).toMatchObject({ batches: 5, migrated: 470, failed: 25, alreadyMigrated: 5, skipped: 0, processed: 500, sessionProcessed: 100, total: 1000, inFlight: 0, elapsedMs: 1000 });
    // 100 documents in 1 s; 500 left.
    expect(snapshot.docsPerSecond).toBe(100);
    expect(snapshot.etaSeconds).toBe(5);
  });

  it('measures the rate over the last window only, so a slowdown shows', () => {
    const tracker = new ProgressTracker(ZERO_TOTALS, 100_000, 0);
    // 1000 docs/s for 20 s …
    for (let t = 1000; t <= 20_000; t += 1000) {
      tracker.batchStarted();
      tracker.batchEnded(batch(1000), t);
    }
    expect(tracker.snapshot(20_000).docsPerSecond).toBeCloseTo(1000);
    // … then 100 docs/s for the next 10 s.
    for (let t = 21_000; t <= 30_000; t += 1000) {
      tracker.batchStarted();
      tracker.batchEnded(batch(100), t);
    }
    expect(RATE_WINDOW_MS).toBe(10_000);
    expect(tracker.snapshot(30_000).docsPerSecond).toBeCloseTo(100);
    // Nothing for 10 more seconds: the rate decays instead of freezing at its last value.
    expect(tracker.snapshot(40_000).docsPerSecond).toBeCloseTo(50);
  });

  it('has no ETA without a rate or a total, and ETA 0 when everything is done', () => {
    expect(new ProgressTracker(ZERO_TOTALS, 10, 0).snapshot(5).etaSeconds).toBeNull();
    expect(new ProgressTracker(ZERO_TOTALS, null, 0).snapshot(5).etaSeconds).toBeNull();
    const done = new ProgressTracker({ ...ZERO_TOTALS, migrated: 10 }, 10, 0);
    expect(done.snapshot(5).etaSeconds).toBe(0);
  });

  it('counts processed as migrated + skipped + already at target + failed', () => {
    expect(processedOf(batch(1, 2, 3, 4))).toBe(10);
  });
});

describe('progress rendering', () => {
  const tracker = new ProgressTracker({ ...ZERO_TOTALS, batches: 45, migrated: 4442, failed: 70 }, 5000, 0);
  const snapshot = { ...tracker.snapshot(2000), docsPerSecond: 1830.46, etaSeconds: 12.4, inFlight: 4 };

  it('writes one line: done/total, rate, ETA, migrated, failures, batches in flight', () => {
    expect(progressText(snapshot)).toBe('4,512/5,000 (90.2 %) · 1,830 docs/s · ETA 12 s · migrated 4,442 · failed 70 · 4 batches in flight');
    expect(progressText({ ...snapshot, total: null, etaSeconds: null })).toBe('4,512 · 1,830 docs/s · ETA unknown · migrated 4,442 · failed 70 · 4 batches in flight');
  });

  it('writes a JSON record with the run and rounded rate and ETA', () => {
    expect(progressRecord({ runId: 'r1', migrationId: 'm' }, snapshot)).toEqual({
      type: 'progress',
      runId: 'r1',
      migrationId: 'm',
      processed: 4512,
      total: 5000,
      migrated: 4442,
      skipped: 0,
      alreadyMigrated: 0,
      failed: 70,
      batches: 45,
      inFlight: 4,
      docsPerSecond: 1830.5,
      etaSeconds: 12,
      elapsedMs: 2000,
    });
  });
});

describe('structured log', () => {
  const at = new Date('2026-11-29T12:00:01.500Z');

  it('writes Cloud Logging entries: severity, message, time, fields in the payload', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'json', write: (line) => lines.push(line), base: { runId: 'r1' }, minSeverity: 'INFO', now: () => at });
    log.debug('hidden');
    log.info('started', { partitions: 3, big: 9007199254740993n });
    log.warning('slow', { severity: 'spoofed', message: 'spoofed' });
    log.error('failed', { error: new TypeError('bad') });
    expect(lines.map((line) => JSON.parse(line))).toEqual([
      { runId: 'r1', partitions: 3, big: '9007199254740993', severity: 'INFO', message: 'started', time: '2026-11-29T12:00:01.500Z' },
      { runId: 'r1', severity: 'WARNING', message: 'slow', time: '2026-11-29T12:00:01.500Z' },
      { runId: 'r1', error: { name: 'TypeError', message: 'bad' }, severity: 'ERROR', message: 'failed', time: '2026-11-29T12:00:01.500Z' },
    ]);
    expect(lines.every((line) => line.endsWith('\n') && !line.slice(0, -1).includes('\n'))).toBe(true);
  });

  it('writes DEBUG when asked, and short lines for a terminal', () => {
    const lines: string[] = [];
    const log = createLogger({ format: 'text', write: (line) => lines.push(line), minSeverity: 'DEBUG', now: () => at });
    log.debug('batch p0000-00000001 committed');
    expect(lines).toEqual(['12:00:01 DEBUG   batch p0000-00000001 committed\n']);
    expect(formatEntry({ severity: 'WARNING', message: 'm', time: at.toISOString() }, 'text')).toBe('12:00:01 WARNING m');
  });
});
