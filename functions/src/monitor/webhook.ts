/**
 * Alert notifications to a chat webhook (ALERT_WEBHOOK_URL): Slack's incoming-webhook JSON, a
 * `text` fallback plus `blocks`, which Slack, Mattermost and Google Chat-style relays accept.
 * The URL carries its own secret, so it is read here and never copied into the configuration
 * snapshot that run documents store.
 */
import type { HealthAlert, OpenAlert } from './alerts';

export const ALERT_WEBHOOK_VARIABLE = 'ALERT_WEBHOOK_URL';

/** The webhook URL, or null when unset; a value that is not an http(s) URL is an error naming the variable. */
export function alertWebhookUrl(env: NodeJS.ProcessEnv = process.env): URL | null {
  const raw = env[ALERT_WEBHOOK_VARIABLE]?.trim();
  if (!raw) return null;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new Error(`${ALERT_WEBHOOK_VARIABLE} is invalid: expected an http(s) URL (e.g. https://hooks.slack.com/services/…)`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new Error(`${ALERT_WEBHOOK_VARIABLE} is invalid: expected an http(s) URL, got the protocol ${url.protocol}`);
  }
  return url;
}

export type AlertEvent = { kind: 'opened' | 'changed'; alert: HealthAlert } | { kind: 'resolved'; open: OpenAlert };

export interface SlackMessage {
  text: string;
  blocks: Array<Record<string, unknown>>;
}

function scopeOf(alert: HealthAlert): string {
  if (alert.runId) return `run ${alert.runId} of ${alert.migrationId}`;
  return alert.migrationId ? `migration ${alert.migrationId}` : 'firemigrate';
}

function valueText(alert: HealthAlert): string {
  if (alert.value === null) return 'not measured';
  const value = alert.unit === 'ratio' ? `${(alert.value * 100).toFixed(2)} %` : `${Number(alert.value.toFixed(2))} ${alert.unit}`;
  if (alert.threshold === null) return value;
  const threshold = alert.unit === 'ratio' ? `${(alert.threshold * 100).toFixed(2)} %` : `${alert.threshold} ${alert.unit}`;
  return `${value} (threshold ${threshold})`;
}

export function slackMessage(event: AlertEvent, snapshotId: string): SlackMessage {
  if (event.kind === 'resolved') {
    const { alert } = event.open;
    const text = `RESOLVED ${alert.category}/${alert.metric} on ${scopeOf(alert)} (open since ${event.open.openedAt.toDate().toISOString()})`;
    return {
      text,
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: `✅ Resolved: ${alert.metric}` } },
        { type: 'section', text: { type: 'mrkdwn', text: `*${scopeOf(alert)}* — ${alert.category}\nWas: ${alert.message}` } },
        { type: 'context', elements: [{ type: 'mrkdwn', text: `health snapshot ${snapshotId}` }] },
      ],
    };
  }
  const { alert } = event;
  const label = alert.severity === 'critical' ? 'CRITICAL' : 'WARNING';
  const text = `${label} ${alert.category}/${alert.metric} on ${scopeOf(alert)}: ${alert.message}`;
  const blocks: Array<Record<string, unknown>> = [
    { type: 'header', text: { type: 'plain_text', text: `${alert.severity === 'critical' ? '🚨' : '⚠️'} ${label}: ${alert.metric}${event.kind === 'changed' ? ' (severity changed)' : ''}` } },
    { type: 'section', text: { type: 'mrkdwn', text: `*${scopeOf(alert)}* — ${alert.category}\n${alert.message}` } },
    { type: 'section', fields: [{ type: 'mrkdwn', text: `*Value*\n${valueText(alert)}` }, { type: 'mrkdwn', text: `*Severity*\n${alert.severity}` }] },
  ];
  if (alert.recommendedActions.length > 0) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `*Recommended*\n${alert.recommendedActions.map((action) => `• ${action}`).join('\n')}` } });
  }
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `health snapshot ${snapshotId}` }] });
  return { text, blocks };
}

export interface AlertWebhook {
  post(message: SlackMessage): Promise<void>;
}

/** POSTs JSON to the URL; a non-2xx answer or a timeout is an error naming the status. */
export class HttpAlertWebhook implements AlertWebhook {
  constructor(
    private readonly url: URL,
    private readonly timeoutMs: number = 5000,
  ) {}

  async post(message: SlackMessage): Promise<void> {
    const response = await fetch(this.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(message),
      signal: AbortSignal.timeout(this.timeoutMs),
    });
    const body = await response.text();
    // The host only: the path of a Slack webhook URL is its secret.
    if (!response.ok) throw new Error(`the alert webhook at ${this.url.host} answered HTTP ${response.status}: ${body.slice(0, 200)}`);
  }
}
