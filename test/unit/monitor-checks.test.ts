import { Timestamp } from '@google-cloud/firestore';
import { loadConfig } from '../../functions/src/config';
import { readerCheck, syncTriggerCheck } from '../../functions/src/monitor/checks/compatibility';
import { firestoreReachableCheck, indexesCheck } from '../../functions/src/monitor/checks/infrastructure';
import { countsCheck, referenceValues, schemaCheck } from '../../functions/src/monitor/checks/integrity';
import { batchChecks, batchFigures, poolCheck, probeCheck, type MarkerSample } from '../../functions/src/monitor/checks/performance';
import { join } from 'node:path';
import { deployedIndexOf, FirestoreAdminIndexStatus, indexKey, readIndexFile, type AdminIndexClient } from '../../functions/src/monitor/index-status';
import { HEALTH_SCHEDULE, DETECTION_TO_ALERT_TARGET_MS, scheduleIntervalMs, worstDetectionToAlertMs } from '../../functions/src/monitor/schedule';

const thresholds = loadConfig({}).monitor.alertThresholds;
const marker = (committedAtMs: number, fields: Partial<MarkerSample> = {}): MarkerSample => ({
  partition: 'p0000', latencyMs: 100, rssMb: 200, migrated: 40, skipped: 0, alreadyMigrated: 0, failed: 0, committedAt: Timestamp.fromMillis(committedAtMs), ...fields,
});

describe('performance checks', () => {
  it('batch figures: latency percentiles, throughput between the first and last commit, error rate, peak memory', () => {
    const figures = batchFigures([
      marker(3_000, { latencyMs: 300, migrated: 30, failed: 10, rssMb: 250 }),
      marker(1_000, { latencyMs: 100 }),
      marker(2_000, { latencyMs: 200, skipped: 5, migrated: 35 }),
    ]);
    // The first commit opens the window: (40 + 40) documents in 2 s.
    expect(figures).toEqual({ batches: 3, processed: 120, failed: 10, latency: { samples: 3, p50: 200, p95: 300, p99: 300, max: 300 }, docsPerSecond: 40, peakRssMb: 250 });
    const checks = batchChecks(figures, { thresholds, runnerMemoryThresholdMb: 512, windowMs: 300_000 });
    expect(checks.map((check) => [check.name, check.status, check.value, check.threshold])).toEqual([
      ['batchLatency', 'ok', 300, 1000],
      ['throughput', 'ok', 40, null],
      ['errorRate', 'critical', 10 / 120, 0.05],
      ['workerMemory', 'ok', 250, 512],
    ]);
    expect(checks[2].recommendedAction).toContain('failure records');
  });

  it('no batch in the window: not measured, never ok; one batch: no rate', () => {
    expect(batchChecks(batchFigures([]), { thresholds, runnerMemoryThresholdMb: 512, windowMs: 60_000 }).map((check) => check.status)).toEqual(['not-checkable', 'not-checkable', 'not-checkable', 'not-checkable']);
    const one = batchChecks(batchFigures([marker(1)]), { thresholds, runnerMemoryThresholdMb: 512, windowMs: 60_000 });
    expect(one[1]).toMatchObject({ name: 'throughput', status: 'not-checkable', value: null });
  });

  it('probes: P95 against the response-time thresholds; failures against the error-rate ones; all failing is critical', () => {
    const ok = probeCheck({ name: 'q', latencies: { samples: 100, p50: 5, p95: 9, p99: 12, max: 20 }, attempts: 100, failures: 0, firstError: null }, thresholds);
    expect(ok).toMatchObject({ name: 'probe:q', status: 'ok', value: 9, threshold: 1000, recommendedAction: null });
    expect(ok.message).toBe('app query "q": P50 5.0 ms, P95 9.0 ms, P99 12.0 ms over 100 runs');
    const slow = probeCheck({ name: 'q', latencies: { samples: 10, p50: 900, p95: 1500, p99: 1600, max: 1600 }, attempts: 10, failures: 0, firstError: null }, thresholds);
    expect(slow).toMatchObject({ status: 'warning', threshold: 1000 });
    const failing = probeCheck({ name: 'q', latencies: { samples: 9, p50: 5, p95: 9, p99: 9, max: 9 }, attempts: 10, failures: 1, firstError: 'FAILED_PRECONDITION: needs an index' }, thresholds);
    expect(failing).toMatchObject({ status: 'critical', value: 9, threshold: null });
    expect(failing.message).toContain('1 of 10 failed (10.00 %): FAILED_PRECONDITION: needs an index');
    expect(probeCheck({ name: 'q', latencies: null, attempts: 3, failures: 3, firstError: 'boom' }, thresholds)).toMatchObject({ status: 'critical', value: null });
  });

  it('RPC pool: utilisation from the throttle summary; saturated is a warning; no summary is not measured', () => {
    const at = Timestamp.fromMillis(0);
    const summary = { throttled: false, reason: null, poolInUse: 4, poolSize: 10, rssMb: 100, thresholdMb: 512, rampEnabled: false, ramp: [], breaker: { rate: 0, failed: 0, sample: 0, threshold: 0.1 }, at };
    expect(poolCheck(summary)).toMatchObject({ status: 'ok', value: 0.4 });
    expect(poolCheck({ ...summary, poolInUse: 10, throttled: true, reason: 'pool full' })).toMatchObject({ status: 'warning', value: 1 });
    expect(poolCheck(null).status).toBe('not-checkable');
  });
});

describe('infrastructure checks', () => {
  it('reachable: latency against the response-time thresholds; no answer is critical', () => {
    expect(firestoreReachableCheck(12, null, thresholds)).toMatchObject({ status: 'ok', value: 12 });
    expect(firestoreReachableCheck(4000, null, thresholds)).toMatchObject({ status: 'critical', threshold: 3000 });
    expect(firestoreReachableCheck(null, new Error('UNAVAILABLE'), thresholds)).toMatchObject({ status: 'critical', value: null, message: 'Firestore did not answer a read: UNAVAILABLE' });
  });

  it('indexes: each declared index must be deployed and READY (the Admin API appends __name__, enums may be numbers)', () => {
    const declared = [
      { collectionGroup: 'trades', queryScope: 'COLLECTION', fields: [{ fieldPath: 'status', mode: 'ASCENDING' }, { fieldPath: 'createdAt', mode: 'DESCENDING' }] },
      { collectionGroup: 'conversations', queryScope: 'COLLECTION', fields: [{ fieldPath: 'participantIds', mode: 'CONTAINS' }, { fieldPath: 'updatedAt', mode: 'DESCENDING' }] },
    ];
    const ready = deployedIndexOf({
      name: 'projects/p/databases/(default)/collectionGroups/trades/indexes/CICAgJim14AK',
      queryScope: 'COLLECTION',
      state: 'READY',
      fields: [{ fieldPath: 'status', order: 'ASCENDING' }, { fieldPath: 'createdAt', order: 'DESCENDING' }, { fieldPath: '__name__', order: 'DESCENDING' }],
    });
    expect(indexKey(ready)).toBe(indexKey(declared[0]));
    const building = deployedIndexOf({
      name: 'projects/p/databases/(default)/collectionGroups/conversations/indexes/X',
      queryScope: 1,
      state: 1,
      fields: [{ fieldPath: 'participantIds', arrayConfig: 1 }, { fieldPath: 'updatedAt', order: 2 }],
    });
    expect(building).toEqual({ collectionGroup: 'conversations', queryScope: 'COLLECTION', state: 'CREATING', fields: [{ fieldPath: 'participantIds', mode: 'CONTAINS' }, { fieldPath: 'updatedAt', mode: 'DESCENDING' }] });
    expect(indexesCheck(declared, [ready, { ...building, state: 'READY' }])).toMatchObject({ status: 'ok', value: 0 });
    expect(indexesCheck(declared, [ready, building])).toMatchObject({ status: 'warning', value: 1 });
    const missing = indexesCheck(declared, [building]);
    expect(missing).toMatchObject({ status: 'error', value: 2 });
    expect(missing.message).toContain('missing: trades|COLLECTION|status:ASCENDING,createdAt:DESCENDING');
  });
});

describe('index status through the Admin API', () => {
  it('lists every collection group\'s indexes of the database (Admin API client mocked: the emulator has no Admin API)', async () => {
    const requests: Array<{ parent: string }> = [];
    const client: AdminIndexClient = {
      async listIndexes(request) {
        requests.push(request);
        return [[{ name: 'projects/p/databases/(default)/collectionGroups/trades/indexes/A', queryScope: 'COLLECTION', state: 'READY', fields: [{ fieldPath: 'status', order: 'ASCENDING' }] }]];
      },
      close: async () => undefined,
    };
    const listed = await new FirestoreAdminIndexStatus(client, 'p').listIndexes();
    expect(requests).toEqual([{ parent: 'projects/p/databases/(default)/collectionGroups/-' }]);
    expect(listed).toEqual([{ collectionGroup: 'trades', queryScope: 'COLLECTION', state: 'READY', fields: [{ fieldPath: 'status', mode: 'ASCENDING' }] }]);
  });

  it('reads the composite indexes of the repository\'s firestore.indexes.json; a bad file is an error naming it', () => {
    const declared = readIndexFile(join(__dirname, '..', '..', 'firestore.indexes.json'));
    expect(declared.length).toBeGreaterThanOrEqual(6);
    expect(declared.map(indexKey)).toContain('conversations|COLLECTION|participantIds:CONTAINS,updatedAt:DESCENDING');
    expect(() => readIndexFile(join(__dirname, 'no-such.json'))).toThrow(/cannot read the index file .*no-such\.json/);
    expect(() => readIndexFile(__filename)).toThrow(/cannot read the index file/);
  });
});

describe('integrity and compatibility checks', () => {
  it('schema compliance: the share of sampled documents at target that parse, against the integrity thresholds', () => {
    expect(schemaCheck(100, 100, null, thresholds, '2.0')).toMatchObject({ status: 'ok', value: 1 });
    expect(schemaCheck(100, 93, 'trades/x: participants invalid_type', thresholds, '2.0')).toMatchObject({ status: 'warning', value: 0.93, threshold: 0.95 });
    expect(schemaCheck(10, 8, null, thresholds, '2.0')).toMatchObject({ status: 'critical', threshold: 0.9 });
    expect(schemaCheck(0, 0, null, thresholds, '2.0').status).toBe('not-checkable');
  });

  it('reference values: dotted paths, and every element for a [] path', () => {
    const doc = { participants: { creator: 'u1', participant: null }, participantIds: ['u1', 'u2'] };
    expect(referenceValues(doc, { field: 'participants.creator', collection: 'users' })).toEqual(['u1']);
    expect(referenceValues(doc, { field: 'participants.participant', collection: 'users' })).toEqual([null]);
    expect(referenceValues(doc, { field: 'participantIds[]', collection: 'users' })).toEqual(['u1', 'u2']);
    expect(referenceValues({}, { field: 'participantIds[]', collection: 'users' })).toEqual([undefined]);
  });

  it('counts add up: total = at target + failed + skipped + remaining, and at target = before + migrated by the markers', () => {
    const base = { total: 600, atTarget: 588, failed: 12, skipped: 0, migratedByMarkers: 558, atTargetBefore: 30, runCompleted: true };
    const ok = countsCheck(base);
    expect(ok).toMatchObject({ status: 'ok', value: 0 });
    expect(ok.message).toBe('total 600 = at target 588 + failed 12 + skipped 0 + remaining 0; markers: 30 at target before the run + 558 migrated');
    expect(countsCheck({ ...base, atTarget: 590 })).toMatchObject({ status: 'warning', value: -2 });
    expect(countsCheck({ ...base, atTarget: 500, migratedByMarkers: 470, runCompleted: false })).toMatchObject({ status: 'ok', value: 88 });
    expect(countsCheck({ ...base, atTarget: 500, migratedByMarkers: 470 }).message).toContain('88 documents left in the old shape although the run completed');
    expect(countsCheck({ ...base, atTargetBefore: null }).message).toContain('at-target count before the run not recorded');
  });

  it('compatibility reader: readable share; a readable result that does not parse is critical', () => {
    const figures = { sampled: 100, new: 60, legacy: 38, invalid: { 'invalid-source': 2 }, wrong: 0, threw: 0 };
    const ok = readerCheck(figures, thresholds);
    expect(ok).toMatchObject({ status: 'ok', value: 0.98 });
    expect(ok.message).toBe('98 of 100 sampled documents read in the new shape (98.00 %): 60 stored new, 38 upgraded from legacy; 2 unreadable in either shape (invalid-source 2)');
    expect(readerCheck({ ...figures, wrong: 1 }, thresholds).status).toBe('critical');
    expect(readerCheck({ ...figures, new: 40, invalid: { 'invalid-source': 22 } }, thresholds).status).toBe('critical');
  });

  it('sync trigger: measured only in dual-read for this migration; a legacy write older than the grace is lagging', () => {
    const mode = { mode: 'dual-read' as const, collections: ['trades'], migrations: ['mig'], migrationId: 'mig', runId: null, changedAt: Timestamp.fromMillis(Date.UTC(2026, 10, 1)), changedBy: 'ops', reason: null };
    const figures = { mode, migrationId: 'mig', lagging: [], writtenDuringDualRead: 3, synced: 7, graceMs: 60_000 };
    expect(syncTriggerCheck({ ...figures, mode: { ...mode, mode: 'normal', migrations: [] } })).toMatchObject({ status: 'not-checkable', message: 'not measured: no sync trigger activity (mode normal)' });
    expect(syncTriggerCheck({ ...figures, migrationId: 'other' })).toMatchObject({ status: 'not-checkable', message: 'not measured: no sync trigger activity (mode dual-read for mig)' });
    expect(syncTriggerCheck({ ...figures, mode: new Error('the mode document is malformed') })).toMatchObject({ status: 'not-checkable', message: 'not measured: the mode document is malformed' });
    expect(syncTriggerCheck(figures)).toMatchObject({
      status: 'ok', value: 0,
      message: '0 of 3 sampled documents written since dual-read began (2026-11-01T00:00:00.000Z) are still in the legacy shape after 60 s; the trigger has upgraded 7 documents',
    });
    expect(syncTriggerCheck({ ...figures, lagging: ['trades/a'] })).toMatchObject({ status: 'warning', value: 1, threshold: 0 });
  });
});

describe('detection to alert', () => {
  it('the healthCheck schedule runs every 60 s, so a condition is alerted within one interval plus one run — under the seed\'s 2 minutes', () => {
    expect(HEALTH_SCHEDULE).toBe('every 1 minutes');
    const interval = scheduleIntervalMs(HEALTH_SCHEDULE);
    expect(interval).toBe(60_000);
    // A health run over the demo on the emulator takes well under a second; a 30 s run still fits.
    expect(worstDetectionToAlertMs(interval, 30_000)).toBeLessThan(DETECTION_TO_ALERT_TARGET_MS);
    expect(worstDetectionToAlertMs(loadConfig({ MONITOR_HEALTH_INTERVAL: '30000' }).monitor.healthIntervalMs, 1_000)).toBe(31_000);
  });

  it('parses every-N schedules and refuses others', () => {
    expect(scheduleIntervalMs('every 5 minutes')).toBe(300_000);
    expect(scheduleIntervalMs('every 2 hours')).toBe(7_200_000);
    expect(() => scheduleIntervalMs('*/1 * * * *')).toThrow('is not of the form "every N minutes"');
  });
});
