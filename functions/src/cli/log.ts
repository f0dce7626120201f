/**
 * Structured logs. In `json` format every entry is one JSON line in the shape Cloud Logging reads
 * from a process's output (`severity`, `message`, `time`; other keys become the jsonPayload), so
 * the same lines are queryable when the CLI runs in Cloud Run jobs, Cloud Build or GKE. In `text`
 * format (a terminal) they are short human lines. Entries carry paths, counters and error
 * classes, never document contents.
 */
export type Severity = 'DEBUG' | 'INFO' | 'WARNING' | 'ERROR';

const RANK: Record<Severity, number> = { DEBUG: 0, INFO: 1, WARNING: 2, ERROR: 3 };

export interface LogEntry {
  severity: Severity;
  message: string;
  time: string;
  [field: string]: unknown;
}

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warning(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export interface LoggerOptions {
  format: 'json' | 'text';
  /** Where lines go (a stream's write, or a progress bar's log that keeps the bar drawn). */
  write: (line: string) => void;
  /** Lowest severity written; DEBUG with FIREMIGRATE_DEBUG set, INFO otherwise. */
  minSeverity?: Severity;
  /** Fields on every entry (e.g. the run id). */
  base?: Record<string, unknown>;
  now?: () => Date;
}

/** BigInts as digits, errors as their name and message: JSON.stringify cannot encode either. */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Error) return { name: value.name, message: value.message };
  return value;
}

export function formatEntry(entry: LogEntry, format: 'json' | 'text'): string {
  if (format === 'json') return JSON.stringify(entry, jsonReplacer);
  const { severity, message, time } = entry;
  return `${time.slice(11, 19)} ${severity.padEnd(7)} ${message}`;
}

export function defaultMinSeverity(env: NodeJS.ProcessEnv = process.env): Severity {
  return env.FIREMIGRATE_DEBUG ? 'DEBUG' : 'INFO';
}

export function createLogger(options: LoggerOptions): Logger {
  const min = RANK[options.minSeverity ?? defaultMinSeverity()];
  const now = options.now ?? (() => new Date());
  const emit = (severity: Severity, message: string, fields?: Record<string, unknown>) => {
    if (RANK[severity] < min) return;
    // severity, message and time last, so a field cannot overwrite them.
    const entry: LogEntry = { ...options.base, ...fields, severity, message, time: now().toISOString() };
    options.write(`${formatEntry(entry, options.format)}\n`);
  };
  return {
    debug: (message, fields) => emit('DEBUG', message, fields),
    info: (message, fields) => emit('INFO', message, fields),
    warning: (message, fields) => emit('WARNING', message, fields),
    error: (message, fields) => emit('ERROR', message, fields),
  };
}
