import { AggregateField, FieldPath, Timestamp } from '@google-cloud/firestore';
import { describeModeOutcome, modeAfterRollback, modeForRollback, type RunModeCause } from '../compat/mode-policy';
import { AuditLog, type AuditEvent, type RollbackAuditAction } from '../control/audit';
import { LeaseStore } from '../control/lease';
import { RegistryStore } from '../control/registry-store';
import { RESUMABLE_STATUSES, RunStore, canTransition, newRunDocument, newRunId, type RunDocument, type RunStatus } from '../control/runs';
import { checkBackups } from './backup-check';
import { listSourceRuns, type SourceRun } from './source-runs';
import { chooseStrategy } from './strategy';
import { validateRollback } from './validation';
import type {
  RollbackCaller,
  RollbackConflict,
  RollbackContext,
  RollbackOutcome,
  RollbackOutcomeStatus,
  RollbackRequest,
  RollbackRunFields,
  RollbackStrategy,
  RollbackTotals,
  RollbackValidation,
} from './types';

/** A rollback run document: a run document of kind `rollback` with its `rollback` fields. */
export type RollbackRunDocument = RunDocument & { rollback: RollbackRunFields };

export class RollbackRefusedError extends Error {
  override readonly name = 'RollbackRefusedError';
}

/** What a started or resumed rollback run works through. */
export interface PreparedRollback {
  runId: string;
  migrationId: string;
  strategy: RollbackStrategy;
  force: boolean;
  /** Newest first: the order of execution. */
  sourceRuns: SourceRun[];
  caller: RollbackCaller;
  leaseExpiresAt: Timestamp;
  resumes: number;
  /** ROLLBACK_BATCH_SIZE as the run started: a resume keeps it, so re-read batches cover the same backups as their markers. */
  batchSize: number;
}

/** The conflicts listed in the run's outcome and run document; the rest are counted. */
export const CONFLICT_LIST_LIMIT = 100;

/**
 * The confirmation gate (ROLLBACK_CONFIRMED, `confirm: true`) is the entry points' job: they
 * know who asked and how. Here every rollback needs a reason and a user, whoever calls.
 */
export function assertCaller(caller: { reason?: string | null; user?: string | null }): asserts caller is RollbackCaller {
  if (!caller.reason?.trim()) throw new RollbackRefusedError('A rollback needs a reason (--reason / "reason"): it is recorded in the run and the audit trail.');
  if (!caller.user?.trim()) throw new RollbackRefusedError('A rollback needs a user (--user / "user"): it is recorded in the run and the audit trail.');
}

function audit(action: RollbackAuditAction, migrationId: string, runId: string, caller: RollbackCaller, details: Record<string, unknown>): AuditEvent {
  return { action, migrationId, runId, user: caller.user, identity: caller.identity, reason: caller.reason, details };
}

/**
 * Creates the rollback run (kind `rollback`, status `running`) holding the migration's lease,
 * in one transaction with its audit event: refused while another run holds the migration, when
 * nothing was run, or when the strategy cannot run (no before-images and no `down`).
 */
export async function prepareRollbackRun(ctx: RollbackContext, request: RollbackRequest): Promise<PreparedRollback> {
  assertCaller(request);
  const migration = ctx.registry.get(request.migrationId);
  const sourceRuns = await listSourceRuns(ctx.db, ctx.paths, migration.id, request.runId);
  if (sourceRuns.length === 0) throw new RollbackRefusedError(`Migration "${migration.id}" has no executed run: nothing to roll back.`);
  const strategy = chooseStrategy(migration, sourceRuns, request.strategy);
  if (strategy.impossible) throw new RollbackRefusedError(`Cannot roll back "${migration.id}" with ${strategy.chosen}: ${strategy.impossible}.`);
  if (strategy.chosen === 'restore' && ctx.config.rollback.backupValidation) {
    const check = await checkBackups(ctx, migration.id, sourceRuns.map((run) => run.runId));
    if (check.damaged > 0) {
      throw new RollbackRefusedError(
        `Cannot roll back "${migration.id}": ${check.damaged} of ${check.checked} before-images are damaged or unreadable (first: ${check.firstDamage}); ` +
          'nothing was written. ROLLBACK_BACKUP_VALIDATION=false skips this check (the batches holding damaged backups then fail).',
      );
    }
  }
  const caller: RollbackCaller = { user: request.user, identity: request.identity, reason: request.reason };
  const runId = newRunId();
  const leases = new LeaseStore(ctx.db, ctx.paths, ctx.lease);
  const runs = new RunStore(ctx.db, ctx.paths);
  const auditLog = new AuditLog(ctx.db, ctx.paths);
  const fields: RollbackRunFields = {
    strategy: strategy.chosen,
    force: request.force,
    sourceRuns: sourceRuns.map((run) => run.runId),
    scopeRunId: request.runId ?? null,
    rollbackTotals: null,
    validation: null,
  };
  const lease = await ctx.db.runTransaction(async (tx) => {
    const claim = await leases.claimIn(tx, migration.id, runId, ctx.holder);
    const now = Timestamp.now();
    const run: RollbackRunDocument = {
      ...newRunDocument(
        { runId, migrationId: migration.id, kind: 'rollback', mode: 'execute', user: caller.user, identity: caller.identity, reason: caller.reason, checksum: migration.checksum, config: ctx.config, lease: claim.lease },
        now,
      ),
      status: 'running',
      startedAt: now,
      rollback: fields,
    };
    runs.createIn(tx, run);
    leases.write(tx, claim, migration);
    auditLog.appendIn(tx, audit('rollback.started', migration.id, runId, caller, {
      holder: ctx.holder, strategy: strategy.chosen, strategyReason: strategy.reason, overridden: strategy.overridden, force: request.force, sourceRuns: fields.sourceRuns,
    }));
    return claim.lease;
  });
  await applyModePolicy(ctx, modeForRollback, { migration, runId, user: caller.user, identity: caller.identity });
  ctx.log.info(`rollback ${runId} of "${migration.id}" started (${strategy.chosen}: ${strategy.reason}); runs ${fields.sourceRuns.join(', ')}`, {
    runId, migrationId: migration.id, strategy: strategy.chosen, force: request.force,
  });
  return { runId, migrationId: migration.id, strategy: strategy.chosen, force: request.force, sourceRuns, caller, leaseExpiresAt: lease.expiresAt, resumes: 0, batchSize: ctx.config.rollback.batchSize };
}

/** Takes a paused, stopped or failed rollback run (or a running one whose holder died) back up. */
export async function reclaimRollbackRun(ctx: RollbackContext, migrationId: string, rollbackRunId: string, caller: RollbackCaller): Promise<PreparedRollback> {
  assertCaller(caller);
  const leases = new LeaseStore(ctx.db, ctx.paths, ctx.lease);
  const runs = new RunStore(ctx.db, ctx.paths);
  const auditLog = new AuditLog(ctx.db, ctx.paths);
  const migration = ctx.registry.get(migrationId);
  const { run, lease } = await ctx.db.runTransaction(async (tx) => {
    const claim = await leases.claimIn(tx, migrationId, rollbackRunId, ctx.holder);
    const snapshot = await tx.get(runs.ref(migrationId, rollbackRunId));
    if (!snapshot.exists) throw new RollbackRefusedError(`Rollback run ${rollbackRunId} of "${migrationId}" does not exist (no document at ${ctx.paths.run(migrationId, rollbackRunId)}).`);
    const found = snapshot.data() as RollbackRunDocument;
    if (found.kind !== 'rollback' || !found.rollback) throw new RollbackRefusedError(`Run ${rollbackRunId} is a ${found.kind} run, not a rollback run.`);
    if (!RESUMABLE_STATUSES.includes(found.status)) {
      throw new RollbackRefusedError(`Rollback run ${rollbackRunId} is "${found.status}"; only ${RESUMABLE_STATUSES.map((s) => `"${s}"`).join(', ')} rollback runs can be resumed.`);
    }
    leases.write(tx, claim, migration);
    tx.update(runs.ref(migrationId, rollbackRunId), { status: 'running', lease: claim.lease, resumes: found.resumes + 1, statusReason: null, finishedAt: null, updatedAt: Timestamp.now() });
    auditLog.appendIn(tx, audit('rollback.resumed', migrationId, rollbackRunId, caller, { holder: ctx.holder, previousStatus: found.status, previousStatusReason: found.statusReason }));
    return { run: found, lease: claim.lease };
  });
  const sourceRuns = await listSourceRuns(ctx.db, ctx.paths, migrationId, run.rollback.scopeRunId ?? undefined);
  const order = new Map(run.rollback.sourceRuns.map((id, i) => [id, i]));
  return {
    runId: rollbackRunId,
    migrationId,
    strategy: run.rollback.strategy,
    force: run.rollback.force,
    // The runs recorded at the start, in the recorded order (a run started since is not in scope).
    sourceRuns: sourceRuns.filter((source) => order.has(source.runId)).sort((a, b) => order.get(a.runId)! - order.get(b.runId)!),
    caller,
    leaseExpiresAt: lease.expiresAt,
    resumes: run.resumes + 1,
    batchSize: run.config.rollback.batchSize,
  };
}

/**
 * Where one source run's restore continues: after the last backup id of the unbroken run of its
 * batch markers from seq 0. Batches in flight commit out of order, so a marker after a gap proves
 * nothing about the gap; the batch in the gap is done again, and the ones after it — same batch
 * size, same backup ids — find their markers and count as duplicates, not redone.
 */
export async function sourceRunCheckpoint(ctx: RollbackContext, migrationId: string, rollbackRunId: string, sourceRunId: string): Promise<{ nextSeq: number; afterBackupId: string | null }> {
  const markers = ctx.db.collection(ctx.paths.batches(migrationId, rollbackRunId));
  // Marker ids are `{sourceRunId}-{seq:08}`: the markers of one source run share the prefix, in seq order.
  const snapshot = await markers
    .where(FieldPath.documentId(), '>=', markers.doc(`${sourceRunId}-`))
    .where(FieldPath.documentId(), '<', markers.doc(`${sourceRunId}.`))
    .orderBy(FieldPath.documentId())
    .select('seq', 'lastBackupId', 'lastKey')
    .get();
  let checkpoint: { nextSeq: number; afterBackupId: string | null } = { nextSeq: 0, afterBackupId: null };
  for (const doc of snapshot.docs) {
    if (Number(doc.get('seq')) !== checkpoint.nextSeq) break;
    checkpoint = { nextSeq: checkpoint.nextSeq + 1, afterBackupId: cursorOf(doc.data()) };
  }
  return checkpoint;
}

/** A restore marker's cursor is a backup id; a revert marker's, a document path. */
function cursorOf(marker: FirebaseFirestore.DocumentData): string {
  return String(marker.lastBackupId ?? marker.lastKey);
}

/** Sums of the rollback run's batch markers (exact: each committed with its restores). */
export async function sumRollbackMarkers(ctx: Pick<RollbackContext, 'db' | 'paths'>, migrationId: string, rollbackRunId: string): Promise<RollbackTotals> {
  const markers = ctx.db.collection(ctx.paths.batches(migrationId, rollbackRunId));
  // At most 5 aggregations per query.
  const [a, b] = await Promise.all([
    markers.aggregate({ batches: AggregateField.count(), restored: AggregateField.sum('restored'), alreadyRestored: AggregateField.sum('alreadyRestored'), conflicts: AggregateField.sum('conflicts'), forced: AggregateField.sum('forced') }).get(),
    markers.aggregate({ missingDocuments: AggregateField.sum('missingDocuments'), missingBackups: AggregateField.sum('missingBackups'), failed: AggregateField.sum('failed') }).get(),
  ]);
  return { ...a.data(), ...b.data() };
}

/** The conflicts recorded in the markers, at most `limit` listed. */
export async function listRollbackConflicts(ctx: RollbackContext, migrationId: string, rollbackRunId: string, limit = CONFLICT_LIST_LIMIT): Promise<RollbackConflict[]> {
  const snapshot = await ctx.db.collection(ctx.paths.batches(migrationId, rollbackRunId)).where('conflicts', '>', 0).get();
  const conflicts: RollbackConflict[] = [];
  for (const doc of snapshot.docs) {
    const data = doc.data();
    for (const path of (data.conflictPaths ?? []) as string[]) {
      if (conflicts.length >= limit) return conflicts;
      conflicts.push({ path, runId: data.sourceRunId, reason: 'its migrated fields changed after the migration wrote them' });
    }
  }
  return conflicts;
}

export interface RollbackFinish {
  /** How the session ended; `completed` runs the validation first (and becomes `failed` if it fails). */
  status: Exclude<RollbackOutcomeStatus, 'lease-lost' | 'aborted'>;
  reason: string | null;
  caller: RollbackCaller;
  /** Post-rollback validation options (completed only). */
  validation?: { sampleAll?: boolean };
  error?: Error | null;
}

/**
 * Ends the rollback run's turn: sums its markers; when completed, validates (validation.ts) and
 * marks the source runs and the registry entry `rolled_back`; releases the lease with the run's
 * status; appends the audit event. A run another process has set paused/aborted keeps that status.
 */
export async function finishRollbackRun(ctx: RollbackContext, migrationId: string, rollbackRunId: string, finish: RollbackFinish): Promise<RollbackOutcome> {
  const runs = new RunStore(ctx.db, ctx.paths);
  const leases = new LeaseStore(ctx.db, ctx.paths, ctx.lease);
  const registry = new RegistryStore(ctx.db, ctx.paths);
  const auditLog = new AuditLog(ctx.db, ctx.paths);
  const run = (await runs.get(migrationId, rollbackRunId)) as RollbackRunDocument;
  const strategy = run.rollback.strategy;
  const totals = await sumRollbackMarkers(ctx, migrationId, rollbackRunId);
  let status: RollbackOutcomeStatus = finish.status;
  let reason = finish.reason;
  let validation: RollbackValidation | null = null;
  if (status === 'completed') {
    const sources = run.rollback.sourceRuns;
    validation = await validateRollback(ctx, { migrationId, rollbackRunId, sourceRuns: sources, strategy, force: run.rollback.force, sampleAll: finish.validation?.sampleAll });
    if (!validation.ok) {
      status = 'failed';
      reason = `post-rollback validation failed: ${validationProblems(validation)}`;
    } else if (totals.conflicts > 0) {
      reason = `${totals.conflicts} conflicts left alone (their migrated fields changed after the migration); roll back again with force to restore them`;
    }
  }
  const now = Timestamp.now();
  const runStatus: RunStatus = status === 'completed' ? 'completed' : status === 'emergency_stopped' ? 'emergency_stopped' : status === 'failed' ? 'failed' : 'paused';
  if (status === 'completed') {
    for (const sourceRunId of run.rollback.sourceRuns) {
      const source = await runs.get(migrationId, sourceRunId);
      if (canTransition(source.status, 'rolled_back')) {
        await runs.transition(migrationId, sourceRunId, 'rolled_back', { statusReason: `rolled back by run ${rollbackRunId} (${strategy})`, finishedAt: source.finishedAt ?? now });
      }
    }
  }
  const released = await leases.release(migrationId, rollbackRunId, ctx.holder, {
    entry: status === 'completed' ? { status: 'rolled_back' } : status === 'failed' ? registry.failedChanges() : {},
    runStatus,
    runChanges: {
      statusReason: reason,
      ...(status === 'completed' || status === 'failed' ? { finishedAt: now } : {}),
      ...({ 'rollback.rollbackTotals': totals, 'rollback.validation': validation } as object),
    },
  });
  const outcome: RollbackOutcome = { runId: rollbackRunId, migrationId, strategy, status, statusReason: reason, totals, validation, error: finish.error ?? null };
  if (!released) return { ...outcome, status: 'lease-lost', statusReason: 'another process holds the migration now; this process recorded nothing' };
  if (status === 'completed') {
    await applyModePolicy(ctx, modeAfterRollback, { migration: ctx.registry.get(migrationId), runId: rollbackRunId, user: finish.caller.user, identity: finish.caller.identity });
  }
  const action: RollbackAuditAction = status === 'completed' ? 'rollback.completed' : status === 'failed' ? 'rollback.failed' : status === 'emergency_stopped' ? 'rollback.stopped' : 'rollback.paused';
  await auditLog.append(audit(action, migrationId, rollbackRunId, finish.caller, { statusReason: reason, ...totals, validationOk: validation?.ok ?? null }));
  return outcome;
}

/**
 * The migration mode around a rollback (compat/mode-policy.ts). The mode document serves the app
 * and the rules, not the rollback's correctness (the sync trigger stays out while a rollback
 * holds the lease): a failure to change it is logged, never fatal.
 */
async function applyModePolicy(
  ctx: RollbackContext,
  policy: typeof modeForRollback,
  cause: Omit<RunModeCause, 'kind'>,
): Promise<void> {
  try {
    ctx.log.info(`rollback ${cause.runId}: ${describeModeOutcome(await policy(ctx.db, ctx.paths, cause))}`, { runId: cause.runId });
  } catch (error) {
    ctx.log.warning(`rollback ${cause.runId}: the migration mode was not changed: ${(error as Error).message}`, { runId: cause.runId });
  }
}

function validationProblems(validation: RollbackValidation): string {
  const problems: string[] = [];
  if (validation.mismatches.length > 0) problems.push(`${validation.mismatches.length} of ${validation.sampled} sampled documents differ from their before-images (${validation.mismatches.slice(0, 5).join(', ')})`);
  const schemaFailures = validation.fromSchema.checked - validation.fromSchema.passed;
  if (schemaFailures > 0) problems.push(`${schemaFailures} sampled documents do not parse with the source schema`);
  const probes = validation.probes.filter((probe) => !probe.ok);
  if (probes.length > 0) problems.push(`probes failed: ${probes.map((probe) => `${probe.name} (${probe.detail})`).join(', ')}`);
  return problems.join('; ');
}
