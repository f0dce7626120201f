import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Timestamp } from '@google-cloud/firestore';
import { alertKey, alertsOf, planAlerts, type HealthAlert, type OpenAlert } from '../../functions/src/monitor/alerts';
import type { HealthCheck } from '../../functions/src/monitor/types';
import { alertWebhookUrl, HttpAlertWebhook, slackMessage } from '../../functions/src/monitor/webhook';

const check = (name: string, status: HealthCheck['status'], runId: string | null = 'run-1'): HealthCheck => ({
  name,
  dimension: 'performance',
  status,
  value: 0.2,
  threshold: 0.05,
  unit: 'ratio',
  message: `${name} is ${status}`,
  recommendedAction: status === 'ok' ? null : `fix ${name}`,
  scope: { migrationId: 'mig', runId },
});

const open = (alert: HealthAlert): OpenAlert => ({ alert, openedAt: Timestamp.fromMillis(1_000), openedBySnapshot: 's0', lastSeenAt: Timestamp.fromMillis(1_000), lastSnapshotId: 's0' });

describe('alerts', () => {
  it('one alert per warning, error or critical check: warning → warning, error and critical → critical', () => {
    const alerts = alertsOf([check('a', 'ok'), check('b', 'warning'), check('c', 'error'), check('d', 'critical'), check('e', 'not-checkable')]);
    expect(alerts.map((alert) => [alert.metric, alert.severity])).toEqual([['b', 'warning'], ['c', 'critical'], ['d', 'critical']]);
    expect(alerts[2]).toEqual({
      key: 'mig/run-1/d',
      severity: 'critical',
      category: 'performance',
      message: 'd is critical',
      metric: 'd',
      value: 0.2,
      threshold: 0.05,
      unit: 'ratio',
      migrationId: 'mig',
      runId: 'run-1',
      recommendedActions: ['fix d'],
    });
    expect(alertKey(check('indexes', 'error', null))).toBe('mig/-/indexes');
  });

  it('de-duplicates: opens new conditions, stays quiet while they persist, re-announces a severity change, resolves what cleared', () => {
    const [errorRate, latency, memory] = alertsOf([check('errorRate', 'critical'), check('batchLatency', 'warning'), check('workerMemory', 'warning')]);
    const first = planAlerts([errorRate, latency], []);
    expect(first.opened.map((alert) => alert.key)).toEqual(['mig/run-1/errorRate', 'mig/run-1/batchLatency']);
    expect([first.changed, first.persisting, first.resolved]).toEqual([[], [], []]);

    const worse = { ...latency, severity: 'critical' as const };
    const second = planAlerts([errorRate, worse, memory], [open(errorRate), open(latency)]);
    expect(second.opened).toEqual([memory]);
    expect(second.changed).toEqual([worse]);
    expect(second.persisting).toEqual([errorRate]);
    expect(second.resolved).toEqual([]);

    const third = planAlerts([memory], [open(errorRate), open(worse), open(memory)]);
    expect(third.opened).toEqual([]);
    expect(third.persisting).toEqual([memory]);
    expect(third.resolved.map((entry) => entry.alert.key)).toEqual(['mig/run-1/errorRate', 'mig/run-1/batchLatency']);
  });

  it('a Slack-compatible message: text + blocks, with value, threshold and the recommended actions', () => {
    const [alert] = alertsOf([check('errorRate', 'critical')]);
    const message = slackMessage({ kind: 'opened', alert }, 'snap-1');
    expect(message.text).toBe('CRITICAL performance/errorRate on run run-1 of mig: errorRate is critical');
    expect(message.blocks[0]).toEqual({ type: 'header', text: { type: 'plain_text', text: '🚨 CRITICAL: errorRate' } });
    expect(JSON.stringify(message.blocks)).toContain('20.00 % (threshold 5.00 %)');
    expect(JSON.stringify(message.blocks)).toContain('• fix errorRate');
    const resolved = slackMessage({ kind: 'resolved', open: open(alert) }, 'snap-2');
    expect(resolved.text).toBe('RESOLVED performance/errorRate on run run-1 of mig (open since 1970-01-01T00:00:01.000Z)');
  });

  it('ALERT_WEBHOOK_URL: unset is null, a non-http value is an error naming the variable', () => {
    expect(alertWebhookUrl({})).toBeNull();
    expect(alertWebhookUrl({ ALERT_WEBHOOK_URL: 'https://hooks.example.com/x' })?.href).toBe('https://hooks.example.com/x');
    expect(() => alertWebhookUrl({ ALERT_WEBHOOK_URL: 'not a url' })).toThrow('ALERT_WEBHOOK_URL is invalid: expected an http(s) URL');
    expect(() => alertWebhookUrl({ ALERT_WEBHOOK_URL: 'ftp://x/y' })).toThrow('got the protocol ftp:');
  });
});

describe('alert webhook over HTTP (a real server on 127.0.0.1)', () => {
  let server: Server;
  let url: URL;
  const received: Array<{ method: string; type: string | undefined; body: unknown }> = [];
  let answer = 200;

  beforeAll(async () => {
    server = createServer((request: IncomingMessage, response) => {
      let body = '';
      request.on('data', (chunk) => (body += chunk));
      request.on('end', () => {
        received.push({ method: request.method!, type: request.headers['content-type'], body: JSON.parse(body) });
        response.writeHead(answer).end(answer === 200 ? 'ok' : 'invalid_payload');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/secret`);
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('POSTs the JSON message; a non-2xx answer is an error naming the host and status, not the secret path', async () => {
    const [alert] = alertsOf([check('errorRate', 'warning')]);
    const message = slackMessage({ kind: 'opened', alert }, 'snap-1');
    await new HttpAlertWebhook(url).post(message);
    expect(received).toEqual([{ method: 'POST', type: 'application/json', body: message }]);
    answer = 400;
    const failure = new HttpAlertWebhook(url).post(message);
    await expect(failure).rejects.toThrow(`the alert webhook at ${url.host} answered HTTP 400: invalid_payload`);
    await expect(failure).rejects.not.toThrow('secret');
  });
});
