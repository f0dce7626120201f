/**
 * When health runs happen. A condition is detected by the first health run after it appears and
 * announced by that same run (the snapshot is stored, then the alert published, before the run
 * returns), so detection-to-alert is at most one interval plus one run's duration.
 */

/** The `healthCheck` function's Cloud Scheduler schedule (its finest: once a minute). */
export const HEALTH_SCHEDULE = 'every 1 minutes';

/** The seed's target: "Alert Response: < 2 minutes detection-to-alert". */
export const DETECTION_TO_ALERT_TARGET_MS = 2 * 60_000;

const EVERY = /^every (\d+) (minute|minutes|hour|hours)$/;

/** The period of an App Engine-style `every N minutes|hours` schedule, in ms. */
export function scheduleIntervalMs(schedule: string): number {
  const match = EVERY.exec(schedule.trim());
  if (!match) throw new Error(`schedule "${schedule}" is not of the form "every N minutes" or "every N hours"`);
  const n = Number(match[1]);
  if (n < 1) throw new Error(`schedule "${schedule}" must repeat at least every 1 minute`);
  return n * (match[2].startsWith('hour') ? 3_600_000 : 60_000);
}

/** The longest time from a condition appearing to its alert: it appears just after a run, the next run announces it. */
export function worstDetectionToAlertMs(intervalMs: number, runDurationMs: number): number {
  if (!(intervalMs > 0) || !(runDurationMs >= 0)) throw new RangeError(`expected an interval > 0 and a duration ≥ 0, got ${intervalMs} and ${runDurationMs}`);
  return intervalMs + runDurationMs;
}
