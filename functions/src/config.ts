/**
 * Environment → typed, validated configuration. Every variable of the seed (`MIGRATION_*`,
 * `MONITOR_*`, `ROLLBACK_*`) is described once, in `SPEC` below: its name and alternative
 * spellings, default, accepted values and meaning. `loadConfig` parses from that table and
 * `CONFIG_VARIABLES` publishes it for the CLI and README, so the two cannot drift apart.
 *
 * Values are trimmed; an empty value counts as unset. All problems are collected and reported
 * together in one `ConfigError`, one line per problem.
 */
import { isDeepStrictEqual } from 'node:util';
import { z } from 'zod';
import { DEFAULT_CONTROL_COLLECTION } from './control/paths';

/** One warning/critical pair of an alert threshold. */
export interface ThresholdPair {
  warning: number;
  critical: number;
}

/** Health alert thresholds (`MONITOR_ALERT_THRESHOLDS`, merged key by key over the defaults). */
export interface AlertThresholds {
  /** Batch-commit and probe-query latency in milliseconds; alerts when the latency is ABOVE. */
  responseTime: ThresholdPair;
  /** Failed share of processed documents and probes, ratio 0..1; alerts when ABOVE. */
  errorRate: ThresholdPair;
  /** Worker resident memory (RSS) in MB; alerts when ABOVE. */
  memory: ThresholdPair;
  /** Share of sampled migrated documents that parse with the target schema, ratio 0..1; alerts when BELOW. */
  integrity: ThresholdPair;
}

export interface FiremigrateConfig {
  migration: {
    batchSize: number;
    maxRetries: number;
    retryDelayMs: number;
    validationEnabled: boolean;
    transactionTimeoutMs: number;
    concurrentBatches: number;
    checkpointInterval: number;
    rollbackEnabled: boolean;
    healthCheckIntervalMs: number;
    memoryThresholdMb: number;
    quotaSafety: number;
    connectionPoolSize: number;
    emergencyThreshold: number;
    emergencyWindow: number;
    controlCollection: string;
    leaseTtlMs: number;
  };
  monitor: { sampleSize: number; healthIntervalMs: number; alertThresholds: AlertThresholds };
  rollback: {
    batchSize: number;
    maxRetries: number;
    timeoutMs: number;
    safetyIntervalMs: number;
    validationSample: number;
    emergencyThreshold: number;
    backupValidation: boolean;
    requireConfirmation: boolean;
    confirmed: boolean;
  };
  /** `firestoreHost` is absent (not undefined) when unset, so the config can be stored in Firestore as is. */
  emulator: { firestoreHost?: string; anyEmulator: boolean };
}

/** One bad variable (or a pair of spellings that disagree). */
export interface ConfigProblem {
  variable: string;
  value: string;
  accepted: string;
  /** The complete line, e.g. `MIGRATION_BATCH_SIZE="abc" is invalid: expected an integer from 1 to 500`. */
  message: string;
}

/**
 * The environment holds one or more bad values. `variable`, `value` and `accepted` describe the
 * first problem; `problems` lists all of them, and the message has one line per problem.
 */
export class ConfigError extends Error {
  readonly variable: string;
  readonly value: string;
  readonly accepted: string;

  constructor(readonly problems: readonly ConfigProblem[]) {
    super(problems.map((problem) => problem.message).join('\n'));
    this.name = 'ConfigError';
    this.variable = problems[0].variable;
    this.value = problems[0].value;
    this.accepted = problems[0].accepted;
  }
}

/** Variables whose presence means an emulator is in use (`FUNCTIONS_EMULATOR` must be `true`). */
export const EMULATOR_VARIABLES = [
  'FIRESTORE_EMULATOR_HOST',
  'PUBSUB_EMULATOR_HOST',
  'FIREBASE_AUTH_EMULATOR_HOST',
  'CLOUD_TASKS_EMULATOR_HOST',
  'FUNCTIONS_EMULATOR',
] as const;

// ---------------------------------------------------------------------------------------------
// Value types: how a variable's text becomes a value, and how the accepted values read in words.

type ParseResult<T> = { ok: true; value: T } | { ok: false; detail?: string };

interface ValueType<T> {
  accepted: string;
  /** `text` is trimmed and non-empty. A `detail` says what is wrong beyond "expected <accepted>". */
  parse(text: string): ParseResult<T>;
  /** The value as it would be written in the environment (for the defaults table). */
  format(value: T): string;
}

function fromSchema<T>(accepted: string, schema: z.ZodType<T, string>): ValueType<T> {
  return {
    accepted,
    parse(text) {
      const result = schema.safeParse(text);
      return result.success ? { ok: true, value: result.data } : { ok: false };
    },
    format: String,
  };
}

function integer(min: number, max: number, unit?: 'ms' | 'MB'): ValueType<number> {
  return fromSchema(
    `an integer from ${min} to ${max}${unit ? ` (${unit})` : ''}`,
    z.string().regex(/^-?\d+$/).transform(Number).pipe(z.number().int().min(min).max(max)),
  );
}

/** A fraction in (0, 1]: zero would forbid everything (quota) or trip on nothing (failure rate). */
const positiveRatio = fromSchema(
  'a number greater than 0 and at most 1',
  z
    .string()
    .regex(/^(\d+(\.\d+)?|\.\d+)$/)
    .transform(Number)
    .pipe(z.number().gt(0).max(1)),
);

const boolean: ValueType<boolean> = {
  accepted: 'true, false, 1 or 0',
  parse(text) {
    const lower = text.toLowerCase();
    if (lower === 'true' || lower === '1') return { ok: true, value: true };
    if (lower === 'false' || lower === '0') return { ok: true, value: false };
    return { ok: false };
  },
  format: String,
};

/** Firestore's rules for a collection id (https://firebase.google.com/docs/firestore/quotas#collections_documents_and_fields). */
const collectionId = fromSchema(
  "a top-level collection id: at most 1500 bytes, no '/', not '.' or '..', not of the form __name__",
  z
    .string()
    .refine((id) => Buffer.byteLength(id, 'utf8') <= 1500)
    .refine((id) => !id.includes('/'))
    .refine((id) => id !== '.' && id !== '..')
    .refine((id) => !/^__.*__$/.test(id)),
);

/**
 * Every value here is JSON data. (`structuredClone` would do, but its objects come from Node's own
 * realm, so a jest `toStrictEqual` against them fails.)
 */
function copyJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

const DEFAULT_ALERT_THRESHOLDS: AlertThresholds = {
  responseTime: { warning: 1000, critical: 3000 },
  errorRate: { warning: 0.01, critical: 0.05 },
  memory: { warning: 512, critical: 1024 },
  integrity: { warning: 0.95, critical: 0.9 },
};

function thresholdPairOverride(value: z.ZodNumber) {
  return z
    .strictObject({ warning: value.optional(), critical: value.optional() }, { error: 'expected {"warning": n, "critical": n}' })
    .optional();
}
const positiveNumber = z.number({ error: 'expected a number' }).gt(0, { error: 'expected a number greater than 0' });
const ratio = z
  .number({ error: 'expected a number' })
  .min(0, { error: 'expected a ratio from 0 to 1' })
  .max(1, { error: 'expected a ratio from 0 to 1' });
const alertThresholdsOverride = z.strictObject(
  {
    responseTime: thresholdPairOverride(positiveNumber),
    errorRate: thresholdPairOverride(ratio),
    memory: thresholdPairOverride(positiveNumber),
    integrity: thresholdPairOverride(ratio),
  },
  { error: 'expected a JSON object' },
);

function describeIssue(issue: z.core.$ZodIssue): string {
  const at = issue.path.map(String);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => `unknown key "${[...at, key].join('.')}"`).join(', ');
  }
  return at.length > 0 ? `${at.join('.')}: ${issue.message}` : issue.message;
}

const alertThresholds: ValueType<AlertThresholds> = {
  accepted:
    'a JSON object with any of responseTime (ms), errorRate (ratio 0..1), memory (MB), integrity (ratio 0..1), ' +
    'each {"warning": n, "critical": n}, merged over the defaults; warning < critical, except integrity ' +
    '(alerts when below) where warning > critical',
  parse(text) {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      return { ok: false, detail: `not valid JSON (${(error as Error).message})` };
    }
    const override = alertThresholdsOverride.safeParse(json);
    if (!override.success) return { ok: false, detail: override.error.issues.map(describeIssue).join('; ') };
    const merged = copyJson(DEFAULT_ALERT_THRESHOLDS);
    for (const [key, pair] of Object.entries(override.data) as [keyof AlertThresholds, Partial<ThresholdPair> | undefined][]) {
      if (pair) merged[key] = { ...merged[key], ...pair };
    }
    const disorder = (Object.keys(merged) as (keyof AlertThresholds)[]).flatMap((key) => {
      const { warning, critical } = merged[key];
      if (key === 'integrity') {
        return warning > critical ? [] : [`integrity.warning (${warning}) must be above integrity.critical (${critical})`];
      }
      return warning < critical ? [] : [`${key}.warning (${warning}) must be below ${key}.critical (${critical})`];
    });
    if (disorder.length > 0) return { ok: false, detail: `${disorder.join('; ')} after merging over the defaults` };
    return { ok: true, value: merged };
  },
  format: (value) => JSON.stringify(value),
};

// ---------------------------------------------------------------------------------------------
// The table. Its type forces one entry per config field, with a value type of the field's type.

interface VariableSpec<T> {
  name: string;
  /** Other spellings found in the seed; setting two spellings to different values is an error. */
  aliases: readonly string[];
  default: T;
  type: ValueType<T>;
  /** Replaces `type.accepted` where a rule beyond the value type applies. */
  accepted?: string;
  meaning: string;
}

type SectionSpec<S> = { [K in keyof S]-?: VariableSpec<S[K]> };
type Section = 'migration' | 'monitor' | 'rollback';

function variable<T>(name: string, type: ValueType<T>, defaultValue: T, meaning: string, aliases: readonly string[] = []): VariableSpec<T> {
  return { name, aliases, default: defaultValue, type, meaning };
}

// Only the Firestore emulator makes the rollback's data unreal: with just the Pub/Sub or Functions
// emulator, the rollback would still rewrite production documents.
const CONFIRMATION_OFF_RULE = 'false is honoured only against the Firestore emulator (FIRESTORE_EMULATOR_HOST set)';

// Ranges: batch sizes stop at 500 because one commit holds at most 500 writes; an error still
// failing after 20 retries is not transient; durations stop where a larger value only hides a
// stuck run (a commit deadline of 10 min, health sampling once an hour, a rollback of a day).
const SPEC: { [S in Section]: SectionSpec<FiremigrateConfig[S]> } = {
  migration: {
    batchSize: variable('MIGRATION_BATCH_SIZE', integer(1, 500), 100,
      'documents per batch (upper bound; bytes also bound a batch)'),
    maxRetries: variable('MIGRATION_MAX_RETRIES', integer(0, 20), 5,
      'retries of a transient Firestore error within a batch'),
    retryDelayMs: variable('MIGRATION_RETRY_DELAY', integer(0, 60000, 'ms'), 1000,
      'base of the exponential retry backoff (with jitter); 0 retries at once', ['MIGRATION_RETRY_DELAY_BASE']),
    validationEnabled: variable('MIGRATION_VALIDATION_ENABLED', boolean, true,
      'zod validation of every written document against the target schema'),
    transactionTimeoutMs: variable('MIGRATION_TRANSACTION_TIMEOUT', integer(1000, 600000, 'ms'), 30000,
      'deadline of one batch commit (a commit given up on is ambiguous; the engine reconciles it)'),
    concurrentBatches: variable('MIGRATION_CONCURRENT_BATCHES', integer(1, 100), 3,
      'partitions in flight (local runner) / queue maxConcurrentDispatches (Cloud Tasks)'),
    checkpointInterval: variable('MIGRATION_CHECKPOINT_INTERVAL', integer(1, 1000000), 1000,
      'how often run-level progress is summarised into the run document; partitions checkpoint every batch'),
    rollbackEnabled: variable('MIGRATION_ROLLBACK_ENABLED', boolean, true,
      'capture before-images (off: only a down-based revert is possible)'),
    healthCheckIntervalMs: variable('MIGRATION_HEALTH_CHECK_INTERVAL', integer(1000, 3600000, 'ms'), 30000,
      'period of the local runner\'s in-process health sampler'),
    memoryThresholdMb: variable('MIGRATION_MEMORY_THRESHOLD', integer(64, 32768, 'MB'), 512,
      'worker RSS at which the runner slows, then pauses', ['MIGRATION_MEMORY_THRESHOLD_MB']),
    quotaSafety: variable('MIGRATION_QUOTA_SAFETY', positiveRatio, 0.8,
      'fraction of the 500/50/5 write ramp the throttle allows', ['MIGRATION_FIRESTORE_QUOTA_SAFETY_FACTOR']),
    connectionPoolSize: variable('MIGRATION_CONNECTION_POOL_SIZE', integer(1, 1000), 10,
      'concurrent Firestore RPCs per worker; health reports utilisation (in flight / size)'),
    emergencyThreshold: variable('MIGRATION_EMERGENCY_THRESHOLD', positiveRatio, 0.1,
      'circuit breaker: failure rate over the last MIGRATION_EMERGENCY_WINDOW documents that stops the run'),
    emergencyWindow: variable('MIGRATION_EMERGENCY_WINDOW', integer(10, 1000000), 1000,
      'how many recent documents the circuit breaker looks at'),
    controlCollection: variable('MIGRATION_CONTROL_COLLECTION', collectionId, DEFAULT_CONTROL_COLLECTION,
      'root collection of firemigrate\'s control data (registry, runs, checkpoints, backups, audit)'),
    leaseTtlMs: variable('MIGRATION_LEASE_TTL_MS', integer(1000, 3600000, 'ms'), 60000,
      'how long a run\'s lease lives without renewal (renewed every third of it): how long a crashed run blocks its migration'),
  },
  monitor: {
    sampleSize: variable('MONITOR_SAMPLE_SIZE', integer(1, 10000), 100,
      'documents sampled per health check for integrity and latency'),
    healthIntervalMs: variable('MONITOR_HEALTH_INTERVAL', integer(1000, 86400000, 'ms'), 30000,
      'health check schedule (Cloud Scheduler runs at most once a minute: below 60000 applies to the local sampler only)'),
    alertThresholds: variable('MONITOR_ALERT_THRESHOLDS', alertThresholds, DEFAULT_ALERT_THRESHOLDS,
      'health alert thresholds, merged over the defaults key by key'),
  },
  rollback: {
    batchSize: variable('ROLLBACK_BATCH_SIZE', integer(1, 500), 50,
      'documents restored per rollback batch'),
    maxRetries: variable('ROLLBACK_MAX_RETRIES', integer(0, 20), 3,
      'retries of a transient error within a rollback batch'),
    timeoutMs: variable('ROLLBACK_TIMEOUT', integer(1000, 86400000, 'ms'), 300000,
      'overall deadline of a rollback run'),
    safetyIntervalMs: variable('ROLLBACK_SAFETY_INTERVAL', integer(1000, 3600000, 'ms'), 30000,
      'pause between safety re-checks during a rollback'),
    validationSample: variable('ROLLBACK_VALIDATION_SAMPLE', integer(1, 10000), 100,
      'documents sampled after the rollback to check they equal their before-images'),
    emergencyThreshold: variable('ROLLBACK_EMERGENCY_THRESHOLD', positiveRatio, 0.1,
      'failure rate that stops a rollback'),
    backupValidation: variable('ROLLBACK_BACKUP_VALIDATION', boolean, true,
      'check the before-images before the rollback starts'),
    requireConfirmation: {
      ...variable('ROLLBACK_REQUIRE_CONFIRMATION', boolean, true,
        'whether the CLI asks for ROLLBACK_CONFIRMED=true before a rollback'),
      accepted: `${boolean.accepted}; ${CONFIRMATION_OFF_RULE}`,
    },
    confirmed: variable('ROLLBACK_CONFIRMED', boolean, false,
      'the CLI\'s confirmation gate: true to execute a rollback (the API and Pub/Sub take confirm: true instead)'),
  },
};

// ---------------------------------------------------------------------------------------------
// The published table.

export interface ConfigVariable {
  name: string;
  aliases: readonly string[];
  /** The default as it would be written in the environment. */
  default: string;
  accepted: string;
  meaning: string;
  /** Where the value lands in `FiremigrateConfig`, e.g. `migration.batchSize`. */
  key: string;
}

function accepted(spec: VariableSpec<unknown>): string {
  return spec.accepted ?? spec.type.accepted;
}

export const CONFIG_VARIABLES: readonly ConfigVariable[] = (Object.keys(SPEC) as Section[]).flatMap((section) =>
  Object.entries(SPEC[section] as Record<string, VariableSpec<unknown>>).map(([field, spec]) => ({
    name: spec.name,
    aliases: spec.aliases,
    default: spec.type.format(spec.default),
    accepted: accepted(spec),
    meaning: spec.meaning,
    key: `${section}.${field}`,
  })),
);

// ---------------------------------------------------------------------------------------------
// Loading.

/** `NAME="value"`, quoted so the value can be read exactly (and pasted into a shell when printable). */
function assignment(name: string, value: string): string {
  const printable = /^[\x20-\x7e]*$/.test(value);
  if (printable && !value.includes('"')) return `${name}="${value}"`;
  if (printable && !value.includes("'")) return `${name}='${value}'`;
  return `${name}=${JSON.stringify(value)}`;
}

function readVariable<T>(spec: VariableSpec<T>, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): T {
  const set = [spec.name, ...spec.aliases].flatMap((name) => {
    const raw = env[name];
    const text = raw?.trim();
    return raw !== undefined && text ? [{ name, raw, result: spec.type.parse(text) }] : [];
  });
  const parsed: { name: string; raw: string; value: T }[] = [];
  for (const { name, raw, result } of set) {
    if (result.ok) {
      parsed.push({ name, raw, value: result.value });
      continue;
    }
    const expected = `expected ${accepted(spec)}`;
    problems.push({
      variable: name,
      value: raw,
      accepted: accepted(spec),
      message: `${assignment(name, raw)} is invalid: ${result.detail ? `${result.detail}; ${expected}` : expected}`,
    });
  }
  // A copy, so a caller changing its config cannot change the defaults of the next load.
  if (parsed.length !== set.length || parsed.length === 0) return copyJson(spec.default);
  const [first, ...others] = parsed;
  if (others.some((other) => !isDeepStrictEqual(other.value, first.value))) {
    problems.push({
      variable: first.name,
      value: first.raw,
      accepted: accepted(spec),
      message:
        `${parsed.map(({ name, raw }) => assignment(name, raw)).join(' and ')} disagree: ` +
        `both spell one setting, set only one of them; expected ${accepted(spec)}`,
    });
  }
  return first.value;
}

function readSection<S>(spec: SectionSpec<S>, env: NodeJS.ProcessEnv, problems: ConfigProblem[]): S {
  const section = {} as S;
  for (const field of Object.keys(spec) as (keyof S)[]) {
    section[field] = readVariable(spec[field], env, problems);
  }
  return section;
}

function readEmulator(env: NodeJS.ProcessEnv): FiremigrateConfig['emulator'] {
  const isSet = (name: string) => Boolean(env[name]?.trim());
  const anyEmulator =
    EMULATOR_VARIABLES.some((name) => name !== 'FUNCTIONS_EMULATOR' && isSet(name)) ||
    env.FUNCTIONS_EMULATOR?.trim().toLowerCase() === 'true';
  const firestoreHost = env.FIRESTORE_EMULATOR_HOST?.trim();
  return firestoreHost ? { firestoreHost, anyEmulator } : { anyEmulator };
}

/** Reads and validates the configuration; throws `ConfigError` listing every bad variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): FiremigrateConfig {
  const problems: ConfigProblem[] = [];
  const config: FiremigrateConfig = {
    migration: readSection(SPEC.migration, env, problems),
    monitor: readSection(SPEC.monitor, env, problems),
    rollback: readSection(SPEC.rollback, env, problems),
    emulator: readEmulator(env),
  };
  if (!config.rollback.requireConfirmation && !config.emulator.firestoreHost) {
    const spec = SPEC.rollback.requireConfirmation;
    const raw = env[spec.name] ?? '';
    problems.push({
      variable: spec.name,
      value: raw,
      accepted: accepted(spec),
      message: `${assignment(spec.name, raw)} is refused: FIRESTORE_EMULATOR_HOST is not set, and ${CONFIRMATION_OFF_RULE}`,
    });
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}
