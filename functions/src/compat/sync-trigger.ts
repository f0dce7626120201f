/**
 * The dual-read sync trigger (DESIGN.md "Zero downtime"): while the mode is `dual-read`, a document
 * that a legacy client creates or rewrites in the old shape is brought to the new shape at once,
 * through the engine's own applier (engine/batch-core.ts `migrateBatch` with one key): the update
 * is conditional on the update time it was read at, its before-image is stored in the same commit
 * (so a rollback undoes it like any migrated document), and the batch marker is created once.
 *
 * Where its writes belong: one "sync run" per migration and dual-read period — a run document of
 * kind `migrate` (so the rollback engine, which covers every executed migrate run of a migration,
 * restores its before-images too) whose id derives from the mode document's `changedAt`. Each event
 * is one batch of that run: partition `sync-<hash of the event id>`, seq 0. A redelivered event
 * finds its batch marker and writes nothing.
 *
 * Legacy edits of migrated documents (compat/legacy-edit.ts): a write that changed legacy fields
 * of a document already at the target version, and none of its new-shape fields, has them derived
 * again from the edited legacy values by the migration's own `up`, through the same batch core
 * (re-derive mode). The sync run keeps each document's earliest before-image, so its rollback
 * gives back the document as it was before the run however often the trigger wrote it.
 *
 * No loop: the trigger's own write puts the document at the target version and changes no legacy
 * field, and an event whose document is at the target version with its legacy fields unchanged
 * writes nothing at all (checked on the event's data, before any read). Neither do deletes,
 * events in another mode or collection, nor events while a rollback of the migration runs or
 * after it has been rolled back.
 */
import { createHash } from 'node:crypto';
import { Timestamp, type Firestore } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../config';
import type { ControlPaths } from '../control/paths';
import { RegistryStore } from '../control/registry-store';
import { newRunDocument, type RunDocument } from '../control/runs';
import type { MigrationRegistry } from '../definitions/registry';
import type { DocData, Migration } from '../definitions/types';
import { migrateBatch, type BatchResult } from '../engine/batch-core';
import type { RunLog } from '../engine/runner';
import type { WireClient } from '../engine/wire/client';
import type { RawFields } from '../engine/wire/types';
import { grpcCode, Status } from '../engine/wire/status';
import { changesLegacyFields, eventFields, legacyEditOf, type EventSnapshot } from './legacy-edit';
import { getMode, ModeError, type ModeState } from './modes';

export interface SyncContext {
  db: Firestore;
  wire: WireClient;
  config: FiremigrateConfig;
  paths: ControlPaths;
  registry: Pick<MigrationRegistry, 'all'>;
  log: RunLog;
}

/** What the handler needs of a Firestore `onDocumentWritten` event. */
export interface SyncWriteEvent {
  /** The event id: a redelivery carries the same one. */
  id: string;
  /** The document's path, e.g. `trades/abc`. */
  document: string;
  /** The document before the write; missing or not existing when the write created it. */
  before?: EventSnapshot;
  /** The document after the write; missing or not existing for a delete. */
  after?: EventSnapshot;
}

export type SyncOutcome =
  | { action: 'ignored'; why: 'deleted' | 'not-dual-read' | 'collection-not-listed' | 'no-migration' | 'mode-unreadable' | 'rolled-back' | 'rollback-running' }
  | { action: 'already-at-target'; migrationId: string }
  /** A legacy edit of a migrated document whose new-shape fields are left as they are. */
  | { action: 'not-rederived'; migrationId: string; why: 'new-shape-also-written' | 'new-shape-in-step' }
  /** `upgrade`: a document in the old shape, or the new-shape fields of a migrated one derived again after a legacy edit. */
  | { action: 'applied'; migrationId: string; runId: string; upgrade: 'legacy-shape' | 'legacy-edit'; batch: BatchResult };

/** The user and identity the sync run and its records are written under. */
export const SYNC_USER = 'firemigrate/sync-trigger';

/** The sync run of a migration for the dual-read period that started at `changedAt`. */
export function syncRunId(mode: Pick<ModeState, 'changedAt'>): string {
  return `sync-${mode.changedAt ? mode.changedAt.toMillis() : 0}`;
}

/** Each event is one batch of the sync run: a redelivery maps to the same marker. */
export function syncPartition(eventId: string): string {
  return `sync-${createHash('sha256').update(eventId).digest('hex').slice(0, 32)}`;
}

/**
 * Whether `migration` covers the document at `path`. Targets with `where` filters are not synced:
 * whether a document belongs to them depends on values a trigger would have to re-query.
 */
export function targetsDocument(migration: Migration, path: string): boolean {
  const target = migration.target;
  if (target.where?.length) return false;
  const parent = path.slice(0, path.lastIndexOf('/'));
  if ('collection' in target) return target.collection === parent;
  return parent.slice(parent.lastIndexOf('/') + 1) === target.collectionGroup;
}

/** Sync runs already known to exist in this instance: one create attempt per run and instance. */
const knownRuns = new Set<string>();

async function ensureSyncRun(ctx: SyncContext, migration: Migration, runId: string): Promise<void> {
  const path = ctx.paths.run(migration.id, runId);
  if (knownRuns.has(path)) return;
  const now = Timestamp.now();
  const run: RunDocument = {
    ...newRunDocument(
      {
        runId,
        migrationId: migration.id,
        kind: 'migrate',
        mode: 'execute',
        user: SYNC_USER,
        identity: SYNC_USER,
        reason: 'dual-read sync: documents legacy clients write are upgraded as they are written',
        checksum: migration.checksum,
        config: ctx.config,
        lease: null,
      },
      now,
    ),
    // It has no partitions and no end: its batches arrive while the mode is dual-read. "completed"
    // keeps it out of the views of runs in progress and lets a rollback mark it rolled back.
    status: 'completed',
    startedAt: now,
    statusReason: 'dual-read sync run: holds the before-images of the documents the sync trigger upgrades',
  };
  try {
    await ctx.db.doc(path).create({ ...run, sync: true });
  } catch (error) {
    if (grpcCode(error) !== Status.ALREADY_EXISTS) throw error;
  }
  knownRuns.add(path);
}

/**
 * Whether the migration has been rolled back, or a rollback of it holds its lease: then the
 * trigger stays out of the way, whatever the mode says (the mode policy also turns it off).
 */
async function rollbackState(ctx: SyncContext, migration: Migration): Promise<'rolled-back' | 'rollback-running' | null> {
  const entry = await new RegistryStore(ctx.db, ctx.paths).get(migration.id);
  if (entry?.status === 'rolled_back') return 'rolled-back';
  if (!entry?.activeRunId || !entry.lease || entry.lease.expiresAt.toMillis() <= Date.now()) return null;
  const active = await ctx.db.doc(ctx.paths.run(migration.id, entry.activeRunId)).get();
  return active.get('kind') === 'rollback' ? 'rollback-running' : null;
}

/** Handles one write event; see the module comment. */
export async function handleSyncWrite(ctx: SyncContext, event: SyncWriteEvent): Promise<SyncOutcome> {
  const after = event.after?.exists ? event.after.data() : undefined;
  if (!after) return { action: 'ignored', why: 'deleted' };
  const afterFields = eventFields(event.after, ctx.wire.databaseName)!;
  const beforeFields = eventFields(event.before, ctx.wire.databaseName);
  // Most events during a run are the migration's own writes: decided from the event alone, with
  // no read of the mode document, they cost one invocation and nothing more.
  const targeting = ctx.registry.all().filter((candidate) => targetsDocument(candidate, event.document));
  if (
    targeting.length > 0 &&
    targeting.every((candidate) => after[candidate.marker.field] === candidate.marker.to && !changesLegacyFields(candidate, beforeFields, afterFields))
  ) {
    return { action: 'already-at-target', migrationId: targeting[targeting.length - 1].id };
  }
  let mode: ModeState;
  try {
    mode = await getMode(ctx.db);
  } catch (error) {
    if (!(error instanceof ModeError)) throw error;
    // Retrying cannot repair the mode document; the operator's `firemigrate mode` does.
    ctx.log.error(`sync trigger: ${error.message}; ${event.document} left as written`, { document: event.document });
    return { action: 'ignored', why: 'mode-unreadable' };
  }
  if (mode.mode !== 'dual-read') return { action: 'ignored', why: 'not-dual-read' };
  const parent = event.document.slice(0, event.document.lastIndexOf('/'));
  if (!mode.collections.includes(parent.slice(parent.lastIndexOf('/') + 1))) return { action: 'ignored', why: 'collection-not-listed' };
  // The newest listed migration of the collection: the shape the app now expects.
  const migration = ctx.registry
    .all()
    .filter((candidate) => mode.migrations.includes(candidate.id) && targetsDocument(candidate, event.document))
    .pop();
  if (!migration) return { action: 'ignored', why: 'no-migration' };
  let rederive: ((document: { fields: RawFields }) => string[]) | undefined;
  if (after[migration.marker.field] === migration.marker.to) {
    const edit = legacyEditOf(migration, beforeFields, afterFields, { db: ctx.db, databaseName: ctx.wire.databaseName, path: event.document });
    if (edit.kind === 'none') return { action: 'already-at-target', migrationId: migration.id };
    if (edit.kind !== 'rederive') return { action: 'not-rederived', migrationId: migration.id, why: edit.kind };
    // Decided again on the document the batch core reads: derived from the newest legacy values,
    // each field unless it has been written since (that write wins; see legacyEditOf).
    rederive = (document) => edit.stillAsWritten(document.fields);
  }

  // The rollback's restores raise events too: upgrading them would undo the rollback.
  const rollback = await rollbackState(ctx, migration);
  if (rollback) return { action: 'ignored', why: rollback };

  const runId = syncRunId(mode);
  await ensureSyncRun(ctx, migration, runId);
  const upgrade = rederive ? 'legacy-edit' : 'legacy-shape';
  const batch = await migrateBatch(
    { db: ctx.db, wire: ctx.wire, migration, config: ctx.config, paths: ctx.paths, runId },
    { partition: syncPartition(event.id), seq: 0, keys: [event.document], rederive, keepEarliestBeforeImages: true },
  );
  const what = rederive ? `new-shape fields derived again from a legacy edit (${migration.marker.to})` : `upgraded to ${migration.marker.to}`;
  ctx.log.info(`sync trigger: ${event.document} ${batch.migrated ? what : `not ${what}`} (batch ${batch.status})`, {
    document: event.document,
    migrationId: migration.id,
    runId,
    upgrade,
    migrated: batch.migrated,
    alreadyMigrated: batch.alreadyMigrated,
    skipped: batch.skipped,
    failed: batch.failed,
  });
  return { action: 'applied', migrationId: migration.id, runId, upgrade, batch };
}
