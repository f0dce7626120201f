/**
 * `npm run bench`: the engine against the best hand-written loop and a fireway-style script, side
 * by side on ONE Firestore emulator this process owns, each contender run in a child process of
 * its own (so its peak RSS is its own), quiet and with an app writer in another child; each round's
 * engine run is then rolled back in a child of its own and timed; then the engine's peak RSS at
 * two collection sizes. A benchmark, never a test: nothing here asserts a
 * timing; it reports figures against DESIGN.md's bars.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import { FirestoreEmulator, resetEmulatorProject } from '../functions/src/dev/firestore-emulator';
import { BENCH_MIGRATION } from './contender';
import { BENCH_COLLECTION, hotTradePaths, seedTrades, type SeededTrades, type SeedSpec } from './dataset';
import { childProcessNamed, load1, machineInfo, processCpuMs } from './measure';
import { HOT_EDIT_PERIOD_S, parseBenchOptions, UsageError, USAGE, type BenchOptions } from './options';
import type { ChildMessage, ContenderName, ContenderResult, Job, ParentMessage, Scenario, WriterResult } from './protocol';
import { evaluateBars, renderMarkdown, summarize, summarizeRollbacks, type BenchReport, type RollbackRecord, type RunRecord } from './report';
import { rollbackPassed, verificationPassed, verifyMigration, verifyRollback } from './verify';

const PROJECT_ID = 'demo-firemigrate-bench';
const CHILD_SCRIPT = join(__dirname, 'child.js');
/** The repository root, from bench/lib/bench/main.js. */
const REPO_ROOT = resolve(__dirname, '..', '..', '..');
/** Trades of the warm-up round: enough for the emulator's JIT to compile the hot paths. */
const WARMUP_DOCS = 5000;
/** How long a failure waits for a signal that may have caused it (see main). */
const SIGNAL_GRACE_MS = 200;
/** Fixed, so every reseed writes identical documents (timestamps included). */
const SEED_NOW = new Date('2026-11-29T12:00:00Z');

const progress = (message: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${message}\n`);

/** A forked child and the messages it sends, awaited by type. */
class BenchChild {
  private readonly child: ChildProcess;
  private readonly received: ChildMessage[] = [];
  private waiter?: () => void;
  private exit?: string;

  constructor(job: Job, env: NodeJS.ProcessEnv, live: Set<ChildProcess>) {
    this.child = fork(CHILD_SCRIPT, [], { env, stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    // Library chatter on a child's stdout would land in the markdown table: send it to stderr.
    this.child.stdout?.pipe(process.stderr);
    live.add(this.child);
    this.child.on('message', (message: ChildMessage) => {
      this.received.push(message);
      this.waiter?.();
    });
    this.child.on('exit', (code, signal) => {
      live.delete(this.child);
      this.exit = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      this.waiter?.();
    });
    this.send({ type: 'job', job });
  }

  send(message: ParentMessage): void {
    this.child.send(message);
  }

  async next<T extends ChildMessage['type']>(type: T): Promise<Extract<ChildMessage, { type: T }>> {
    for (;;) {
      const index = this.received.findIndex((message) => message.type === type || message.type === 'error');
      if (index >= 0) {
        const [message] = this.received.splice(index, 1);
        if (message.type === 'error') throw new Error(`a bench child failed: ${message.message}`);
        return message as Extract<ChildMessage, { type: T }>;
      }
      if (this.exit) throw new Error(`a bench child ${this.exit} before sending "${type}"`);
      await new Promise<void>((resolve) => (this.waiter = resolve));
    }
  }
}

class Bench {
  private readonly live = new Set<ChildProcess>();
  private readonly db: Firestore;
  private readonly env: NodeJS.ProcessEnv;
  private readonly javaPid: number | null;
  engineSettings: BenchReport['engineSettings'] = null;
  seeded: SeededTrades | null = null;

  constructor(
    private readonly options: BenchOptions,
    private readonly emulator: FirestoreEmulator,
  ) {
    // Without it the Google libraries probe a metadata server off this machine (DESIGN.md, emulator facts).
    process.env.METADATA_SERVER_DETECTION = 'none';
    this.env = { ...process.env, FIRESTORE_EMULATOR_HOST: emulator.host, GCLOUD_PROJECT: PROJECT_ID };
    this.db = new Firestore({ projectId: PROJECT_ID, host: emulator.host, ssl: false });
    this.javaPid = emulator.pid === undefined ? null : childProcessNamed(emulator.pid, 'java');
  }

  /** Kills the children still running (an interrupted bench); each was started here. */
  killChildren(): void {
    for (const child of this.live) child.kill('SIGKILL');
  }

  close(): Promise<void> {
    return this.db.terminate();
  }

  private spec(docs: number): SeedSpec {
    return { docs, seed: this.options.seed, now: SEED_NOW };
  }

  /** Empties the project and writes the trades again: every contender migrates the same legacy data. */
  private async prepare(docs: number): Promise<SeededTrades> {
    const started = Date.now();
    await resetEmulatorProject(this.emulator.host, PROJECT_ID);
    const seeded = await seedTrades(this.db, this.spec(docs));
    progress(`  reset and seeded ${docs} trades in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return seeded;
  }

  async measure(scenario: Scenario, run: number, contender: ContenderName, docs: number): Promise<RunRecord> {
    const seeded = await this.prepare(docs);
    if (docs === this.options.docs) this.seeded = seeded;
    const location = { projectId: PROJECT_ID, collection: BENCH_COLLECTION };
    let writer: BenchChild | undefined;
    let hotDocuments = 0;
    let ratePerSecond = 0;
    if (scenario === 'writer') {
      hotDocuments = hotTradePaths(this.spec(docs)).length;
      ratePerSecond = this.options.writerRate ?? Math.max(1, Math.round(hotDocuments / HOT_EDIT_PERIOD_S));
      writer = new BenchChild({ kind: 'writer', ...location, docs, seed: this.options.seed, now: SEED_NOW.toISOString(), ratePerSecond }, this.env, this.live);
      await writer.next('ready');
    }
    const load1Before = load1();
    const cpuBefore = this.javaPid === null ? null : processCpuMs(this.javaPid);
    let result: ContenderResult;
    let written: WriterResult | undefined;
    try {
      result = (await new BenchChild({ kind: 'contender', contender, ...location }, this.env, this.live).next('result')).result;
    } finally {
      if (writer) {
        writer.send({ type: 'stop' });
        written = (await writer.next('writer-result')).result;
      }
    }
    const cpuAfter = this.javaPid === null ? null : processCpuMs(this.javaPid);
    const load1After = load1();
    if (result.engine) this.engineSettings = result.engine.settings;
    const lastWrites = new Map(written?.lastWrites ?? []);
    const verification = await verifyMigration(this.db, BENCH_COLLECTION, BENCH_MIGRATION, seeded.legacy + seeded.alreadyV2, lastWrites);
    const record: RunRecord = {
      scenario,
      run,
      docs,
      result,
      verification,
      verified: verificationPassed(verification, { quiet: scenario === 'quiet', migrated: result.migrated, alreadyAtTarget: seeded.alreadyV2 }),
      emulatorCpuMs: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
      load1Before,
      load1After,
      writer: written ? { ratePerSecond, writes: written.writes, errors: written.errors, elapsedMs: written.elapsedMs, hotDocuments } : null,
      rollback: null,
    };
    const rate = Math.round((result.processed * 1000) / result.elapsedMs);
    const extra = result.engine ? `, precondition retries ${result.engine.preconditionRetries}` : '';
    progress(
      `  ${contender}: ${result.processed} docs in ${(result.elapsedMs / 1000).toFixed(1)} s = ${rate} docs/s, peak RSS ${result.peakRssMb.toFixed(0)} MB${extra}; ` +
        `at target ${verification.atTarget}/${verification.expectedAtTarget} (${result.migrated} migrated), stale ${verification.stale}, changed after ${verification.changedAfter}` +
        (written ? `; app writes ${written.writes} (${written.errors} errors)` : '') +
        (record.verified ? '' : ' — VERIFICATION FAILED'),
    );
    // The rounds' engine runs only: the warm-up and memory runs (round 0) are not rolled back.
    if (contender === 'engine' && run > 0 && this.options.rollback) record.rollback = await this.rollBack(seeded);
    return record;
  }

  /** Rolls the engine's (verified) run back in a child of its own, the app writer stopped, and checks the trades. */
  private async rollBack(seeded: SeededTrades): Promise<RollbackRecord> {
    const load1Before = load1();
    const cpuBefore = this.javaPid === null ? null : processCpuMs(this.javaPid);
    const child = new BenchChild({ kind: 'rollback', projectId: PROJECT_ID, collection: BENCH_COLLECTION }, this.env, this.live);
    const { result } = await child.next('rollback-result');
    const cpuAfter = this.javaPid === null ? null : processCpuMs(this.javaPid);
    const verification = await verifyRollback(this.db, BENCH_COLLECTION, BENCH_MIGRATION, seeded.alreadyV2, result.totals?.conflicts ?? 0);
    const record: RollbackRecord = {
      result,
      verification,
      verified: rollbackPassed(result.status, verification),
      emulatorCpuMs: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
      load1Before,
    };
    const restored = result.totals?.restored ?? 0;
    progress(
      `  rollback (${result.strategy}): ${result.status}, ${restored} docs restored in ${(result.elapsedMs / 1000).toFixed(1)} s = ${Math.round((restored * 1000) / result.elapsedMs)} docs/s, ` +
        `first batch after ${result.firstBatchMs === null ? '–' : `${Math.round(result.firstBatchMs)} ms`}, peak RSS ${result.peakRssMb.toFixed(0)} MB; ` +
        `at target ${verification.atTarget}/${verification.expectedAtTarget} (conflicts ${verification.conflicts})` +
        (result.statusReason ? ` — ${result.statusReason}` : '') +
        (record.verified ? '' : ' — VERIFICATION FAILED'),
    );
    return record;
  }
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

/** What a bench has measured so far: a finished one, or one interrupted by a signal. */
class Measurements {
  readonly startedAt = new Date().toISOString();
  readonly loadAtStart = load1();
  readonly runs: RunRecord[] = [];
  readonly memory: RunRecord[] = [];
  bench?: Bench;
  /** Set by the signal handler, which then reports and exits. */
  interrupted: NodeJS.Signals | null = null;

  constructor(
    private readonly options: BenchOptions,
    private readonly command: string,
  ) {}

  report(interrupted: NodeJS.Signals | null): BenchReport {
    const { options, runs, memory } = this;
    const summaries: BenchReport['summaries'] = {};
    const rollbacks: BenchReport['rollbacks'] = {};
    for (const scenario of options.scenarios) {
      const mine = runs.filter((record) => record.scenario === scenario);
      if (mine.length > 0) summaries[scenario] = summarize(mine, options.contenders);
      const rollback = summarizeRollbacks(mine);
      if (rollback) rollbacks[scenario] = rollback;
    }
    return {
      startedAt: this.startedAt,
      finishedAt: new Date().toISOString(),
      interrupted,
      command: this.command,
      machine: machineInfo(),
      load1: { start: this.loadAtStart, end: load1() },
      options,
      seeded: this.bench?.seeded ?? null,
      engineSettings: this.bench?.engineSettings ?? null,
      runs,
      memory,
      summaries,
      rollbacks,
      bars: evaluateBars(summaries, memory, rollbacks),
    };
  }
}

/** The JSON under bench/results, the markdown on stdout. */
function publish(report: BenchReport, resultsDir: string): void {
  mkdirSync(resultsDir, { recursive: true });
  const file = join(resultsDir, `${report.startedAt.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, `${JSON.stringify(report, null, 2)}\n`);
  process.stdout.write(renderMarkdown(report));
  progress(`results: ${relative(process.cwd(), file)}`);
}

async function benchmark(options: BenchOptions, measured: Measurements): Promise<void> {
  const emulator = new FirestoreEmulator();
  // A stop (Ctrl-C, SIGTERM) ends the children and the emulator, and still reports what was measured.
  const onSignal = (signal: NodeJS.Signals) => {
    if (measured.interrupted) return;
    measured.interrupted = signal;
    progress(`${signal}: stopping the children and the emulator; reporting the runs measured so far`);
    measured.bench?.killChildren();
    void emulator
      .stop()
      .then(() => publish(measured.report(signal), options.resultsDir))
      .finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    progress('starting the Firestore emulator');
    await emulator.start();
    const bench = new Bench(options, emulator);
    measured.bench = bench;
    if (options.warmup) {
      progress(`warm-up (not measured): each contender on ${Math.min(WARMUP_DOCS, options.docs)} trades`);
      for (const contender of options.contenders) await bench.measure('quiet', 0, contender, Math.min(WARMUP_DOCS, options.docs));
    }
    for (const scenario of options.scenarios) {
      for (let run = 1; run <= options.runs; run++) {
        progress(`${scenario}, run ${run}/${options.runs} (${options.docs} trades; load ${load1()})`);
        for (const contender of rotate(options.contenders, run - 1)) measured.runs.push(await bench.measure(scenario, run, contender, options.docs));
      }
    }
    for (const docs of options.memorySizes) {
      progress(`memory: the engine on ${docs} trades`);
      measured.memory.push(await bench.measure('quiet', 0, 'engine', docs));
    }
  } finally {
    measured.bench?.killChildren();
    await measured.bench?.close();
    await emulator.stop();
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}

async function main(): Promise<void> {
  const resultsDir = join(REPO_ROOT, 'bench', 'results');
  let options: BenchOptions | null;
  try {
    options = parseBenchOptions(process.argv.slice(2), resultsDir);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`${error.message}\n\n${USAGE}\n`);
    process.exitCode = 2;
    return;
  }
  if (!options) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const target = BENCH_MIGRATION.target;
  if (!('collection' in target) || target.collection !== BENCH_COLLECTION) {
    throw new Error(`the bench seeds "${BENCH_COLLECTION}" but ${BENCH_MIGRATION.id} migrates ${JSON.stringify(target)}`);
  }
  const measured = new Measurements(options, ['npm run bench --', ...process.argv.slice(2)].join(' '));
  try {
    await benchmark(options, measured);
  } catch (error) {
    // Ctrl-C reaches the children too: one may die and fail the run just before our own handler runs.
    await new Promise((resolve) => setTimeout(resolve, SIGNAL_GRACE_MS));
    if (measured.interrupted) return;
    throw error;
  }
  if (!measured.interrupted) publish(measured.report(null), resultsDir);
}

main().catch((error: Error) => {
  process.stderr.write(`bench failed: ${error.stack ?? error.message}\n`);
  process.exitCode = 1;
});
