/**
 * `POST /api/migration/runs/:id/rollback` (admin only). Without `confirm: true`: 200 with the
 * rollback assessment (nothing is written). With `confirm: true` and a reason: the rollback run is
 * created and dispatched to Cloud Tasks (pipeline/rollback-dispatch.ts) — 202 with its id.
 */
import express, { Router } from 'express';
import { LeaseHeldError } from '../control/lease';
import { RunStore, type RunDocument } from '../control/runs';
import { RollbackDispatchError, dispatchRollback } from '../pipeline/rollback-dispatch';
import { rollbackContextOf, type RollbackPipelineContext } from '../pipeline/rollback-payload';
import { assessRollback } from '../rollback/assessment';
import { RollbackRefusedError } from '../rollback/rollback-run';
import { callerOf, requireRole, type IdTokenVerifier } from './auth';
import { ApiError, BODY_LIMIT } from './errors';
import { actorOf } from './run-requests';
import { parseBody, rollbackBody, RUN_ID } from './schemas';

export interface RollbackRoutesDeps {
  verifier: IdTokenVerifier;
  rollback: RollbackPipelineContext;
  /** Where the router is mounted, for Location headers: `/api/migration`. */
  basePath: string;
}

/** Assessments write nothing and hold no lease: this names them in logs only. */
const ASSESSMENT_HOLDER = 'api/assessment';

export function rollbackRoutes(deps: RollbackRoutesDeps): Router {
  const router = Router();
  const admin = requireRole(deps.verifier, 'admin');
  const json = express.json({ limit: BODY_LIMIT });
  const ctx = deps.rollback;
  const location = (runId: string) => `${deps.basePath}/runs/${runId}`;

  router.post('/runs/:id/rollback', admin, json, async (request, response) => {
    const id = String(request.params.id);
    if (!RUN_ID.test(id)) throw new ApiError(404, 'not-found', `"${id}" is not a run id`, { runId: id });
    const body = parseBody(rollbackBody, request.body);
    const run = await rollbackSource(ctx, id);
    const scope = { migrationId: run.migrationId, ...(body.scope === 'run' ? { runId: run.runId } : {}) };
    if (!body.confirm) {
      const assessment = await assessRollback(rollbackContextOf(ctx, ASSESSMENT_HOLDER), { ...scope, strategy: body.strategy, force: body.force });
      response.status(200).json({ confirmed: false, assessment });
      return;
    }
    const actor = actorOf(callerOf(response), body.user);
    try {
      const dispatched = await dispatchRollback(ctx, { ...scope, strategy: body.strategy, force: body.force, reason: body.reason!, user: actor.user, identity: actor.identity });
      response
        .status(202)
        .location(location(dispatched.runId))
        .json({ confirmed: true, kind: 'rollback', ...dispatched, scope: body.scope, location: location(dispatched.runId) });
    } catch (error) {
      if (error instanceof RollbackRefusedError) throw new ApiError(409, 'conflict', error.message, { runId: id, migrationId: run.migrationId });
      if (error instanceof LeaseHeldError) {
        throw new ApiError(409, 'conflict', error.message, { runId: id, migrationId: run.migrationId, activeRunId: error.activeRunId });
      }
      if (error instanceof RollbackDispatchError) throw new ApiError(503, 'unavailable', error.message, { rollbackRunId: error.runId });
      throw error;
    }
  });

  return router;
}

/** The run to roll back: an executed migrate run of a migration deployed here (404 when there is none, 409 otherwise). */
async function rollbackSource(ctx: RollbackPipelineContext, runId: string): Promise<RunDocument> {
  const run = await new RunStore(ctx.db, ctx.paths).find(runId);
  if (run.kind !== 'migrate' || run.mode !== 'execute') {
    throw new ApiError(409, 'conflict', `run ${runId} is a ${run.kind} ${run.mode} run; only executed migrate runs can be rolled back`, {
      runId,
      currentStatus: run.status,
    });
  }
  if (!ctx.registry.has(run.migrationId)) {
    throw new ApiError(409, 'conflict', `migration "${run.migrationId}" of run ${runId} is not deployed with these functions`, { runId });
  }
  return run;
}
