import type { ErrorRequestHandler } from 'express';
import type { z } from 'zod';
import { RunNotFoundError, RunTransitionError } from '../control/runs';
import type { Logger } from '../cli/log';

/**
 * Every error response has one shape: `{ error: <code>, message: <text>, ...facts }`, where the
 * facts are what a client acts on (the zod issues, the run's current status).
 */
export type ApiErrorCode =
  | 'invalid-request'
  | 'unauthenticated'
  | 'forbidden'
  | 'not-found'
  | 'conflict'
  | 'unavailable'
  | 'internal';

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    readonly status: number,
    readonly code: ApiErrorCode,
    message: string,
    readonly facts: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A zod issue as the API reports it: where, which check, what is wrong (never the value). */
export interface ReportedIssue {
  path: Array<string | number>;
  code: string;
  message: string;
}

export function invalidRequest(what: string, issues: readonly z.core.$ZodIssue[]): ApiError {
  const reported: ReportedIssue[] = issues.map((issue) => ({
    path: issue.path.map((segment) => (typeof segment === 'symbol' ? String(segment) : segment)),
    code: issue.code,
    message: issue.message,
  }));
  return new ApiError(400, 'invalid-request', `${what} is invalid`, { issues: reported });
}

/** Maps errors to responses; anything unexpected is logged and answered 500 without its text. */
export function errorHandler(log: Logger): ErrorRequestHandler {
  return (error: unknown, request, response, next) => {
    if (response.headersSent) return next(error);
    let apiError: ApiError;
    if (error instanceof ApiError) {
      apiError = error;
    } else if (error instanceof RunNotFoundError) {
      apiError = new ApiError(404, 'not-found', `Run ${error.runId} was not found.`, { runId: error.runId });
    } else if (error instanceof RunTransitionError) {
      apiError = new ApiError(409, 'conflict', error.message, { runId: error.runId, currentStatus: error.from, requestedStatus: error.to });
    } else if (isBodyParserError(error)) {
      // express.json(): malformed JSON (400) or a body over the limit (413).
      apiError =
        error.status === 413
          ? new ApiError(413, 'invalid-request', `the request body is larger than ${BODY_LIMIT}`)
          : new ApiError(400, 'invalid-request', `the request body is not valid JSON (${error.type})`, { issues: [] });
    } else {
      log.error(`${request.method} ${request.path} failed`, { error });
      apiError = new ApiError(500, 'internal', 'internal error (logged by the server)');
    }
    response.set(apiError.headers).status(apiError.status).json({ error: apiError.code, message: apiError.message, ...apiError.facts });
  };
}

export const BODY_LIMIT = '16kb';

function isBodyParserError(error: unknown): error is { status: number; type: string } {
  const candidate = error as { status?: unknown; type?: unknown };
  return typeof candidate?.type === 'string' && (candidate.status === 400 || candidate.status === 413) && candidate.type.startsWith('entity.');
}
