/** Safe HTML from templates (every interpolated value escaped), formatting, and the SVG line chart. */

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

/** Markup that `html` inserts as is: built by `html` itself. */
export class Markup {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

function piece(value: unknown): string {
  if (value instanceof Markup) return value.text;
  if (Array.isArray(value)) return value.map(piece).join('');
  if (value === null || value === undefined || value === false) return '';
  return String(value).replace(/[&<>"']/g, (c) => ESCAPES[c]);
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Markup {
  return new Markup(strings.reduce((out, text, i) => out + text + (i < values.length ? piece(values[i]) : ''), ''));
}

export function setHtml(element: HTMLElement, markup: Markup): void {
  element.innerHTML = markup.text;
}

export function time(iso: string | null | undefined): string {
  return iso ? new Date(iso).toLocaleTimeString([], { hour12: false }) : '–';
}

export function dateTime(iso: string | null | undefined): string {
  return iso ? new Date(iso).toISOString().replace('T', ' ').slice(0, 19) + 'Z' : '–';
}

/** "in 1 min 20 s" from now to `iso`. */
export function eta(iso: string | null, now = Date.now()): string {
  if (!iso) return '–';
  const seconds = Math.max(0, Math.round((new Date(iso).getTime() - now) / 1000));
  return seconds >= 60 ? `in ${Math.floor(seconds / 60)} min ${seconds % 60} s` : `in ${seconds} s`;
}

export function number(value: number | null | undefined, digits = 0): string {
  return value === null || value === undefined ? '–' : value.toLocaleString('en-US', { maximumFractionDigits: digits });
}

export function statusBadge(status: string): Markup {
  return html`<span class="badge status-${status}" data-status="${status}">${status.replace(/_/g, ' ')}</span>`;
}

/** A line chart of `points` (y from 0 to the larger of `yMax` and the data's max), with the last value labelled. */
export function lineChart(points: ReadonlyArray<{ x: number; y: number }>, options: { label: string; unit: string; yMax?: number; testId: string }): Markup {
  const width = 480;
  const height = 120;
  const pad = 24;
  if (points.length === 0) return html`<div class="chart empty" data-testid="${options.testId}">no ${options.label} yet</div>`;
  const xs = points.map((p) => p.x);
  const minX = Math.min(...xs);
  const spanX = Math.max(1, Math.max(...xs) - minX);
  const maxY = Math.max(options.yMax ?? 0, ...points.map((p) => p.y), 1);
  const sx = (x: number) => pad + ((x - minX) / spanX) * (width - 2 * pad);
  const sy = (y: number) => height - pad - (y / maxY) * (height - 2 * pad);
  const path = points.map((p, i) => `${i === 0 ? 'M' : 'L'}${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
  const last = points[points.length - 1];
  return html`<figure class="chart" data-testid="${options.testId}">
    <svg viewBox="0 0 ${width} ${height}" role="img" aria-label="${options.label}">
      <line class="axis" x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" />
      <line class="axis" x1="${pad}" y1="${pad}" x2="${pad}" y2="${height - pad}" />
      <text class="tick" x="2" y="${pad + 4}">${number(maxY, 1)}</text>
      <text class="tick" x="2" y="${height - pad + 4}">0</text>
      <path class="line" d="${path}" />
      ${points.map((p) => html`<circle class="dot" cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="2" />`)}
    </svg>
    <figcaption>${options.label}: last ${number(last.y, 1)} ${options.unit}</figcaption>
  </figure>`;
}
