/**
 * What the CLI prints. `--json` prints one machine-readable JSON document on stdout and nothing
 * else there; without it, reports are plain text with padded tables. Diagnostics go to stderr.
 */

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, jsonReplacer, 2)}\n`);
}

/** Bigints as their digits: JSON has no int64 (Dates already serialise as ISO strings). */
function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  return value;
}

export function printLines(lines: readonly string[]): void {
  process.stdout.write(`${lines.join('\n')}\n`);
}

const NUMERIC_CELL = /^(-|[\d,.]+( %)?)?$/;

/** Columns separated by two spaces: text left-aligned, numbers (`1,234`, `5.0 %`) right-aligned. */
export function renderTable(headers: readonly string[], rows: ReadonlyArray<ReadonlyArray<string | number>>): string[] {
  const cells = rows.map((row) => row.map((cell) => String(cell)));
  const widths = headers.map((header, i) => Math.max(header.length, ...cells.map((row) => (row[i] ?? '').length)));
  const numeric = headers.map((_, i) => cells.some((row) => /\d/.test(row[i] ?? '')) && cells.every((row) => NUMERIC_CELL.test(row[i] ?? '')));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((width) => '-'.repeat(width))), ...cells.map(line)];
}

/** `1 234 567` — thousands grouped, so counts are readable at a glance. */
export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** `42 s`, `3 min 20 s`, `2 h 5 min` — durations of estimates and runs. */
export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const totalSeconds = Math.round(seconds);
  const hours = Math.floor(totalSeconds / 3600);
  const minutes = Math.floor((totalSeconds % 3600) / 60);
  const rest = totalSeconds % 60;
  if (hours > 0) return `${hours} h ${minutes} min`;
  return rest === 0 ? `${minutes} min` : `${minutes} min ${rest} s`;
}

export function formatPercent(part: number, whole: number): string {
  if (whole === 0) return '0 %';
  return `${((part / whole) * 100).toFixed(1)} %`;
}
