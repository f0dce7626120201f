/**
 * The operator dashboard: signs in with Firebase Auth (the Auth emulator beside the emulator
 * suite), then polls the API's read-only routes and renders runs, progress, health and alerts.
 * Admins (custom claim migrationAdmin) get the actions; the API refuses them to anyone else anyway.
 */
import { initializeApp } from 'firebase/app';
import { browserLocalPersistence, connectAuthEmulator, initializeAuth, onAuthStateChanged, signInWithEmailAndPassword, signOut, type Auth, type User } from 'firebase/auth';
import { ApiCallError, ApiClient } from './api-client';
import { html, setHtml, type Markup } from './render';
import './styles.css';
import type { HealthHistory, MigrationItem, RollbackAssessment, RunDetails, RunListItem, RunView, StatusResponse } from './types';
import { alertsView, healthView, migrationsView, modeView, rollbackView, runActionsView, runsView, runView } from './views';

interface WebConfig {
  projectId: string;
  apiKey: string;
  authDomain: string;
  authEmulatorUrl: string | null;
}

/** How often the page polls (`?poll=<ms>` overrides, at least 500 ms). */
const POLL_MS = Math.max(500, Number(new URLSearchParams(location.search).get('poll')) || 2000);

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;

interface State {
  admin: boolean;
  selectedRunId: string | null;
  /** The run whose rollback assessment is open. */
  rollbackFor: string | null;
}

const state: State = { admin: false, selectedRunId: null, rollbackFor: null };
/** The last markup of each panel: a panel is redrawn only when it changed, so inputs keep their text. */
const drawn = new Map<string, string>();

function draw(id: string, markup: Markup): void {
  if (drawn.get(id) === markup.text) return;
  drawn.set(id, markup.text);
  setHtml($(id), markup);
}

function showError(error: unknown): void {
  $('error').textContent = error ? (error instanceof Error ? error.message : String(error)) : '';
}

function notice(text: string): void {
  $('error').textContent = '';
  const node = document.createElement('p');
  node.className = 'notice';
  node.dataset.testid = 'notice';
  node.textContent = text;
  $('dashboard').prepend(node);
  setTimeout(() => node.remove(), 15_000);
}

async function main(): Promise<void> {
  const response = await fetch(new URL('config.json', location.href), { cache: 'no-store' });
  if (!response.ok) throw new Error(`the dashboard configuration could not be read: HTTP ${response.status} ${await response.text()}`);
  const config = (await response.json()) as WebConfig;
  const app = initializeApp({ apiKey: config.apiKey, authDomain: config.authDomain, projectId: config.projectId });
  // No popup/redirect resolver: email sign-in needs no iframe or script from the auth domain.
  const auth = initializeAuth(app, { persistence: browserLocalPersistence });
  if (config.authEmulatorUrl) connectAuthEmulator(auth, config.authEmulatorUrl, { disableWarnings: true });

  $('sign-in').addEventListener('submit', (event) => {
    event.preventDefault();
    const form = new FormData(event.target as HTMLFormElement);
    $('sign-in-error').textContent = '';
    signInWithEmailAndPassword(auth, String(form.get('email')), String(form.get('password'))).catch((error: Error) => {
      $('sign-in-error').textContent = `Sign-in failed: ${error.message}`;
    });
  });

  let stop: (() => void) | null = null;
  onAuthStateChanged(auth, (user) => {
    stop?.();
    stop = null;
    if (user) stop = startDashboard(auth, user);
    else showSignIn();
  });
}

function showSignIn(): void {
  $('dashboard').hidden = true;
  $('sign-in-panel').hidden = false;
  $('session').textContent = '';
}

/** Renders the signed-in page and polls until sign-out; returns the function that stops the polling. */
function startDashboard(auth: Auth, user: User): () => void {
  let stopped = false;
  const api = new ApiClient(() => user.getIdToken());
  $('sign-in-panel').hidden = true;
  $('dashboard').hidden = false;
  drawn.clear();

  void user.getIdTokenResult().then((token) => {
    state.admin = token.claims.migrationAdmin === true;
    const role = state.admin ? 'admin' : token.claims.migrationViewer === true ? 'viewer' : 'no dashboard role';
    setHtml($('session'), html`<span data-testid="signed-in-as">${user.email ?? user.uid}</span> · <span data-testid="role">${role}</span> <button type="button" id="sign-out">Sign out</button>`);
    $('sign-out').addEventListener('click', () => void signOut(auth));
  });

  const onClick = (event: MouseEvent) => {
    const target = (event.target as HTMLElement).closest<HTMLElement>('[data-action]');
    if (!target) return;
    event.preventDefault();
    void act(api, target).catch(showError).then(() => refresh(api));
  };
  const onInput = (event: Event) => {
    const form = (event.target as HTMLElement).closest('form');
    if (form?.id !== 'rollback-form' || !state.rollbackFor) return;
    const confirmation = (form.elements.namedItem('confirmation') as HTMLInputElement).value.trim();
    const reason = (form.elements.namedItem('reason') as HTMLInputElement).value.trim();
    (form.querySelector('[data-action="confirm-rollback"]') as HTMLButtonElement).disabled = confirmation !== state.rollbackFor || reason === '';
  };
  document.addEventListener('click', onClick);
  document.addEventListener('input', onInput);

  const loop = async () => {
    while (!stopped) {
      await refresh(api);
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  };
  void loop();
  return () => {
    stopped = true;
    document.removeEventListener('click', onClick);
    document.removeEventListener('input', onInput);
  };
}

let refreshing: Promise<void> | null = null;

/** One poll: every panel from the read-only routes. */
function refresh(api: ApiClient): Promise<void> {
  refreshing ??= (async () => {
    try {
      const [status, migrations, runs, history] = await Promise.all([
        api.get<StatusResponse>('status'),
        api.get<{ migrations: MigrationItem[] }>('migrations'),
        api.get<{ runs: RunListItem[] }>('runs?limit=20'),
        api.get<HealthHistory>('health/history?limit=60'),
      ]);
      draw('health', healthView(status, history));
      draw('mode', modeView(status));
      draw('migrations', migrationsView(migrations.migrations, state.admin));
      state.selectedRunId ??= runs.runs[0]?.runId ?? null;
      draw('runs', runsView(runs.runs, state.selectedRunId));
      draw('alerts', alertsView(history));
      await refreshRun(api);
      showError(null);
    } catch (error) {
      showError(error instanceof ApiCallError && error.status === 403 ? `${error.message} — ask an admin for the migrationViewer claim` : error);
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

async function refreshRun(api: ApiClient): Promise<void> {
  const runId = state.selectedRunId;
  $('run-panel').hidden = runId === null;
  if (!runId) return;
  const [run, details] = await Promise.all([api.get<RunView>(`runs/${runId}`), api.get<RunDetails>(`runs/${runId}/details?failures=50`)]);
  if (runId !== state.selectedRunId) return;
  $('run-title').textContent = run.runId;
  draw('run', runView(run, details));
  draw('run-actions', state.admin ? runActionsView(run) : html``);
}

async function act(api: ApiClient, target: HTMLElement): Promise<void> {
  const action = target.dataset.action;
  const reasonOf = () => {
    const reason = ($('action-reason') as HTMLInputElement | null)?.value.trim();
    if (!reason) throw new Error(`${action}: enter a reason first (it is recorded with the action)`);
    return reason;
  };
  switch (action) {
    case 'select-run':
      state.selectedRunId = target.dataset.runId ?? null;
      state.rollbackFor = null;
      draw('rollback', html``);
      return;
    case 'start': {
      const execute = target.dataset.execute === 'true';
      const started = await api.post<{ runId: string }>('runs', { migrationId: target.dataset.migrationId, execute, reason: `${execute ? 'executed' : 'dry'} run started from the dashboard` });
      state.selectedRunId = started.runId;
      notice(`${execute ? 'Run' : 'Dry run'} ${started.runId} started.`);
      return;
    }
    case 'pause':
    case 'resume':
    case 'abort': {
      const runId = state.selectedRunId!;
      await api.post(`runs/${runId}/${action}`, { reason: reasonOf() });
      notice(`Run ${runId}: ${action} requested.`);
      return;
    }
    case 'assess-rollback': {
      const runId = state.selectedRunId!;
      draw('rollback', html`<p class="muted" data-testid="rollback-loading">Assessing the rollback of ${runId}…</p>`);
      const { assessment } = await api.post<{ assessment: RollbackAssessment }>(`runs/${runId}/rollback`, { confirm: false });
      state.rollbackFor = runId;
      draw('rollback', rollbackView(runId, assessment));
      return;
    }
    case 'confirm-rollback': {
      const runId = state.rollbackFor!;
      const form = $('rollback-form') as HTMLFormElement;
      const reason = (form.elements.namedItem('reason') as HTMLInputElement).value.trim();
      const typed = (form.elements.namedItem('confirmation') as HTMLInputElement).value.trim();
      if (typed !== runId || !reason) throw new Error('rollback: type the run id and a reason to confirm');
      const result = await api.post<{ runId: string }>(`runs/${runId}/rollback`, { confirm: true, reason });
      state.rollbackFor = null;
      draw('rollback', html`<p class="notice" data-testid="rollback-started" data-rollback-run-id="${result.runId}">Rollback run ${result.runId} started for ${runId}.</p>`);
      return;
    }
    case 'cancel-rollback':
      state.rollbackFor = null;
      draw('rollback', html``);
      return;
    default:
      throw new Error(`unknown action ${action}`);
  }
}

main().catch((error: unknown) => {
  document.body.prepend(Object.assign(document.createElement('p'), { className: 'error', textContent: String((error as Error).message ?? error) }));
});
