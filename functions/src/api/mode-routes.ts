import type { Firestore } from '@google-cloud/firestore';
import express, { Router } from 'express';
import { z } from 'zod';
import { targetCollectionId } from '../compat/mode-policy';
import { getMode, MIGRATION_MODES, ModeError, setMode, type ModeState } from '../compat/modes';
import type { ControlPaths } from '../control/paths';
import type { MigrationRegistry } from '../definitions/registry';
import { callerOf, requireRole, type IdTokenVerifier } from './auth';
import { ApiError, BODY_LIMIT } from './errors';
import { actorOf } from './run-requests';
import { parseBody } from './schemas';

export interface ModeRoutesDeps {
  db: Firestore;
  paths: ControlPaths;
  registry: MigrationRegistry;
  verifier: IdTokenVerifier;
}

const setModeBody = z.strictObject({
  mode: z.enum(MIGRATION_MODES),
  collections: z.array(z.string()).optional(),
  /** The migration the mode is for; in dual-read the sync trigger applies it. */
  migrationId: z.string().optional(),
  reason: z.string().max(1000).optional(),
  user: z.string().min(1).max(200).optional(),
});

/** The mode as JSON: timestamps as ISO strings. */
export function modeView(state: ModeState) {
  return { ...state, changedAt: state.changedAt ? state.changedAt.toDate().toISOString() : null };
}

/** `GET /mode` (viewer) and `PUT /mode` (admin): the migration mode (compat/modes.ts), as `firemigrate mode`. */
export function modeRoutes(deps: ModeRoutesDeps): Router {
  const router = Router();
  const viewer = requireRole(deps.verifier, 'viewer');
  const admin = requireRole(deps.verifier, 'admin');
  const json = express.json({ limit: BODY_LIMIT });

  router.get('/mode', viewer, async (_request, response) => {
    response.json(modeView(await readMode(deps.db)));
  });

  router.put('/mode', admin, json, async (request, response) => {
    const body = parseBody(setModeBody, request.body);
    let collections = body.collections;
    if (body.migrationId) {
      if (!deps.registry.has(body.migrationId)) throw new ApiError(400, 'invalid-request', `unknown migration "${body.migrationId}"`, { migrationId: body.migrationId });
      if (!collections && body.mode !== 'normal') collections = [targetCollectionId(deps.registry.get(body.migrationId).target)];
    }
    const actor = actorOf(callerOf(response), body.user);
    try {
      const result = await setMode(
        deps.db,
        {
          mode: body.mode,
          collections,
          migrations: body.mode === 'dual-read' && body.migrationId ? [body.migrationId] : undefined,
          migrationId: body.migrationId,
          user: actor.user,
          identity: actor.identity,
          reason: body.reason,
        },
        deps.paths,
      );
      response.json({ previous: result.previous && modeView(result.previous), current: modeView(result.current), auditEventId: result.auditEventId });
    } catch (error) {
      if (error instanceof ModeError) throw new ApiError(400, 'invalid-request', error.message);
      throw error;
    }
  });

  return router;
}

/** The mode; a malformed mode document is reported as a 409 naming what is off. */
export async function readMode(db: Firestore): Promise<ModeState> {
  try {
    return await getMode(db);
  } catch (error) {
    if (error instanceof ModeError) throw new ApiError(409, 'conflict', error.message);
    throw error;
  }
}
