/**
 * One active run per migration. The registry entry `_migrations/{id}` holds `activeRunId` and
 * `lease: {holder, expiresAt}`; a run acquires it in a transaction, renews it every
 * `renewEveryMs` while it works, and releases it when it pauses, completes or fails. A lease that
 * was not renewed by its expiry belongs to a holder that died (kill -9, a lost machine): anyone may
 * take it over, which is how `run --resume` continues a crashed run.
 *
 * Expiry is judged with the clock of the process that wants the lease, so the TTL must exceed
 * the clock skew between machines by a wide margin (the default, 60 s, does).
 */
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import { Timestamp, type Firestore, type Transaction } from '@google-cloud/firestore';
import { loadConfig, type FiremigrateConfig } from '../config';
import type { Migration } from '../definitions/types';
import type { ControlPaths } from './paths';
import { RegistryStore, type RegistryEntry } from './registry-store';
import { RunStore, assertTransition, type RunDocument, type RunLease, type RunStatus } from './runs';

export interface LeaseSettings {
  /** How long a lease lives without renewal: how long a crashed run blocks its migration. */
  ttlMs: number;
  /** A third of the TTL: two renewals may fail (a slow commit, a blip) before the lease lapses. */
  renewEveryMs: number;
}

/**
 * From MIGRATION_LEASE_TTL_MS (`migration.leaseTtlMs`; without a config, the environment's).
 * Tests shorten it to resume a killed run quickly; production keeps it well above clock skew and
 * commit latency.
 */
export function leaseSettings(config: Pick<FiremigrateConfig, 'migration'> = loadConfig()): LeaseSettings {
  const ttlMs = config.migration.leaseTtlMs;
  return { ttlMs, renewEveryMs: Math.floor(ttlMs / 3) };
}

/** Names this process: host, pid and a random tag (pids are reused across restarts). */
export function newLeaseHolder(): string {
  return `${hostname()}/${process.pid}/${randomBytes(3).toString('hex')}`;
}

export class LeaseHeldError extends Error {
  override readonly name = 'LeaseHeldError';
  constructor(
    readonly migrationId: string,
    readonly activeRunId: string,
    readonly lease: RunLease,
  ) {
    const until = lease.expiresAt.toDate().toISOString();
    super(
      `Migration "${migrationId}" is being run by run ${activeRunId} (holder ${lease.holder}, lease live until ${until}); ` +
        `only one run per migration may be active. If that process is gone, its lease expires at ${until}; ` +
        `then resume it with: firemigrate run ${migrationId} --execute --resume ${activeRunId}`,
    );
  }
}

export class LeaseLostError extends Error {
  override readonly name = 'LeaseLostError';
  constructor(
    readonly migrationId: string,
    readonly runId: string,
    detail: string,
  ) {
    super(`Run ${runId} lost the lease of migration "${migrationId}": ${detail}. This process stops working on the migration.`);
  }
}

/** What a transaction found when claiming the lease; `write` applies it. */
export interface LeaseClaim {
  migrationId: string;
  runId: string;
  entry: RegistryEntry | undefined;
  lease: RunLease;
  /** The previous holder whose lease had expired, when this claim takes over. */
  takenOverFrom: { runId: string; holder: string; expiredAt: Timestamp } | null;
  /**
   * Another run left behind by a crashed holder: the claim marks it paused when it was running
   * (it can be resumed), failed when it was still planning (its partitions may be incomplete).
   */
  abandonedRun: RunDocument | null;
}

export class LeaseStore {
  private readonly registry: RegistryStore;
  private readonly runs: RunStore;

  constructor(
    private readonly db: Firestore,
    paths: ControlPaths,
    readonly settings: LeaseSettings,
  ) {
    this.registry = new RegistryStore(db, paths);
    this.runs = new RunStore(db, paths);
  }

  private expiry(now: Timestamp): Timestamp {
    return Timestamp.fromMillis(now.toMillis() + this.settings.ttlMs);
  }

  /**
   * The reads of a claim (call before any write of the transaction): refuses with
   * `LeaseHeldError` while another holder's lease is live, whichever run it belongs to.
   */
  async claimIn(tx: Transaction, migrationId: string, runId: string, holder: string): Promise<LeaseClaim> {
    const entry = await this.registry.getIn(tx, migrationId);
    const now = Timestamp.now();
    const current = entry?.activeRunId && entry.lease ? { runId: entry.activeRunId, lease: entry.lease } : null;
    if (current && current.lease.holder !== holder && current.lease.expiresAt.toMillis() > now.toMillis()) {
      throw new LeaseHeldError(migrationId, current.runId, current.lease);
    }
    let abandonedRun: RunDocument | null = null;
    if (current && current.runId !== runId) {
      const snapshot = await tx.get(this.runs.ref(migrationId, current.runId));
      const run = snapshot.exists ? (snapshot.data() as RunDocument) : null;
      if (run?.status === 'running' || run?.status === 'planning') abandonedRun = run;
    }
    return {
      migrationId,
      runId,
      entry,
      lease: { holder, expiresAt: this.expiry(now) },
      takenOverFrom: current && current.lease.holder !== holder
        ? { runId: current.runId, holder: current.lease.holder, expiredAt: current.lease.expiresAt }
        : null,
      abandonedRun,
    };
  }

  /** The writes of a claim: the registry entry names the run and its lease. */
  write(tx: Transaction, claim: LeaseClaim, migration: Migration): void {
    this.registry.writeRunStart(tx, claim.entry, migration, claim.runId, claim.lease);
    if (claim.abandonedRun) {
      const planning = claim.abandonedRun.status === 'planning';
      const holder = claim.takenOverFrom?.holder;
      tx.update(this.runs.ref(claim.migrationId, claim.abandonedRun.runId), {
        status: planning ? 'failed' : 'paused',
        lease: null,
        updatedAt: Timestamp.now(),
        ...(planning ? { finishedAt: Timestamp.now() } : {}),
        statusReason: planning
          ? `its holder ${holder} stopped renewing the lease while planning (crashed?); run ${claim.runId} took over the migration.`
          : `its holder ${holder} stopped renewing the lease (crashed?); run ${claim.runId} took over ` +
            'the migration. Resume it later with --resume to finish its partitions.',
      });
    }
  }

  /** Extends the lease by a TTL from now; `LeaseLostError` when the run no longer holds it. */
  async renew(migrationId: string, runId: string, holder: string): Promise<Timestamp> {
    return this.db.runTransaction(async (tx) => {
      const entry = await this.registry.getIn(tx, migrationId);
      if (entry?.activeRunId !== runId || entry.lease?.holder !== holder) {
        const now = entry?.activeRunId ? `run ${entry.activeRunId} (holder ${entry.lease?.holder}) holds it now` : 'it was released';
        throw new LeaseLostError(migrationId, runId, now);
      }
      const lease: RunLease = { holder, expiresAt: this.expiry(Timestamp.now()) };
      tx.update(this.registry.ref(migrationId), { lease, updatedAt: Timestamp.now() });
      tx.update(this.runs.ref(migrationId, runId), { lease });
      return lease.expiresAt;
    });
  }

  /**
   * Gives the migration up — in one transaction with what ends the run's turn: `entry` changes
   * to the registry entry (e.g. applied) and the run's new status (checked against the run
   * lifecycle) with its `changes`. Returns false, changing nothing, when the run no longer held
   * the lease: another process has taken the run or the migration over.
   */
  async release(migrationId: string, runId: string, holder: string, end: ReleaseChanges = {}): Promise<boolean> {
    return this.db.runTransaction(async (tx) => {
      const entry = await this.registry.getIn(tx, migrationId);
      if (entry?.activeRunId !== runId || entry.lease?.holder !== holder) return false;
      const runRef = this.runs.ref(migrationId, runId);
      let runUpdate: Record<string, unknown> = { lease: null };
      if (end.runStatus) {
        const snapshot = await tx.get(runRef);
        const current = (snapshot.data() as RunDocument).status;
        if (current !== end.runStatus) assertTransition(runId, current, end.runStatus);
        runUpdate = { ...end.runChanges, status: end.runStatus, lease: null, updatedAt: Timestamp.now() };
      }
      tx.update(this.registry.ref(migrationId), { ...end.entry, activeRunId: null, lease: null, updatedAt: Timestamp.now() });
      tx.update(runRef, runUpdate);
      return true;
    });
  }
}

export interface ReleaseChanges {
  entry?: Partial<RegistryEntry>;
  runStatus?: RunStatus;
  runChanges?: Partial<RunDocument>;
}

/**
 * Renews a held lease every `renewEveryMs`. A failed renewal is retried at the next tick; the
 * lease counts as lost (and `onLost` is called once) when another holder has it, or when renewals
 * kept failing until the last granted expiry passed — from then on someone may have taken over.
 */
export class LeaseKeeper {
  private timer?: NodeJS.Timeout;
  private expiresAt: number;
  private lost = false;
  private renewing?: Promise<void>;

  constructor(
    private readonly store: LeaseStore,
    private readonly migrationId: string,
    private readonly runId: string,
    private readonly holder: string,
    granted: Timestamp,
    private readonly onLost: (error: Error) => void,
  ) {
    this.expiresAt = granted.toMillis();
  }

  start(): void {
    this.timer = setInterval(() => {
      if (!this.renewing) this.renewing = this.renew().finally(() => (this.renewing = undefined));
    }, this.store.settings.renewEveryMs);
    // The lease must not keep a finished process alive.
    this.timer.unref();
  }

  /** Stops renewing (waiting for a renewal in flight, so it cannot land after the release). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.renewing;
  }

  private async renew(): Promise<void> {
    if (this.lost) return;
    try {
      this.expiresAt = (await this.store.renew(this.migrationId, this.runId, this.holder)).toMillis();
    } catch (error) {
      if (error instanceof LeaseLostError || Date.now() >= this.expiresAt) {
        this.lost = true;
        void this.stop();
        const detail = `renewals failed until the lease expired (last error: ${(error as Error).message})`;
        this.onLost(error instanceof LeaseLostError ? error : new LeaseLostError(this.migrationId, this.runId, detail));
      }
    }
  }
}
