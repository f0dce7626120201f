/**
 * Infrastructure: Firestore answers (a real read, timed), the control collection takes writes (a
 * real create + delete), the composite indexes the app's queries need are deployed and READY,
 * and the task-queue backlog.
 */
import { randomBytes } from 'node:crypto';
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { AlertThresholds } from '../../config';
import type { ControlPaths } from '../../control/paths';
import { evaluateAbove } from '../evaluate';
import { indexKey, type DeployedIndex, type IndexDefinition, type IndexStatusSource } from '../index-status';
import { healthProbesPath } from '../monitor-paths';
import type { CheckResult } from '../types';

export interface InfrastructureDeps {
  db: Firestore;
  paths: ControlPaths;
  thresholds: AlertThresholds;
  /** Null on the emulator (no Admin API there). */
  indexes: IndexStatusSource | null;
  /** The indexes `firestore.indexes.json` declares, or why they could not be read. */
  declaredIndexes: IndexDefinition[] | Error;
  now?: () => number;
}

export function firestoreReachableCheck(latencyMs: number | null, error: Error | null, thresholds: AlertThresholds): CheckResult {
  if (error || latencyMs === null) {
    return {
      name: 'firestoreReachable', dimension: 'infrastructure', status: 'critical', value: null, threshold: null, unit: 'ms',
      message: `Firestore did not answer a read: ${error?.message ?? 'no answer'}`,
      recommendedAction: 'Check the Firestore status page, the project id and the service account\'s roles; pause the migration until reads work.',
    };
  }
  const { status, threshold } = evaluateAbove(latencyMs, thresholds.responseTime);
  return {
    name: 'firestoreReachable', dimension: 'infrastructure', status, value: latencyMs, threshold, unit: 'ms',
    message: `a read of the control collection took ${latencyMs.toFixed(0)} ms`,
    recommendedAction: status === 'ok' ? null : 'Firestore is slow to answer: lower MIGRATION_CONCURRENT_BATCHES or pause the run until latency recovers.',
  };
}

export function controlWritableCheck(latencyMs: number | null, error: Error | null): CheckResult {
  if (error || latencyMs === null) {
    return {
      name: 'controlWritable', dimension: 'infrastructure', status: 'critical', value: null, threshold: null, unit: 'ms',
      message: `the control collection refused a write: ${error?.message ?? 'no answer'}`,
      recommendedAction: 'Checkpoints cannot be written: stop the run, then check the service account\'s datastore.user role and the control collection name (MIGRATION_CONTROL_COLLECTION).',
    };
  }
  return {
    name: 'controlWritable', dimension: 'infrastructure', status: 'ok', value: latencyMs, threshold: null, unit: 'ms',
    message: `a probe document was created and deleted in the control collection in ${latencyMs.toFixed(0)} ms`,
    recommendedAction: null,
  };
}

/** Compares the declared indexes with the deployed ones. */
export function indexesCheck(declared: readonly IndexDefinition[], deployed: readonly DeployedIndex[]): CheckResult {
  const byKey = new Map(deployed.map((index) => [indexKey(index), index]));
  const missing: string[] = [];
  const building: string[] = [];
  const broken: string[] = [];
  for (const index of declared) {
    const key = indexKey(index);
    const found = byKey.get(key);
    if (!found) missing.push(key);
    else if (found.state === 'CREATING') building.push(key);
    else if (found.state !== 'READY') broken.push(`${key} (${found.state})`);
  }
  const notReady = missing.length + building.length + broken.length;
  const status = missing.length + broken.length > 0 ? 'error' : building.length > 0 ? 'warning' : 'ok';
  const parts = [
    `${declared.length - notReady} of ${declared.length} declared composite indexes READY`,
    ...(missing.length > 0 ? [`missing: ${missing.join('; ')}`] : []),
    ...(building.length > 0 ? [`building: ${building.join('; ')}`] : []),
    ...(broken.length > 0 ? [`not ready: ${broken.join('; ')}`] : []),
  ];
  return {
    name: 'indexes', dimension: 'infrastructure', status, value: notReady, threshold: 0, unit: 'count',
    message: parts.join('; '),
    recommendedAction:
      status === 'ok'
        ? null
        : missing.length + broken.length > 0
          ? 'Deploy the indexes (firebase deploy --only firestore:indexes, merged into the app\'s own file) before migrating: queries needing them fail.'
          : 'Wait for the indexes to finish building before starting the run.',
  };
}

function notCheckable(name: string, unit: string, message: string): CheckResult {
  return { name, dimension: 'infrastructure', status: 'not-checkable', value: null, threshold: null, unit, message, recommendedAction: null };
}

// The Cloud Tasks v2 API returns no queue depth (only the v2beta3 QueueStats does), and the
// in-process queue lives in one CLI process: neither offers a backlog the monitor could read.
const BACKLOG_NOT_CHECKABLE =
  'not checkable: the Cloud Tasks v2 API reports no queue depth (QueueStats exists only in v2beta3), and the local runner\'s queue lives inside its own process';

export async function infrastructureChecks(deps: InfrastructureDeps): Promise<CheckResult[]> {
  const now = deps.now ?? (() => performance.now());
  const results: CheckResult[] = [];

  let started = now();
  try {
    await deps.db.collection(deps.paths.root).limit(1).get();
    results.push(firestoreReachableCheck(now() - started, null, deps.thresholds));
  } catch (error) {
    results.push(firestoreReachableCheck(null, error as Error, deps.thresholds));
  }

  started = now();
  try {
    const probe = deps.db.collection(healthProbesPath(deps.paths)).doc(randomBytes(8).toString('hex'));
    await probe.create({ createdAt: Timestamp.now() });
    await probe.delete({ exists: true });
    results.push(controlWritableCheck(now() - started, null));
  } catch (error) {
    results.push(controlWritableCheck(null, error as Error));
  }

  if (deps.declaredIndexes instanceof Error) {
    results.push({ ...notCheckable('indexes', 'count', `not checkable: ${deps.declaredIndexes.message}`), status: 'warning', recommendedAction: 'Ship firestore.indexes.json with the functions (or fix it) so the monitor can verify the indexes.' });
  } else if (!deps.indexes) {
    results.push(notCheckable('indexes', 'count', `not checkable on the emulator: it has no Admin API and serves every query without composite indexes (${deps.declaredIndexes.length} declared)`));
  } else {
    try {
      results.push(indexesCheck(deps.declaredIndexes, await deps.indexes.listIndexes()));
    } catch (error) {
      results.push({
        ...notCheckable('indexes', 'count', `the Admin API did not list the indexes: ${(error as Error).message}`),
        status: 'warning',
        recommendedAction: 'Give the monitor\'s service account datastore.indexes.list (roles/datastore.indexViewer).',
      });
    }
  }

  results.push(notCheckable('taskQueueBacklog', 'count', BACKLOG_NOT_CHECKABLE));
  return results;
}
