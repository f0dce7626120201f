/**
 * The deployed functions' collaborators, built once per instance on first use: index.ts loads
 * only firebase-functions, so deploy analysis and cold starts do not pay for firebase-admin, the
 * Firestore clients and the engine until a request or task arrives.
 */
import { Firestore } from '@google-cloud/firestore';
import { PubSub } from '@google-cloud/pubsub';
import type { Express } from 'express';
import { getApps, initializeApp } from 'firebase-admin/app';
import { getAuth } from 'firebase-admin/auth';
import { getFunctions } from 'firebase-admin/functions';
import { createApiApp } from '../api/app';
import { FirebaseIdTokenVerifier } from '../api/firebase-id-token-verifier';
import { createLogger, type Logger } from '../cli/log';
import { loadConfig } from '../config';
import { leaseSettings } from '../control/lease';
import { ControlPaths } from '../control/paths';
import { createRegistry } from '../definitions/registry';
import { WireClient } from '../engine/wire/client';
import { projectMigrations } from '../migrations';
import type { AlertBus } from '../transports/alert-bus';
import { FirebaseTaskQueue } from '../transports/firebase-task-queue';
import { QUEUES } from '../transports/names';
import { PubSubAlertBus } from '../transports/pubsub-alert-bus';
import type { PlanRunTask } from '../transports/task-payloads';
import type { BatchTask } from './batch-payload';
import type { PipelineContext } from './context';
import type { RollbackPipelineContext, RollbackTask } from './rollback-payload';

export interface Services {
  pipeline: PipelineContext;
  app: Express;
  alerts: AlertBus;
  /** The rollback tasks' context: the pipeline's with the `rollbackBatch` queue. */
  rollback: RollbackPipelineContext;
  verifier: FirebaseIdTokenVerifier;
}

let built: Services | undefined;

export function services(): Services {
  built ??= build();
  return built;
}

function logger(component: string): Logger {
  return createLogger({ format: 'json', write: (line) => process.stdout.write(line), base: { component } });
}

function build(): Services {
  // The default app specifically: a host (the Functions emulator's trigger runtime) may have named apps of its own.
  if (!getApps().some((app) => app.name === '[DEFAULT]')) initializeApp();
  // A bad MIGRATION_* / MONITOR_* value fails here, naming the variable, on the first invocation.
  const config = loadConfig();
  const projectId = process.env.GCLOUD_PROJECT || process.env.GOOGLE_CLOUD_PROJECT;
  const db = new Firestore(projectId ? { projectId } : {});
  const registry = createRegistry(projectMigrations);
  const planQueue = new FirebaseTaskQueue(getFunctions().taskQueue<PlanRunTask>(QUEUES.planRun));
  const pipeline: PipelineContext = {
    db,
    wire: WireClient.forFirestore(db),
    config,
    paths: new ControlPaths(config.migration.controlCollection),
    registry,
    batchQueue: new FirebaseTaskQueue(getFunctions().taskQueue<BatchTask>(QUEUES.migrateBatch)),
    lease: leaseSettings(config),
    log: logger('pipeline'),
  };
  const verifier = new FirebaseIdTokenVerifier(getAuth());
  const rollback: RollbackPipelineContext = { ...pipeline, rollbackQueue: new FirebaseTaskQueue(getFunctions().taskQueue<RollbackTask>(QUEUES.rollbackBatch)) };
  const app = createApiApp({ db, config, registry, verifier, planQueue, rollback, log: logger('api') });
  return { pipeline, app, alerts: new PubSubAlertBus(new PubSub(projectId ? { projectId } : {})), rollback, verifier };
}
