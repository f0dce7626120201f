import express, { Router, type Response } from 'express';
import { runFacts, type RunDocument } from '../control/runs';
import { callerOf, requireRole, type IdTokenVerifier } from './auth';
import { ApiError, BODY_LIMIT } from './errors';
import { actorOf, type RunRequests } from './run-requests';
import { parseBody, resumeRunBody, RUN_ID, runActionBody, startRunBody } from './schemas';
import type { MigrationRegistry } from '../definitions/registry';

export interface RunRoutesDeps {
  registry: MigrationRegistry;
  verifier: IdTokenVerifier;
  requests: RunRequests;
  /** Where the router is mounted, for Location headers: `/api/migration`. */
  basePath: string;
}

/** The admin routes: start a run, pause, resume or abort one. */
export function runRoutes(deps: RunRoutesDeps): Router {
  const router = Router();
  // The body is parsed only once the caller is verified: nobody unauthenticated gets it parsed.
  const admin = requireRole(deps.verifier, 'admin');
  const json = express.json({ limit: BODY_LIMIT });
  const startBody = startRunBody(deps.registry);
  const location = (runId: string) => `${deps.basePath}/runs/${runId}`;

  router.post('/runs', admin, json, async (request, response) => {
    const body = parseBody(startBody, request.body);
    const actor = actorOf(callerOf(response), body.user);
    const { run, taskId, enqueue } = await deps.requests.start({ migrationId: body.migrationId, execute: body.execute, reason: body.reason ?? null, actor, rollbackPolicy: body.rollbackPolicy });
    response.status(202).location(location(run.runId)).json({ ...summary(run), taskId, enqueue, location: location(run.runId) });
  });

  router.post('/runs/:id/pause', admin, json, async (request, response) => {
    const { runId, reason, actor } = actionOf(request.params.id, request.body, response);
    const { run, previousStatus } = await deps.requests.pause(runId, reason, actor);
    response.status(200).json({ ...summary(run), previousStatus });
  });

  router.post('/runs/:id/resume', admin, json, async (request, response) => {
    const { runId, reason, actor } = actionOf(request.params.id, request.body, response, resumeRunBody);
    const acceptDefinitionChange = parseBody(resumeRunBody, request.body).acceptDefinitionChange ?? false;
    const { run, previousStatus, taskId, enqueue } = await deps.requests.resume(runId, reason, actor, { acceptDefinitionChange });
    response.status(202).location(location(run.runId)).json({ ...summary(run), previousStatus, taskId, enqueue, location: location(run.runId) });
  });

  router.post('/runs/:id/abort', admin, json, async (request, response) => {
    const { runId, reason, actor } = actionOf(request.params.id, request.body, response);
    const { run, previousStatus } = await deps.requests.abort(runId, reason, actor);
    response.status(200).json({ ...summary(run), previousStatus });
  });

  return router;
}

function actionOf(id: unknown, body: unknown, response: Response, schema: typeof runActionBody | typeof resumeRunBody = runActionBody) {
  const runId = String(id);
  if (!RUN_ID.test(runId)) throw new ApiError(404, 'not-found', `"${runId}" is not a run id`, { runId });
  const parsed = parseBody(schema, body);
  return { runId, reason: parsed.reason, actor: actorOf(callerOf(response), parsed.user) };
}

function summary(run: RunDocument) {
  return {
    ...runFacts(run),
    resumes: run.resumes,
  };
}
