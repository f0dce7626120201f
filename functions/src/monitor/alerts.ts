/**
 * Alerts from a health run's checks, de-duplicated across runs: an alert opens once when its
 * condition appears, is re-sent only when its severity changes, and closes with a resolved message
 * when the condition clears. The open alerts live in the control collection (one document per
 * alert key, created with create() so two concurrent health runs open an alert once).
 */
import { createHash } from 'node:crypto';
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { ControlPaths } from '../control/paths';
import { alertStatePath } from './monitor-paths';
import { isIssue } from './score';
import type { Dimension, HealthCheck } from './types';

export type AlertSeverity = 'warning' | 'critical';

export interface HealthAlert {
  /** `<migrationId|->/<runId|->/<check>`: the condition's identity across health runs. */
  key: string;
  severity: AlertSeverity;
  category: Dimension;
  message: string;
  metric: string;
  value: number | null;
  threshold: number | null;
  unit: string;
  migrationId: string | null;
  runId: string | null;
  recommendedActions: string[];
}

export function alertKey(check: Pick<HealthCheck, 'name' | 'scope'>): string {
  return `${check.scope.migrationId ?? '-'}/${check.scope.runId ?? '-'}/${check.name}`;
}

/** Warning checks raise warning alerts; error and critical checks raise critical ones (someone must act). */
export function alertsOf(checks: readonly HealthCheck[]): HealthAlert[] {
  return checks
    .filter((check) => isIssue(check.status))
    .map((check) => ({
      key: alertKey(check),
      severity: check.status === 'warning' ? 'warning' : 'critical',
      category: check.dimension,
      message: check.message,
      metric: check.name,
      value: check.value,
      threshold: check.threshold,
      unit: check.unit,
      migrationId: check.scope.migrationId,
      runId: check.scope.runId,
      recommendedActions: check.recommendedAction ? [check.recommendedAction] : [],
    }));
}

/** An open alert as stored. */
export interface OpenAlert {
  alert: HealthAlert;
  openedAt: Timestamp;
  openedBySnapshot: string;
  lastSeenAt: Timestamp;
  lastSnapshotId: string;
}

export interface AlertPlan {
  /** New conditions: announce. */
  opened: HealthAlert[];
  /** Open conditions whose severity changed: announce again. */
  changed: HealthAlert[];
  /** Open conditions seen again at the same severity: stay quiet. */
  persisting: HealthAlert[];
  /** Open conditions no longer present: announce their resolution. */
  resolved: OpenAlert[];
}

export function planAlerts(current: readonly HealthAlert[], open: readonly OpenAlert[]): AlertPlan {
  const openByKey = new Map(open.map((entry) => [entry.alert.key, entry]));
  const currentKeys = new Set(current.map((alert) => alert.key));
  const plan: AlertPlan = { opened: [], changed: [], persisting: [], resolved: [] };
  for (const alert of current) {
    const previous = openByKey.get(alert.key);
    if (!previous) plan.opened.push(alert);
    else if (previous.alert.severity !== alert.severity) plan.changed.push(alert);
    else plan.persisting.push(alert);
  }
  plan.resolved = open.filter((entry) => !currentKeys.has(entry.alert.key));
  return plan;
}

const ALREADY_EXISTS = 6;
const NOT_FOUND = 5;

export class AlertStateStore {
  constructor(
    private readonly db: Firestore,
    private readonly paths: ControlPaths,
  ) {}

  private ref(key: string) {
    return this.db.collection(alertStatePath(this.paths)).doc(createHash('sha256').update(key).digest('hex'));
  }

  /** Every open alert (few: one per failing check). */
  async open(): Promise<OpenAlert[]> {
    return (await this.db.collection(alertStatePath(this.paths)).get()).docs.map((doc) => doc.data() as OpenAlert);
  }

  /** Opens the alert; false when another health run opened it first (then it is not announced twice). */
  async create(alert: HealthAlert, snapshotId: string, at: Timestamp): Promise<boolean> {
    const entry: OpenAlert = { alert, openedAt: at, openedBySnapshot: snapshotId, lastSeenAt: at, lastSnapshotId: snapshotId };
    try {
      await this.ref(alert.key).create(entry);
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === ALREADY_EXISTS) return false;
      throw error;
    }
  }

  async seen(alert: HealthAlert, snapshotId: string, at: Timestamp): Promise<void> {
    await this.ref(alert.key).set({ alert, lastSeenAt: at, lastSnapshotId: snapshotId }, { merge: true });
  }

  /** Closes the alert; false when another health run closed it first. */
  async remove(key: string): Promise<boolean> {
    try {
      await this.ref(key).delete({ exists: true });
      return true;
    } catch (error) {
      if ((error as { code?: unknown }).code === NOT_FOUND) return false;
      throw error;
    }
  }
}
