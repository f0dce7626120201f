/**
 * Where a health run's outputs go, chosen by environment, shared by the scheduled function and
 * `firemigrate monitor`: in production the Admin API for indexes and Cloud Monitoring for
 * metrics; on an emulator no index check (the emulator has no Admin API) and metrics as
 * structured log lines. The webhook comes from ALERT_WEBHOOK_URL wherever it is set.
 */
import type { Firestore } from '@google-cloud/firestore';
import { CloudMonitoringMetricsSink } from '../transports/metrics-cloud-monitoring';
import { LogMetricsSink } from '../transports/log-metrics-sink';
import type { MetricsSink } from '../transports/metrics';
import { FirestoreAdminIndexStatus, type IndexStatusSource } from './index-status';
import { alertWebhookUrl, HttpAlertWebhook, type AlertWebhook } from './webhook';

export interface HealthOutlets {
  indexes: IndexStatusSource | null;
  metrics: MetricsSink;
  webhook: AlertWebhook | null;
}

export interface OutletOptions {
  db: Firestore;
  projectId: string;
  /** Any *_EMULATOR_HOST set (config.emulator.anyEmulator). */
  emulator: boolean;
  /** Where log-line metrics go on an emulator (the CLI keeps stdout for its report). */
  writeMetricLine?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

export async function healthOutlets(options: OutletOptions): Promise<HealthOutlets> {
  const webhookUrl = alertWebhookUrl(options.env);
  const webhook = webhookUrl ? new HttpAlertWebhook(webhookUrl) : null;
  if (options.emulator) return { indexes: null, metrics: new LogMetricsSink(options.writeMetricLine), webhook };
  return {
    indexes: FirestoreAdminIndexStatus.create(options.projectId, options.db),
    metrics: await CloudMonitoringMetricsSink.create(options.projectId),
    webhook,
  };
}
