import { parseArgs } from 'node:util';
import { CONTENDERS, SCENARIOS, type ContenderName, type Scenario } from './protocol';

export interface BenchOptions {
  /** Trades in the collection each contender migrates. */
  docs: number;
  /** Side-by-side rounds; the table shows the median of each figure. */
  runs: number;
  /** Collection sizes of the engine's memory comparison (G5); empty skips it. */
  memorySizes: number[];
  scenarios: Scenario[];
  contenders: ContenderName[];
  /** The app writer's writes per second (writer scenario); null: one edit per hot trade every HOT_EDIT_PERIOD_S. */
  writerRate: number | null;
  /** Seed of the demo data (the same data for every contender). */
  seed: number;
  /** One unmeasured round on a small collection first, so the emulator's JIT is warm for every contender. */
  warmup: boolean;
  /** After each round's verified engine run, roll it back in a child of its own and measure that. */
  rollback: boolean;
  resultsDir: string;
}

export const DEFAULT_DOCS = 100_000;
export const DEFAULT_RUNS = 3;
export const DEFAULT_MEMORY_SIZES = [20_000, 200_000];
/**
 * The app writer's default pace: each hot trade (10 % of the collection) is edited about once per
 * this many seconds — at 100k trades about 230 writes/s, so a good share of the hot trades changes
 * during a run of tens of seconds (preconditions fail, batches retry) without the writer taking
 * the emulator from the contenders. Scaling with the collection keeps small (--quick) runs as
 * contended as large ones.
 */
export const HOT_EDIT_PERIOD_S = 40;
export const DEFAULT_SEED = 20261129;
const QUICK = { docs: 3000, runs: 1, memorySizes: [2000, 10_000] };

export const USAGE = `npm run bench -- [options]

Benchmarks the engine (a real \`run --execute\` through the runner) against the best hand-written
loop and a fireway-style script, side by side on one Firestore emulator, quiet and with an app
writer; rolls each round's engine run back (\`rollback --execute\`) and times that; then the
engine's peak RSS at two collection sizes. Prints a markdown table to stdout and
writes bench/results/<time>.json.

  --docs <n>            trades per contender run (default ${DEFAULT_DOCS})
  --runs <n>            rounds, median reported (default ${DEFAULT_RUNS})
  --memory <a,b|none>   sizes of the engine memory comparison (default ${DEFAULT_MEMORY_SIZES.join(',')})
  --scenarios <list>    ${SCENARIOS.join(',')} (default both)
  --contenders <list>   ${CONTENDERS.join(',')} (default all)
  --writer-rate <n>     app writer's writes per second in the writer scenario
                        (default: each hot trade edited every ${HOT_EDIT_PERIOD_S} s, ~230/s at 100k trades)
  --seed <n>            demo data seed (default ${DEFAULT_SEED})
  --no-warmup           skip the unmeasured warm-up round
  --no-rollback         skip the rollback of each round's engine run (restore from before-images)
  --quick               smoke check: --docs ${QUICK.docs} --runs ${QUICK.runs} --memory ${QUICK.memorySizes.join(',')} (explicit flags win)
  --help

The engine and its rollback read their configuration from the environment like the CLI
(MIGRATION_BATCH_SIZE, ROLLBACK_BATCH_SIZE, ROLLBACK_TIMEOUT, ...).`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

function positiveInteger(flag: string, text: string | undefined, fallback: number, max = 10_000_000): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text.trim()) ? Number(text.trim()) : NaN;
  if (!(Number.isSafeInteger(value) && value >= 1 && value <= max)) throw new UsageError(`${flag} "${text}" is invalid: expected an integer from 1 to ${max}`);
  return value;
}

function list<T extends string>(flag: string, text: string | undefined, allowed: readonly T[]): T[] {
  if (text === undefined) return [...allowed];
  const items = text.split(',').map((item) => item.trim()).filter(Boolean);
  const unknown = items.filter((item) => !(allowed as readonly string[]).includes(item));
  if (items.length === 0 || unknown.length > 0) throw new UsageError(`${flag} "${text}" is invalid: expected a comma-separated list of ${allowed.join(', ')}`);
  return [...new Set(items)] as T[];
}

function sizes(text: string | undefined, fallback: number[]): number[] {
  if (text === undefined) return fallback;
  if (text.trim() === 'none') return [];
  const values = text.split(',').map((item) => positiveInteger('--memory', item, 0));
  if (values.length !== 2 || values[0] >= values[1]) throw new UsageError(`--memory "${text}" is invalid: expected two increasing sizes like 20000,200000, or none`);
  return values;
}

/** The options, or null when --help was asked for. */
export function parseBenchOptions(argv: string[], resultsDir: string): BenchOptions | null {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        docs: { type: 'string' },
        runs: { type: 'string' },
        memory: { type: 'string' },
        scenarios: { type: 'string' },
        contenders: { type: 'string' },
        'writer-rate': { type: 'string' },
        seed: { type: 'string' },
        'no-warmup': { type: 'boolean' },
        'no-rollback': { type: 'boolean' },
        quick: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { values } = parsed;
  if (values.help) return null;
  const quick = values.quick === true;
  const seed = values.seed === undefined ? DEFAULT_SEED : Number(values.seed);
  if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) throw new UsageError(`--seed "${values.seed}" is invalid: expected an integer from 0 to 4294967295`);
  const contenders = list('--contenders', values.contenders, CONTENDERS);
  return {
    docs: positiveInteger('--docs', values.docs, quick ? QUICK.docs : DEFAULT_DOCS, 1_000_000),
    runs: positiveInteger('--runs', values.runs, quick ? QUICK.runs : DEFAULT_RUNS, 50),
    memorySizes: sizes(values.memory, quick ? QUICK.memorySizes : DEFAULT_MEMORY_SIZES),
    scenarios: list('--scenarios', values.scenarios, SCENARIOS),
    // Always in the same order, whatever the flag's order: the table reads engine, hand loop, fireway.
    contenders: CONTENDERS.filter((name) => contenders.includes(name)),
    writerRate: values['writer-rate'] === undefined ? null : positiveInteger('--writer-rate', values['writer-rate'], 0, 100_000),
    seed,
    warmup: values['no-warmup'] !== true,
    rollback: values['no-rollback'] !== true,
    resultsDir,
  };
}
