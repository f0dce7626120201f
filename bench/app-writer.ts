import { Firestore, Timestamp } from '@google-cloud/firestore';
import { mulberry32, type Rng } from '../functions/src/demo/seed-data';
import { hotTradePaths } from './dataset';
import type { WriterJob, WriterResult } from './protocol';

/** Writes in flight at most: a client app's connection does not queue without bound. */
const MAX_IN_FLIGHT = 32;
const TICK_MS = 10;
const SKILL_NAMES = ['Guitar lessons', 'Spanish tutoring', 'Portrait photography', 'Python mentoring', 'Sourdough baking', 'Bike repair'];
const LEVELS = ['Beginner', 'intermediate', 'ADVANCED', ' expert '];

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[Math.floor(rng() * items.length)];
}

/** Legacy skills as an old client writes them: names and objects with hand-typed levels. */
function legacySkills(rng: Rng): unknown[] {
  const count = 1 + Math.floor(rng() * 3);
  return Array.from({ length: count }, () => (rng() < 0.5 ? pick(rng, SKILL_NAMES) : { name: pick(rng, SKILL_NAMES), level: pick(rng, LEVELS) }));
}

/** A write time as text (`seconds.nanos`), comparable with a snapshot's update time. */
export function updateTimeKey(time: Timestamp): string {
  return `${time.seconds}.${String(time.nanoseconds).padStart(9, '0')}`;
}

export interface AppWriter {
  /** Resolves after the first write landed. */
  ready: Promise<void>;
  /** Stops writing, waits for the writes in flight, and reports. */
  stop(): Promise<WriterResult>;
}

/**
 * A legacy client editing trades while the migration runs: it changes the SOURCE fields `up()`
 * reads (skills, participant) of a hot 10 % of the trades, at `ratePerSecond`, the way an old app
 * version does (an update of the legacy fields only, never the marker).
 */
export function startAppWriter(job: WriterJob): AppWriter {
  const db = new Firestore({ projectId: job.projectId });
  const paths = hotTradePaths({ docs: job.docs, seed: job.seed, now: new Date(job.now) });
  if (paths.length === 0) throw new Error(`the app writer found no hot legacy trades among ${job.docs}`);
  const rng = mulberry32(job.seed ^ 0x9e3779b9);
  const lastWrites = new Map<string, Timestamp>();
  const inFlight = new Set<Promise<void>>();
  const started = Date.now();
  let issued = 0;
  let writes = 0;
  let errors = 0;
  let resolveReady!: () => void;
  const ready = new Promise<void>((resolve) => (resolveReady = resolve));

  const write = () => {
    const path = pick(rng, paths);
    const joined = rng() < 0.7;
    const update = db
      .doc(path)
      .update({
        offeredSkills: legacySkills(rng),
        requestedSkills: legacySkills(rng),
        participantId: joined ? `app-user-${Math.floor(rng() * 1000)}` : null,
        updatedAt: Timestamp.now(),
      })
      .then(
        (result) => {
          writes++;
          // Two writes of one trade may complete out of order: keep the later write time.
          const previous = lastWrites.get(path);
          if (!previous || result.writeTime.valueOf() > previous.valueOf()) lastWrites.set(path, result.writeTime);
          resolveReady();
        },
        () => void errors++,
      )
      .finally(() => inFlight.delete(update));
    inFlight.add(update);
  };

  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - started) / 1000) * job.ratePerSecond);
    // Behind schedule (the emulator is busy): write what fits, the rest is dropped, not queued.
    while (issued < due && inFlight.size < MAX_IN_FLIGHT) {
      issued++;
      write();
    }
    issued = Math.max(issued, due);
  }, TICK_MS);

  return {
    ready,
    async stop() {
      clearInterval(timer);
      await Promise.all(inFlight);
      await db.terminate();
      return { writes, errors, elapsedMs: Date.now() - started, lastWrites: [...lastWrites].map(([path, time]) => [path, updateTimeKey(time)]) };
    },
  };
}
