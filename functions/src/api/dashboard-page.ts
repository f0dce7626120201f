/**
 * The operator dashboard's files (built by Vite from functions/src/dashboard into
 * functions/lib/dashboard) and the Firebase web configuration the page signs in with. The page
 * holds no data of its own: it reads everything through the viewer routes with the signed-in
 * user's ID token, so these files and the configuration are open.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import express, { Router } from 'express';
import { ApiError } from './errors';

/** functions/lib/dashboard, from functions/lib/api (deployed) and from functions/src/api (tests) alike. */
export const DEFAULT_DASHBOARD_DIR = join(__dirname, '..', '..', 'lib', 'dashboard');

/** What the page passes to the Firebase web SDK's initializeApp, and where the Auth emulator is. */
export interface DashboardWebConfig {
  projectId: string;
  apiKey: string;
  authDomain: string;
  /** `http://127.0.0.1:9099` when the functions run beside the Auth emulator; null in production. */
  authEmulatorUrl: string | null;
}

export class DashboardConfigError extends Error {
  override readonly name = 'DashboardConfigError';
}

/**
 * From the environment: the project (GCLOUD_PROJECT / GOOGLE_CLOUD_PROJECT), the web API key
 * (DASHBOARD_FIREBASE_API_KEY; any value for the Auth emulator) and the auth domain
 * (DASHBOARD_FIREBASE_AUTH_DOMAIN, default `<project>.firebaseapp.com`).
 */
export function dashboardWebConfig(env: NodeJS.ProcessEnv = process.env): DashboardWebConfig {
  const projectId = (env.GCLOUD_PROJECT || env.GOOGLE_CLOUD_PROJECT || '').trim();
  if (!projectId) throw new DashboardConfigError('the dashboard needs the project id: GCLOUD_PROJECT (or GOOGLE_CLOUD_PROJECT) is not set');
  const emulatorHost = env.FIREBASE_AUTH_EMULATOR_HOST?.trim() || null;
  const apiKey = env.DASHBOARD_FIREBASE_API_KEY?.trim() || (emulatorHost ? 'emulator-api-key' : '');
  if (!apiKey) {
    throw new DashboardConfigError(
      'DASHBOARD_FIREBASE_API_KEY is not set: the dashboard signs in with Firebase Auth and needs the web API key of the project ' +
        '(Firebase console → Project settings → Web API key)',
    );
  }
  return {
    projectId,
    apiKey,
    authDomain: env.DASHBOARD_FIREBASE_AUTH_DOMAIN?.trim() || `${projectId}.firebaseapp.com`,
    authEmulatorUrl: emulatorHost ? `http://${emulatorHost}` : null,
  };
}

export interface DashboardPageOptions {
  /** The built page; default DEFAULT_DASHBOARD_DIR. */
  dir?: string;
  env?: NodeJS.ProcessEnv;
}

/** `GET /dashboard/` (the page and its hashed assets) and `GET /dashboard/config.json`. */
export function dashboardPage(options: DashboardPageOptions = {}): Router {
  const dir = options.dir ?? DEFAULT_DASHBOARD_DIR;
  const router = Router();
  router.get('/config.json', (_request, response) => {
    let config: DashboardWebConfig;
    try {
      config = dashboardWebConfig(options.env);
    } catch (error) {
      if (error instanceof DashboardConfigError) throw new ApiError(503, 'unavailable', error.message);
      throw error;
    }
    response.set('Cache-Control', 'no-store').json(config);
  });
  router.use((request, response, next) => {
    if (!existsSync(join(dir, 'index.html'))) {
      throw new ApiError(503, 'unavailable', `the dashboard is not built (no ${join(dir, 'index.html')}): run \`npm run build\``);
    }
    // The page resolves the API as ../migration/ from its own URL, so it must be served from `.../dashboard/`.
    if (request.originalUrl.split('?')[0].endsWith('/dashboard')) {
      const query = request.originalUrl.includes('?') ? request.originalUrl.slice(request.originalUrl.indexOf('?')) : '';
      return response.redirect(301, `dashboard/${query}`);
    }
    next();
  });
  router.use(
    express.static(dir, {
      index: 'index.html',
      redirect: false,
      setHeaders: (response, path) => {
        // Vite names assets by content hash: they never change; the page itself must be revalidated.
        response.set('Cache-Control', path.endsWith('index.html') ? 'no-cache' : 'public, max-age=31536000, immutable');
        response.set('Content-Security-Policy', contentSecurityPolicy(options.env));
        response.set('X-Content-Type-Options', 'nosniff');
      },
    }),
  );
  return router;
}

/** Firebase Auth's endpoints in production (the web SDK's sign-in and token refresh). */
const FIREBASE_AUTH_ORIGINS = ['https://identitytoolkit.googleapis.com', 'https://securetoken.googleapis.com'];

/**
 * Everything from the page's own origin: no script, style, font or image from anywhere else, and
 * requests only to the API beside it and to Firebase Auth (the Auth emulator when it runs).
 */
export function contentSecurityPolicy(env: NodeJS.ProcessEnv = process.env): string {
  const emulatorHost = env.FIREBASE_AUTH_EMULATOR_HOST?.trim();
  const auth = emulatorHost ? [`http://${emulatorHost}`] : FIREBASE_AUTH_ORIGINS;
  return [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self' ${auth.join(' ')}`,
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'none'",
  ].join('; ');
}
