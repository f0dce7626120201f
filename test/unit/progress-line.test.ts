import { ProgressTracker, ZERO_TOTALS } from '../../functions/src/control/progress';
import { liveStatusOf, progressRecord, progressText, type LiveStatus, type ProgressSource } from '../../functions/src/cli/progress';
import { renderRunDetail, reportText, throttleText, type RunStatusView } from '../../functions/src/cli/commands/status';
import { renderValidationReport } from '../../functions/src/cli/commands/report';
import { Throttler } from '../../functions/src/engine/throttler';
import type { ValidationReport } from '../../functions/src/engine/validation';

const tracker = new ProgressTracker({ ...ZERO_TOTALS, batches: 45, migrated: 4442, failed: 70 }, 5000, 0);
const snapshot = { ...tracker.snapshot(2000), docsPerSecond: 1830.46, etaSeconds: 12.4, inFlight: 4 };
const notThrottled: LiveStatus['throttle'] = { throttled: false, reason: null };

describe('progress line with the live status', () => {
  it('says why batches are held back, with the figures of the plain line', () => {
    const live: LiveStatus = { phase: 'migrating', sweep: null, throttle: { throttled: true, reason: 'ramp: trades 400 ops/s (minute 0, safety 0.8)' } };
    expect(progressText(snapshot, live)).toBe(
      '4,512/5,000 (90.2 %) · 1,830 docs/s · ETA 12 s · migrated 4,442 · failed 70 · 4 batches in flight · throttled: ramp: trades 400 ops/s (minute 0, safety 0.8)',
    );
    expect(progressText(snapshot, { ...live, throttle: notThrottled })).toBe(progressText(snapshot));
  });

  it('shows the throttle reason of a real throttler: its memory pause, then a full pool', async () => {
    let rss = 600;
    const throttler = new Throttler({ quotaSafety: 0.8, poolSize: 1, memoryThresholdMb: 512, ramp: false, readRssMb: () => rss, clock: () => 0 });
    expect(throttler.decide({ trades: 10 }).action).toBe('pause');
    const source: ProgressSource = {
      progress: () => snapshot,
      phase: () => 'migrating',
      sweepProgress: () => null,
      throttleState: () => throttler.state(),
    };
    expect(progressText(snapshot, liveStatusOf(source))).toMatch(/ · throttled: memory: 600 MB ≥ 512 MB threshold: paused until it falls below$/);

    rss = 100;
    expect(throttler.decide({ trades: 10 }).action).toBe('go');
    await throttler.pool.acquire();
    const waiting = throttler.pool.acquire();
    expect(progressText(snapshot, liveStatusOf(source))).toMatch(/ · throttled: pool: 1\/1 RPCs in flight$/);
    throttler.pool.release();
    await waiting;
    throttler.pool.release();
    expect(progressText(snapshot, liveStatusOf(source))).not.toContain('throttled');
  });

  it('shows the final sweep once the partitions are done', () => {
    const done = { ...snapshot, processed: 5000, etaSeconds: 0 };
    const sweep = { pass: 2, scanned: 1200, examined: 45, migrated: 3, skipped: 0, alreadyMigrated: 0, failed: 42, batches: 2 };
    expect(progressText(done, { phase: 'sweeping', sweep, throttle: notThrottled })).toBe(
      '5,000/5,000 (100.0 %) · final sweep pass 2: 1,200 scanned · 45 in the old shape examined · 3 migrated · 42 failed',
    );
    expect(progressText(done, { phase: 'planning', sweep: null, throttle: notThrottled })).toBe('planning the partitions');
  });

  it('adds the phase, the sweep and the throttle to the JSON record only when given', () => {
    const live: LiveStatus = { phase: 'migrating', sweep: null, throttle: { throttled: true, reason: 'memory: 430 MB ≥ 80 % of 512 MB' } };
    const record = progressRecord({ runId: 'r1', migrationId: 'm' }, snapshot, live);
    expect(record).toMatchObject({ type: 'progress', processed: 4512, phase: 'migrating', sweep: null, throttled: true, throttleReason: 'memory: 430 MB ≥ 80 % of 512 MB' });
    expect(progressRecord({ runId: 'r1', migrationId: 'm' }, snapshot)).not.toHaveProperty('throttleReason');
  });
});

const report: ValidationReport = {
  migrationId: 'tradeya-trades-v2',
  runId: 'r1',
  checksum: 'c'.repeat(64),
  definitionMatchesRun: true,
  validatedAt: '2026-11-29T12:00:00.000Z',
  elapsedMs: 4200,
  ok: true,
  before: { total: 3000, atTarget: 150, oldShape: 2850 },
  after: { total: 3001, atTarget: 2941, migrated: 2791, alreadyAtTarget: 150, skipped: 0, failed: 60, remaining: 0 },
  integrity: { checked: 2941, valid: 2941, invalid: 0 },
  failureRecords: 61,
  failures: [{ errorClass: 'invalid-source', severity: 'medium', count: 60, paths: ['trades/a', 'trades/b', 'trades/c', 'trades/d'], firstMessage: 'does not match the source schema: creatorId: invalid_type' }],
  remainingPaths: [],
};

function statusView(throttle: RunStatusView['throttle']): RunStatusView {
  const markers = { batches: 30, migrated: 2790, skipped: 0, alreadyMigrated: 150, failed: 60, meanLatencyMs: 80 };
  return {
    runId: 'r1',
    migrationId: 'tradeya-trades-v2',
    kind: 'migrate',
    mode: 'execute',
    status: 'running',
    statusReason: null,
    user: 'ops',
    identity: 'emulator',
    reason: null,
    checksum: 'c'.repeat(64),
    progress: { ...markers, processed: 3000, targetDocuments: 3000 },
    sweep: { markers: { ...ZERO_TOTALS, batches: 1, migrated: 1, failed: 60 }, latest: { passes: 2, examined: 61, migrated: 1, skipped: 0, failed: 60, completedAt: '2026-11-29T11:59:00.000Z' } },
    throttle,
    failureRecords: 61,
    report,
    definitionChanges: 1,
    partitions: { count: 4, method: 'key-scan' },
    lease: null,
    resumes: 1,
    timings: { createdAt: '2026-11-29T11:50:00.000Z', startedAt: '2026-11-29T11:50:01.000Z', finishedAt: null, updatedAt: '2026-11-29T11:59:00.000Z', elapsedSeconds: 540 },
    resumeCommand: null,
    rollback: null,
  };
}

describe('status output', () => {
  const throttled = {
    throttled: true,
    reason: 'ramp: firemigrate_backups 400 ops/s (minute 0, safety 0.8)',
    poolInUse: 10,
    poolSize: 10,
    rssMb: 130,
    thresholdMb: 512,
    rampEnabled: true,
    ramp: [
      { collection: 'trades', opsPerSecond: 400, minute: 0 },
      { collection: 'firemigrate_backups', opsPerSecond: 400, minute: 0 },
    ],
    breaker: { rate: 0.02, failed: 20, sample: 1000, threshold: 0.1 },
    at: '2026-11-29T11:58:00.000Z',
  };

  it('shows the throttle reason stored at the latest checkpoint, with pool, memory, ramp and breaker', () => {
    expect(throttleText(throttled)).toBe(
      'throttle at 2026-11-29T11:58:00.000Z: throttled — ramp: firemigrate_backups 400 ops/s (minute 0, safety 0.8); pool 10/10 RPCs; ' +
        'RSS 130/512 MB; ramp trades 400 ops/s, firemigrate_backups 400 ops/s; breaker 2.0 % failed of the last 1,000 documents (stops above 10.0 %)',
    );
    const lines = renderRunDetail(statusView(throttled));
    expect(lines).toContain(`  ${throttleText(throttled)}`);
    expect(lines).toContain('  final sweep: 2 passes, 61 documents in the old shape examined, 1 migrated, 60 failed, clean at 2026-11-29T11:59:00.000Z');
    expect(lines).toContain(`  ${reportText(report)}`);
    expect(lines).toContain('  definition changed on 1 resume (accepted; see the audit trail)');
  });

  it('says when nothing held batches back, and leaves the line out before the first checkpoint', () => {
    expect(throttleText({ ...throttled, throttled: false, reason: null, rampEnabled: false, ramp: [] })).toMatch(/^throttle at [^:]+:\d\d:\d\d\.\d+Z: not throttled; pool 10\/10 RPCs; RSS 130\/512 MB; ramp off \(emulator\); /);
    expect(renderRunDetail(statusView(null)).some((line) => line.includes('throttle'))).toBe(false);
  });
});

describe('status of a rollback run', () => {
  it('shows the strategy, the source runs and the restore totals instead of migrate progress', () => {
    const view: RunStatusView = {
      ...statusView(null),
      kind: 'rollback',
      rollback: {
        strategy: 'restore',
        force: false,
        sourceRuns: ['run-2', 'run-1'],
        totals: { restored: 1850, alreadyRestored: 7, conflicts: 3, forced: 0, missingDocuments: 1, missingBackups: 0, failed: 0, batches: 38 },
        validationOk: true,
      },
    };
    const lines = renderRunDetail(view);
    expect(lines).toContain('  rollback: restore of runs run-2, run-1; validation passed');
    expect(lines).toContain('  restored 1,850, already restored 7, conflicts 3, missing documents 1, missing before-images 0, failed 0; batches 38');
    expect(lines.some((line) => line.startsWith('  progress:') || line.startsWith('  batches:'))).toBe(false);
  });
});

describe('validation report text', () => {
  it('lists counts that add up to the total, integrity and the failures with class and severity', () => {
    const lines = renderValidationReport(report);
    expect(lines[0]).toBe('Validation report — run r1 (tradeya-trades-v2): PASSED');
    expect(lines).toContain('  before the run: 3,000 documents — 150 at the target version, 2,850 in the old shape');
    expect(lines.some((line) => /migrated by this run\s+2,791$/.test(line))).toBe(true);
    expect(lines.some((line) => /left in the old shape \(would migrate now\)\s+0$/.test(line))).toBe(true);
    expect(lines).toContain('  integrity: 2,941 of 2,941 documents at the target version parse with the target schema');
    expect(lines.some((line) => /invalid-source\s+medium\s+60\s+trades\/a, trades\/b, trades\/c \(\+57 more\)$/.test(line))).toBe(true);
    const { migrated, alreadyAtTarget, skipped, failed, remaining, total } = report.after;
    expect(migrated + alreadyAtTarget + skipped + failed + remaining).toBe(total);
    const failing = renderValidationReport({ ...report, ok: false, integrity: { checked: 2941, valid: 2940, invalid: 1 }, definitionMatchesRun: false });
    expect(failing[0]).toMatch(/: FAILED$/);
    expect(failing).toContain('  integrity: 2,940 of 2,941 documents at the target version parse with the target schema — 1 DO NOT');
    expect(failing.at(-1)).toBe(`  ! validated with definition checksum ${'c'.repeat(12)}…, not the one the run used`);
  });
});
