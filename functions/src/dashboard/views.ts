/** The dashboard's panels as markup, from the API's answers. Pure: no fetching, no state. */
import { dateTime, eta, html, lineChart, number, statusBadge, time, type Markup } from './render';
import type { Alert, HealthHistory, MigrationItem, RollbackAssessment, RunDetails, RunListItem, RunView, StatusResponse } from './types';

export function healthView(status: StatusResponse, history: HealthHistory): Markup {
  const latest = history.latest;
  const timeline = history.timeline.filter((point) => point.checkedAt).map((point) => ({ x: new Date(point.checkedAt!).getTime(), y: point.score }));
  return html`<div class="health">
      <div class="score ${latest ? `health-${latest.status}` : ''}" data-testid="health-score" data-score="${latest?.score ?? ''}">
        <span class="value">${latest ? latest.score : '–'}</span><span class="unit">/ 100</span>
      </div>
      <dl class="facts">
        <dt>Status</dt><dd data-testid="health-status">${latest ? statusBadge(latest.status) : 'no health check yet'}</dd>
        <dt>Checked</dt><dd>${dateTime(latest?.checkedAt)}</dd>
        <dt>In migration</dt><dd>${status.inMigration ? 'yes' : 'no'}${status.version ? html` · data version ${status.version}` : ''}</dd>
      </dl>
    </div>
    ${lineChart(timeline, { label: 'health score', unit: 'points', yMax: 100, testId: 'health-timeline' })}`;
}

export function modeView(status: StatusResponse): Markup {
  const mode = status.mode;
  return html`<dl class="facts" data-testid="mode">
    <dt>Mode</dt><dd><span class="badge mode-${mode.mode}" data-mode="${mode.mode}">${mode.mode}</span>
      ${mode.collections.length ? html` for ${mode.collections.join(', ')}` : ''}</dd>
    <dt>Changed</dt><dd>${mode.changedAt ? html`${dateTime(mode.changedAt)} by ${mode.changedBy ?? '?'}` : '–'}</dd>
  </dl>`;
}

export function migrationsView(migrations: readonly MigrationItem[], admin: boolean): Markup {
  if (migrations.length === 0) return html`<p class="muted">No migration deployed.</p>`;
  return html`<table class="table" data-testid="migrations">
    <thead><tr><th>Migration</th><th>Version</th><th>Status</th><th>Last run</th>${admin ? html`<th>Start</th>` : ''}</tr></thead>
    <tbody>${migrations.map(
      (migration) => html`<tr data-migration-id="${migration.id}">
        <td><strong>${migration.id}</strong><div class="muted small">${migration.description ?? ''}</div></td>
        <td>${migration.version}</td>
        <td>${statusBadge(migration.registry?.status ?? 'pending')}</td>
        <td>${migration.registry?.lastRunId ? html`<a href="#" data-action="select-run" data-run-id="${migration.registry.lastRunId}">${migration.registry.lastRunId}</a>` : '–'}</td>
        ${admin
          ? html`<td class="buttons">${migration.deployed
              ? html`<button type="button" data-action="start" data-execute="false" data-migration-id="${migration.id}">Dry run</button>
                  <button type="button" class="primary" data-action="start" data-execute="true" data-migration-id="${migration.id}">Execute</button>`
              : html`<span class="muted">not deployed</span>`}</td>`
          : ''}
      </tr>`,
    )}</tbody>
  </table>`;
}

export function runsView(runs: readonly RunListItem[], selected: string | null): Markup {
  if (runs.length === 0) return html`<p class="muted">No runs yet.</p>`;
  return html`<table class="table" data-testid="runs">
    <thead><tr><th>Run</th><th>Migration</th><th>Kind</th><th>Status</th><th>Started by</th><th>Created</th><th>Finished</th></tr></thead>
    <tbody>${runs.map(
      (run) => html`<tr class="${run.runId === selected ? 'selected' : ''}" data-run-row="${run.runId}" data-status="${run.status}">
        <td><a href="#" data-action="select-run" data-run-id="${run.runId}">${run.runId}</a></td>
        <td>${run.migrationId}</td>
        <td>${run.kind} · ${run.mode}${run.rollback ? html`<div class="muted small">of ${run.rollback.sourceRuns.join(', ')}</div>` : ''}</td>
        <td>${statusBadge(run.status)}</td>
        <td>${run.user}</td>
        <td>${dateTime(run.createdAt)}</td>
        <td>${dateTime(run.finishedAt)}</td>
      </tr>`,
    )}</tbody>
  </table>`;
}

export function runView(run: RunView, details: RunDetails): Markup {
  const percent = run.progress.percent;
  const points = details.throughput.points.map((point) => ({ x: new Date(point.at).getTime(), y: point.docsPerSecond }));
  return html`<div class="run" data-testid="run" data-run-id="${run.runId}" data-status="${run.status}">
    <dl class="facts">
      <dt>Status</dt><dd data-testid="run-status">${statusBadge(run.status)}${run.statusReason ? html` <span class="muted">${run.statusReason}</span>` : ''}</dd>
      <dt>Migration</dt><dd>${run.migrationId} · ${run.kind} · ${run.mode}</dd>
      <dt>Started by</dt><dd>${run.user}${run.reason ? html` — “${run.reason}”` : ''}</dd>
      <dt>Created</dt><dd>${dateTime(run.createdAt)}</dd>
    </dl>
    <div class="progress" data-testid="run-progress" data-percent="${percent ?? ''}" data-processed="${run.progress.processed}" data-total="${run.progress.total ?? ''}">
      <progress class="bar" max="100" value="${percent ?? 0}" aria-label="run progress">${percent ?? 0} %</progress>
      <div class="progress-text">
        <strong>${percent === null ? '–' : `${number(percent, 1)} %`}</strong>
        · ${number(run.progress.processed)} / ${run.progress.total === null ? '?' : number(run.progress.total)} documents
        · ETA <span data-testid="run-eta">${run.status === 'running' ? eta(run.estimatedCompletion) : '–'}</span>
      </div>
      <div class="muted small">migrated ${number(run.progress.migrated)} · skipped ${number(run.progress.skipped)} · already at target ${number(run.progress.alreadyMigrated)} · failed ${number(run.progress.failed)} · ${number(run.progress.batches)} batches</div>
    </div>
    <div class="grid">
      <div>
        <h3>Throughput</h3>
        ${lineChart(points, { label: 'throughput', unit: 'docs/s', testId: 'throughput-chart' })}
        <p class="small">Now: ${number(run.throughput.docsPerSecond, 1)} docs/s · batch latency
          <span data-testid="latency-p95">P95 ${details.batchLatency ? `${number(details.batchLatency.p95)} ms` : '–'}</span>
          ${details.batchLatency ? html`(P50 ${number(details.batchLatency.p50)} ms, max ${number(details.batchLatency.max)} ms, ${details.batchLatency.samples} batches)` : ''}</p>
      </div>
      <div>
        <h3>Partitions ${run.partitions.count !== null ? html`<span class="muted small">${run.partitions.count} (${run.partitions.method})</span>` : ''}</h3>
        ${details.partitions.length === 0
          ? html`<p class="muted">Not planned yet.</p>`
          : html`<table class="table compact" data-testid="partitions"><thead><tr><th>Partition</th><th>Status</th><th>Batches</th><th>Documents</th><th>Failed</th><th>Last commit</th></tr></thead>
            <tbody>${details.partitions.map(
              (p) => html`<tr data-partition="${p.partition}"><td>${p.partition}</td><td>${statusBadge(p.status)}</td><td>${p.batches}</td><td>${number(p.processed)}</td><td>${p.failed}</td><td>${time(p.lastCommitAt)}</td></tr>`,
            )}</tbody></table>`}
      </div>
    </div>
    <h3>Failures <span class="muted small" data-testid="failure-count">${details.failures.total}</span></h3>
    ${details.failures.total === 0
      ? html`<p class="muted">None.</p>`
      : html`<table class="table compact" data-testid="failures"><thead><tr><th>Document</th><th>Class</th><th>Severity</th><th>Reason</th><th>Attempts</th></tr></thead>
        <tbody>${details.failures.listed.map(
          (f) => html`<tr><td><code>${f.path}</code></td><td>${f.errorClass}</td><td>${f.severity}</td><td>${f.message}</td><td>${f.attempts}</td></tr>`,
        )}</tbody></table>
        ${details.failures.total > details.failures.listed.length ? html`<p class="muted small">${details.failures.total - details.failures.listed.length} more not listed.</p>` : ''}`}
  </div>`;
}

/** Which actions the run's status allows (control/runs.ts transitions); a rollback for executed migrate runs. */
export function runActionsView(run: RunListItem): Markup {
  const migrate = run.kind === 'migrate';
  const executed = migrate && run.mode === 'execute';
  const can = {
    pause: migrate && run.status === 'running',
    resume: executed && ['paused', 'emergency_stopped', 'failed'].includes(run.status),
    abort: migrate && ['planning', 'running', 'paused', 'emergency_stopped', 'failed'].includes(run.status),
    rollback: executed && ['completed', 'paused', 'emergency_stopped', 'failed'].includes(run.status),
  };
  if (!Object.values(can).some(Boolean)) return html``;
  return html`<div class="actions" data-testid="run-actions">
    <label>Reason <input id="action-reason" type="text" maxlength="1000" placeholder="why (recorded in the audit trail)" /></label>
    ${can.pause ? html`<button type="button" data-action="pause">Pause</button>` : ''}
    ${can.resume ? html`<button type="button" data-action="resume">Resume</button>` : ''}
    ${can.abort ? html`<button type="button" class="danger" data-action="abort">Abort</button>` : ''}
    ${can.rollback ? html`<button type="button" class="danger" data-action="assess-rollback">Rollback…</button>` : ''}
  </div>`;
}

export function rollbackView(runId: string, assessment: RollbackAssessment): Markup {
  const d = assessment.documents;
  return html`<div class="rollback" data-testid="rollback-assessment">
    <h3>Roll back run ${runId}</h3>
    <p>Strategy <strong>${assessment.strategy.chosen}</strong>: ${assessment.strategy.reason}</p>
    <dl class="facts" data-testid="rollback-documents">
      <dt>Documents</dt><dd data-testid="rollback-total">${number(d.total)}</dd>
      <dt>To restore</dt><dd data-testid="rollback-to-restore">${number(d.toRestore)}</dd>
      <dt>Already restored</dt><dd>${number(d.alreadyRestored)}</dd>
      <dt>Conflicts</dt><dd data-testid="rollback-conflicts">${number(d.conflicts)}</dd>
      <dt>Missing documents / backups</dt><dd>${number(d.missingDocuments)} / ${number(d.missingBackups)}</dd>
      <dt>Estimated duration</dt><dd>${assessment.estimatedDurationMs === null ? '–' : `${number(assessment.estimatedDurationMs / 1000, 1)} s`}</dd>
    </dl>
    ${assessment.conflicts.length ? html`<details><summary>Conflicts (${assessment.conflicts.length}${assessment.conflictsNotListed ? ` + ${assessment.conflictsNotListed} not listed` : ''})</summary><pre>${JSON.stringify(assessment.conflicts, null, 2)}</pre></details>` : ''}
    <h4>Impact</h4>
    <ul data-testid="rollback-impact">${assessment.impact.map((entry) => html`<li>${entry.name}: ${entry.count === null ? entry.error ?? 'unknown' : number(entry.count)}${entry.description ? html` <span class="muted">— ${entry.description}</span>` : ''}</li>`)}</ul>
    ${assessment.impact.length === 0 ? html`<p class="muted">No impact queries declared.</p>` : ''}
    <h4>Readiness</h4>
    <ul>${assessment.readiness.map((check) => html`<li class="${check.ok ? 'ok' : 'not-ok'}">${check.ok ? '✔' : '✘'} ${check.check}: ${check.detail}</li>`)}</ul>
    <form id="rollback-form" class="confirm">
      <label>Reason <input name="reason" type="text" required maxlength="1000" /></label>
      <label>Type the run id <code>${runId}</code> to confirm <input name="confirmation" type="text" autocomplete="off" /></label>
      <button type="submit" class="danger" data-action="confirm-rollback" disabled>Roll back</button>
      <button type="button" data-action="cancel-rollback">Cancel</button>
    </form>
  </div>`;
}

function alertItem(alert: Alert, state: 'open' | 'resolved'): Markup {
  return html`<li class="alert ${alert.severity}" data-alert-key="${alert.key}">
    <span class="badge sev-${alert.severity}">${alert.severity}</span> <strong>${alert.category}</strong> ${alert.message}
    <div class="muted small">${state === 'open' ? html`open since ${dateTime(alert.openedAt)}` : html`last seen ${dateTime(alert.lastSeenAt)}`} · <code>${alert.key}</code></div>
    ${alert.recommendedActions.length ? html`<div class="recommended">Recommended: ${alert.recommendedActions.join(' · ')}</div>` : ''}
  </li>`;
}

export function alertsView(history: HealthHistory): Markup {
  return html`<div class="grid">
    <div><h3>Open <span class="muted small">${history.openAlerts.length}</span></h3>
      ${history.openAlerts.length ? html`<ul class="alerts" data-testid="open-alerts">${history.openAlerts.map((a) => alertItem(a, 'open'))}</ul>` : html`<p class="muted">None.</p>`}</div>
    <div><h3>Resolved <span class="muted small">${history.resolvedAlerts.length}</span></h3>
      ${history.resolvedAlerts.length ? html`<ul class="alerts" data-testid="resolved-alerts">${history.resolvedAlerts.map((a) => alertItem(a, 'resolved'))}</ul>` : html`<p class="muted">None.</p>`}</div>
  </div>`;
}
