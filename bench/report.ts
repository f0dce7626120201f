import type { SeededTrades } from './dataset';
import { median, type MachineInfo } from './measure';
import type { BenchOptions } from './options';
import type { ContenderName, ContenderResult, EngineDetails, RollbackResult, Scenario } from './protocol';
import type { RollbackVerification, Verification } from './verify';

/** The performance bars of DESIGN.md ("Performance bars"). */
export const BARS = {
  /** Engine docs/s ÷ the hand loop's, at least. */
  vsHandLoop: 0.7,
  /** Engine docs/s ÷ fireway's, at least … */
  vsFireway: 1.8,
  /** … at this share of fireway's peak RSS, at most. */
  memoryShareOfFireway: 0.6,
  /** Engine peak RSS at the large size minus at the small size, at most (MB). */
  memoryGrowthMb: 64,
  /** Rollback docs/s ÷ the migration's docs/s in the same round, at least (issue #6). */
  rollbackVsMigration: 0.8,
  /** Seed targets of the rollback, for ROLLBACK_TARGET_DOCS documents: confirmed request → first restored batch … */
  rollbackStartMs: 30_000,
  /** … and → the outcome. */
  rollbackCompleteMs: 300_000,
};
/** The seed targets' collection size: below it they are reported, not judged. */
export const ROLLBACK_TARGET_DOCS = 100_000;

export interface WriterStats {
  ratePerSecond: number;
  writes: number;
  errors: number;
  elapsedMs: number;
  hotDocuments: number;
}

export interface RunRecord {
  scenario: Scenario;
  /** 1-based round; 0 for the memory comparison's runs. */
  run: number;
  docs: number;
  result: ContenderResult;
  verification: Verification;
  verified: boolean;
  /** CPU time the emulator (java) spent during the contender, ms. */
  emulatorCpuMs: number | null;
  load1Before: number;
  load1After: number;
  writer: WriterStats | null;
  /** The rollback of this run (the rounds' engine runs only; null when not rolled back). */
  rollback: RollbackRecord | null;
}

export interface RollbackRecord {
  result: RollbackResult;
  verification: RollbackVerification;
  verified: boolean;
  /** CPU time the emulator (java) spent during the rollback, ms. */
  emulatorCpuMs: number | null;
  load1Before: number;
}

/** The rollbacks of one scenario's engine runs (medians). */
export interface RollbackSummary {
  runs: number;
  restored: number;
  /** Documents restored per second, from the confirmed request to the outcome. */
  docsPerSecond: number;
  firstBatchMs: number;
  elapsedMs: number;
  peakRssMb: number;
  /** Per round: the rollback's docs/s ÷ the engine's migration docs/s of that round; the median. */
  vsMigration: number;
  clientCpuMsPer1k: number;
  emulatorCpuMsPer1k: number | null;
  conflicts: number;
  verifiedRuns: number;
}

export interface ContenderSummary {
  contender: ContenderName;
  runs: number;
  docs: number;
  docsPerSecond: number;
  p50Ms: number;
  p95Ms: number;
  peakRssMb: number;
  vsHandLoop: number | null;
  vsFireway: number | null;
  clientCpuMsPer1k: number;
  emulatorCpuMsPer1k: number | null;
  verifiedRuns: number;
  stale: number;
  changedAfter: number;
  /** Legacy documents not at target after the run (the engine leaves documents that kept changing to the final sweep). */
  leftUnmigrated: number;
  preconditionRetries: number | null;
  batchesRetried: number | null;
  appWrites: number | null;
}

export interface BarResult {
  bar: string;
  figure: string;
  /** null: not judged (a seed target for a collection size this bench did not run). */
  pass: boolean | null;
}

export interface BenchReport {
  startedAt: string;
  finishedAt: string;
  /** The signal that stopped the bench early; its figures cover the runs finished before. */
  interrupted: NodeJS.Signals | null;
  command: string;
  machine: MachineInfo;
  load1: { start: number; end: number };
  options: BenchOptions;
  /** The trades of the main runs (null if none was seeded yet). */
  seeded: SeededTrades | null;
  engineSettings: EngineDetails['settings'] | null;
  runs: RunRecord[];
  memory: RunRecord[];
  summaries: Record<string, ContenderSummary[]>;
  /** Per scenario, when its engine runs were rolled back. */
  rollbacks: Record<string, RollbackSummary>;
  bars: BarResult[];
}

const docsPerSecond = (record: RunRecord) => (record.result.processed * 1000) / record.result.elapsedMs;
const cpuPer1k = (record: RunRecord) => ((record.result.cpuUserMs + record.result.cpuSystemMs) * 1000) / record.result.processed;

export function summarize(records: RunRecord[], contenders: readonly ContenderName[]): ContenderSummary[] {
  const base = contenders
    .map((contender): ContenderSummary | null => {
      const mine = records.filter((record) => record.result.contender === contender);
      if (mine.length === 0) return null;
      const emulator = mine.map((record) => record.emulatorCpuMs).filter((ms): ms is number => ms !== null);
      const engine = mine.map((record) => record.result.engine).filter((details): details is EngineDetails => details !== undefined);
      const writes = mine.map((record) => record.writer?.writes).filter((n): n is number => n !== undefined);
      return {
        contender,
        runs: mine.length,
        docs: median(mine.map((record) => record.result.processed)),
        docsPerSecond: median(mine.map(docsPerSecond)),
        p50Ms: median(mine.map((record) => record.result.batches.p50Ms)),
        p95Ms: median(mine.map((record) => record.result.batches.p95Ms)),
        peakRssMb: median(mine.map((record) => record.result.peakRssMb)),
        vsHandLoop: null,
        vsFireway: null,
        clientCpuMsPer1k: median(mine.map(cpuPer1k)),
        emulatorCpuMsPer1k: emulator.length ? median(mine.filter((r) => r.emulatorCpuMs !== null).map((r) => (r.emulatorCpuMs! * 1000) / r.result.processed)) : null,
        verifiedRuns: mine.filter((record) => record.verified).length,
        stale: median(mine.map((record) => record.verification.stale)),
        changedAfter: median(mine.map((record) => record.verification.changedAfter)),
        leftUnmigrated: median(mine.map((record) => record.verification.expectedAtTarget - record.verification.atTarget)),
        preconditionRetries: engine.length ? median(engine.map((details) => details.preconditionRetries)) : null,
        batchesRetried: engine.length ? median(engine.map((details) => details.batchesRetried)) : null,
        appWrites: writes.length ? median(writes) : null,
      };
    })
    .filter((summary): summary is ContenderSummary => summary !== null);
  const rate = (name: ContenderName) => base.find((summary) => summary.contender === name)?.docsPerSecond;
  const hand = rate('hand-loop');
  const fireway = rate('fireway');
  return base.map((summary) => ({
    ...summary,
    vsHandLoop: hand ? summary.docsPerSecond / hand : null,
    vsFireway: fireway ? summary.docsPerSecond / fireway : null,
  }));
}

const restored = (rollback: RollbackRecord) => rollback.result.totals?.restored ?? 0;
const rollbackDocsPerSecond = (rollback: RollbackRecord) => (restored(rollback) * 1000) / rollback.result.elapsedMs;

/** The scenario's engine runs that were rolled back, summarized; null when none was. */
export function summarizeRollbacks(records: RunRecord[]): RollbackSummary | null {
  const rounds = records.filter((record): record is RunRecord & { rollback: RollbackRecord } => record.rollback !== null);
  if (rounds.length === 0) return null;
  const rollbacks = rounds.map((record) => record.rollback);
  const perDoc = (ms: number, rollback: RollbackRecord) => (ms * 1000) / Math.max(1, restored(rollback));
  const emulator = rollbacks.filter((rollback) => rollback.emulatorCpuMs !== null);
  return {
    runs: rollbacks.length,
    restored: median(rollbacks.map(restored)),
    docsPerSecond: median(rollbacks.map(rollbackDocsPerSecond)),
    firstBatchMs: median(rollbacks.map((rollback) => rollback.result.firstBatchMs ?? NaN)),
    elapsedMs: median(rollbacks.map((rollback) => rollback.result.elapsedMs)),
    peakRssMb: median(rollbacks.map((rollback) => rollback.result.peakRssMb)),
    vsMigration: median(rounds.map((record) => rollbackDocsPerSecond(record.rollback) / docsPerSecond(record))),
    clientCpuMsPer1k: median(rollbacks.map((rollback) => perDoc(rollback.result.cpuUserMs + rollback.result.cpuSystemMs, rollback))),
    emulatorCpuMsPer1k: emulator.length ? median(emulator.map((rollback) => perDoc(rollback.emulatorCpuMs!, rollback))) : null,
    conflicts: median(rollbacks.map((rollback) => rollback.verification.conflicts)),
    verifiedRuns: rollbacks.filter((rollback) => rollback.verified).length,
  };
}

/** The rollback's bar and seed targets: the targets are for 100k documents, judged only at that size or more. */
function rollbackBars(scenario: string, rollback: RollbackSummary): BarResult[] {
  const atSize = rollback.restored >= ROLLBACK_TARGET_DOCS;
  const size = `${n0(rollback.restored)} docs restored`;
  const extrapolated = atSize ? '' : `; ≈ ${n0(ROLLBACK_TARGET_DOCS / rollback.docsPerSecond)} s at ${n0(ROLLBACK_TARGET_DOCS)} if linear`;
  return [
    {
      bar: `${scenario}: rollback ≥ ${BARS.rollbackVsMigration}× the migration's docs/s`,
      figure: `${rollback.vsMigration.toFixed(2)}× (${n0(rollback.docsPerSecond)} restored docs/s)`,
      pass: rollback.vsMigration >= BARS.rollbackVsMigration,
    },
    {
      bar: `${scenario}: rollback start (confirmed request → first restored batch) < ${BARS.rollbackStartMs / 1000} s for ${n0(ROLLBACK_TARGET_DOCS)} docs (seed target)`,
      figure: `${n0(rollback.firstBatchMs)} ms (${size})`,
      pass: atSize ? rollback.firstBatchMs < BARS.rollbackStartMs : null,
    },
    {
      bar: `${scenario}: rollback complete < ${BARS.rollbackCompleteMs / 60_000} min for ${n0(ROLLBACK_TARGET_DOCS)} docs (seed target)`,
      figure: `${(rollback.elapsedMs / 1000).toFixed(1)} s (${size}${extrapolated})`,
      pass: atSize ? rollback.elapsedMs < BARS.rollbackCompleteMs : null,
    },
  ];
}

export function evaluateBars(summaries: Record<string, ContenderSummary[]>, memory: RunRecord[], rollbacks: Record<string, RollbackSummary> = {}): BarResult[] {
  const bars: BarResult[] = [];
  for (const [scenario, list] of Object.entries(summaries)) {
    const engine = list.find((summary) => summary.contender === 'engine');
    const fireway = list.find((summary) => summary.contender === 'fireway');
    if (engine?.vsHandLoop != null) {
      bars.push({ bar: `${scenario}: engine ≥ ${BARS.vsHandLoop}× hand loop`, figure: `${engine.vsHandLoop.toFixed(2)}×`, pass: engine.vsHandLoop >= BARS.vsHandLoop });
    }
    if (engine?.vsFireway != null && fireway) {
      bars.push({ bar: `${scenario}: engine ≥ ${BARS.vsFireway}× fireway`, figure: `${engine.vsFireway.toFixed(2)}×`, pass: engine.vsFireway >= BARS.vsFireway });
      const share = engine.peakRssMb / fireway.peakRssMb;
      bars.push({
        bar: `${scenario}: engine peak RSS ≤ ${BARS.memoryShareOfFireway * 100} % of fireway's`,
        figure: `${(share * 100).toFixed(0)} % (${engine.peakRssMb.toFixed(0)} vs ${fireway.peakRssMb.toFixed(0)} MB)`,
        pass: share <= BARS.memoryShareOfFireway,
      });
    }
  }
  if (memory.length === 2) {
    const [small, large] = memory;
    const growth = large.result.peakRssMb - small.result.peakRssMb;
    bars.push({
      bar: `memory: engine peak RSS at ${large.docs} within ${BARS.memoryGrowthMb} MB of ${small.docs}`,
      figure: `${growth >= 0 ? '+' : ''}${growth.toFixed(0)} MB (${small.result.peakRssMb.toFixed(0)} → ${large.result.peakRssMb.toFixed(0)} MB)`,
      pass: growth <= BARS.memoryGrowthMb,
    });
  }
  for (const [scenario, rollback] of Object.entries(rollbacks)) bars.push(...rollbackBars(scenario, rollback));
  return bars;
}

const LABEL: Record<ContenderName, string> = { engine: 'engine (run --execute)', 'hand-loop': 'hand loop (stream + 8 batches in flight)', fireway: 'fireway-style (get() + batches of 500)' };
const n0 = (value: number) => (Number.isFinite(value) ? Math.round(value).toLocaleString('en-US') : '–');
const ratio = (value: number | null) => (value === null ? '–' : `${value.toFixed(2)}×`);

function table(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((row) => `| ${row.join(' | ')} |`)];
}

/** A scenario's rollback section: the engine's run of each round undone (the strategy the engine chose), timed from the confirmed request. */
function renderRollback(scenario: string, rollback: RollbackSummary, perRun: RunRecord[]): string[] {
  const rolledBack = perRun.filter((record): record is RunRecord & { rollback: RollbackRecord } => record.rollback !== null);
  const first = rolledBack[0].rollback.result;
  const lines = [
    '',
    `#### ${scenario}: rollback of the engine's run (\`rollback --execute\`, strategy ${first.strategy}; ` +
      `batch ${first.settings.batchSize}, ${first.settings.concurrentBatches} in flight, ROLLBACK_TIMEOUT ${n0(first.settings.timeoutMs)} ms)`,
    '',
    ...table(
      ['docs restored', 'docs/s', 'first restored batch ms', 'total ms (incl. validation)', 'vs the migration\'s docs/s', 'peak RSS MB', 'CPU ms/1k docs: client / emulator', 'conflicts', 'verified'],
      [
        [
          n0(rollback.restored),
          n0(rollback.docsPerSecond),
          n0(rollback.firstBatchMs),
          n0(rollback.elapsedMs),
          ratio(rollback.vsMigration),
          n0(rollback.peakRssMb),
          `${n0(rollback.clientCpuMsPer1k)} / ${rollback.emulatorCpuMsPer1k === null ? '–' : n0(rollback.emulatorCpuMsPer1k)}`,
          n0(rollback.conflicts),
          `${rollback.verifiedRuns}/${rollback.runs}`,
        ],
      ],
    ),
    '',
    'per run (timed from the startRollback call, i.e. the confirmed request; verified: completed and only the seeded already-v2 trades left at target):',
  ];
  for (const record of rolledBack) {
    const { result, verification, verified } = record.rollback;
    const validation = result.validation ? `validation ${result.validation.equal}/${result.validation.sampled} equal${result.validation.ok ? '' : ' FAILED'}` : 'no validation';
    lines.push(
      `- run ${record.run}: ${result.status}${result.statusReason ? ` (${result.statusReason})` : ''}, ${n0(restored(record.rollback))} restored at ${n0(rollbackDocsPerSecond(record.rollback))} docs/s ` +
        `(migration ${n0(docsPerSecond(record))}), ${validation}, at target ${n0(verification.atTarget)}/${n0(verification.expectedAtTarget)} ` +
        `(load ${record.rollback.load1Before})${verified ? '' : ' UNVERIFIED'}`,
    );
  }
  return lines;
}

/** The report as markdown: settings, one table per scenario, the engine's breakdown, the memory comparison and the bars. */
export function renderMarkdown(report: BenchReport): string {
  const { machine, options, seeded } = report;
  const lines: string[] = [
    `## firemigrate bench — ${report.startedAt}${report.interrupted ? ` (INTERRUPTED by ${report.interrupted}: partial)` : ''}`,
    '',
    `- command: \`${report.command}\``,
    `- machine: ${machine.cpus} CPUs (${machine.cpuModel}), ${n0(machine.memoryMb)} MB, node ${machine.node}, ${machine.platform}; ` +
      `load average (1 min) ${report.load1.start} at start, ${report.load1.end} at end (shared machine: figures are noisy)`,
    `- data: ${seeded ? `${n0(seeded.docs)} TradeYa trades (${n0(seeded.legacy)} legacy, ${n0(seeded.alreadyV2)} already v2, ${n0(seeded.malformed)} malformed)` : `${n0(options.docs)} TradeYa trades`}, ` +
      `seed ${options.seed}; reset and reseeded before every contender run; median of ${options.runs} run(s), contender order rotated per run`,
  ];
  const settings = report.engineSettings;
  if (settings) {
    lines.push(
      `- engine settings: batch ${settings.batchSize}, ${settings.concurrentBatches} partitions in flight, pool ${settings.connectionPoolSize}, ` +
        `validation ${settings.validationEnabled ? 'on' : 'off'}, before-images ${settings.rollbackEnabled ? 'on' : 'off'}`,
    );
  }
  for (const [scenario, summaries] of Object.entries(report.summaries)) {
    const writer = report.runs.find((record) => record.scenario === scenario && record.writer)?.writer;
    lines.push('', scenario === 'writer' && writer ? `### with an app writer (${writer.ratePerSecond} writes/s to ${n0(writer.hotDocuments)} hot trades)` : `### ${scenario}`, '');
    const header = ['contender', 'docs', 'docs/s', 'batch p50/p95 ms', 'peak RSS MB', 'vs hand loop', 'vs fireway', 'CPU ms/1k docs: client / emulator', 'verified'];
    if (scenario === 'writer') header.push('app writes', 'precondition retries (batches)', 'left for the sweep', 'stale docs (lost writes)');
    const rows = summaries.map((summary) => {
      const row = [
        LABEL[summary.contender],
        n0(summary.docs),
        n0(summary.docsPerSecond),
        `${n0(summary.p50Ms)} / ${n0(summary.p95Ms)}`,
        n0(summary.peakRssMb),
        ratio(summary.vsHandLoop),
        ratio(summary.vsFireway),
        `${n0(summary.clientCpuMsPer1k)} / ${summary.emulatorCpuMsPer1k === null ? '–' : n0(summary.emulatorCpuMsPer1k)}`,
        `${summary.verifiedRuns}/${summary.runs}`,
      ];
      if (scenario === 'writer') {
        row.push(
          summary.appWrites === null ? '–' : n0(summary.appWrites),
          summary.preconditionRetries === null ? '–' : `${n0(summary.preconditionRetries)} (${n0(summary.batchesRetried ?? NaN)})`,
          n0(summary.leftUnmigrated),
          n0(summary.stale),
        );
      }
      return row;
    });
    lines.push(...table(header, rows));
    const perRun = report.runs.filter((record) => record.scenario === scenario);
    const rounds = [...new Set(perRun.map((record) => record.run))];
    lines.push('', 'per run (docs/s; 1-min load before the run):');
    for (const round of rounds) {
      const inRound = perRun.filter((record) => record.run === round);
      lines.push(`- run ${round}: ${inRound.map((r) => `${r.result.contender} ${n0(docsPerSecond(r))} (load ${r.load1Before})${r.verified ? '' : ' UNVERIFIED'}`).join(', ')}`);
    }
    const rollback = report.rollbacks[scenario];
    if (rollback) lines.push(...renderRollback(scenario, rollback, perRun));
  }
  const engineRuns = report.runs.filter((record) => record.result.engine);
  if (engineRuns.length > 0) {
    lines.push('', '### engine, per batch (median over runs)', '');
    const per = (pick: (details: EngineDetails, record: RunRecord) => number) => median(engineRuns.map((record) => pick(record.result.engine!, record)));
    const batchGetMs = per((d) => d.batchGet.totalMs / Math.max(1, d.batchGet.calls));
    const commitMs = per((d) => d.commit.totalMs / Math.max(1, d.commit.calls));
    const batchMs = per((_d, record) => record.result.batches.meanMs);
    // Batches fed by a whole-document stream read nothing (batchGet only on a retry or in keys mode): spread the RPC time over all batches.
    const rpcPerBatchMs = per((d, record) => (d.batchGet.totalMs + d.commit.totalMs) / Math.max(1, record.result.batches.count));
    lines.push(
      ...table(
        ['planning ms (lease, survey of the target)', 'finishing ms (final sweep)', 'validation report ms (after the run)', 'batchGet ms/call', 'commit ms/call', 'batch mean ms', 'rest of a batch ms (classify, encode, waits)', 'batchGet calls / batches'],
        [[n0(per((d) => d.planningMs)), n0(per((d) => d.finishingMs ?? NaN)), n0(per((d) => d.validationMs ?? NaN)), n0(batchGetMs), n0(commitMs), n0(batchMs), n0(batchMs - rpcPerBatchMs), `${n0(per((d) => d.batchGet.calls))} / ${n0(per((_d, r) => r.result.batches.count))}`]],
      ),
    );
  }
  if (report.memory.length > 0) {
    lines.push('', '### engine memory (G5)', '');
    lines.push(
      ...table(
        ['docs', 'docs/s', 'peak RSS MB (sampled)', 'VmHWM MB', 'RSS at start MB', 'verified'],
        report.memory.map((record) => [
          n0(record.docs),
          n0(docsPerSecond(record)),
          n0(record.result.peakRssMb),
          record.result.hwmRssMb === null ? '–' : n0(record.result.hwmRssMb),
          n0(record.result.startRssMb),
          record.verified ? 'yes' : 'NO',
        ]),
      ),
    );
  }
  lines.push('', '### bars (DESIGN.md "Performance bars")', '');
  lines.push(...table(['bar', 'figure', 'result'], report.bars.map((bar) => [bar.bar, bar.figure, bar.pass === null ? 'not judged (smaller collection)' : bar.pass ? 'PASS' : 'FAIL'])));
  // docs/s swing with the machine's load; CPU time per document (client + emulator) barely does, and
  // bounds docs/s when both processes saturate the CPUs: a steadier view of the same comparison.
  for (const [scenario, summaries] of Object.entries(report.summaries)) {
    const cpu = (name: ContenderName) => {
      const summary = summaries.find((s) => s.contender === name);
      return summary && summary.emulatorCpuMsPer1k !== null ? summary.clientCpuMsPer1k + summary.emulatorCpuMsPer1k : null;
    };
    const engine = cpu('engine');
    const hand = cpu('hand-loop');
    if (engine !== null && hand !== null) {
      lines.push(
        '',
        `${scenario}: CPU per 1k docs (client + emulator): engine ${n0(engine)} ms, hand loop ${n0(hand)} ms → work ratio ${(hand / engine).toFixed(2)} ` +
          '(the docs/s ratio a CPU-bound machine would show; not a bar)',
      );
    }
  }
  return `${lines.join('\n')}\n`;
}
