import type { Command } from 'commander';
import { ControlPaths } from '../../control/paths';
import { storeReport, validateRun, type ValidationReport } from '../../engine/validation';
import { loadCliRegistry, loadContextConfig, migrationById, withFirestore, type GlobalOptions } from '../context';
import { formatCount, formatDuration, printJson, printLines, renderTable } from '../output';
import { findRun } from '../run-lookup';

const PATHS_SHOWN = 3;

/**
 * The validation report as text: counts before and after (they add up to the total), the
 * integrity of every document at the target version, and the failures by class.
 */
export function renderValidationReport(report: ValidationReport): string[] {
  const { before, after, integrity } = report;
  const count = (n: number | null) => (n === null ? '?' : formatCount(n));
  const lines = [
    `Validation report — run ${report.runId} (${report.migrationId}): ${report.ok ? 'PASSED' : 'FAILED'}`,
    `  ${report.validatedAt}, ${formatDuration(report.elapsedMs / 1000)}: every document of the target read`,
    `  before the run: ${count(before.total)} documents — ${count(before.atTarget)} at the target version, ${count(before.oldShape)} in the old shape`,
    `  after: ${formatCount(after.total)} documents =`,
    ...renderTable(
      ['', 'DOCUMENTS'],
      [
        ['migrated by this run', formatCount(after.migrated)],
        ['already at the target version', formatCount(after.alreadyAtTarget)],
        ['skipped by up()', formatCount(after.skipped)],
        ['failed', formatCount(after.failed)],
        ['left in the old shape (would migrate now)', formatCount(after.remaining)],
      ],
    ).map((line) => `    ${line}`),
    `  integrity: ${formatCount(integrity.valid)} of ${formatCount(integrity.checked)} documents at the target version parse with the target schema` +
      (integrity.invalid > 0 ? ` — ${formatCount(integrity.invalid)} DO NOT` : ''),
    `  failure records: ${formatCount(report.failureRecords)} (documents that failed at least once during the run)`,
  ];
  if (after.migrated > after.atTarget) {
    lines.push(`  ! ${formatCount(after.migrated - after.atTarget)} documents this run migrated are no longer at the target version (deleted or rewritten since)`);
  }
  if (report.failures.length > 0) {
    lines.push('  failures:');
    const rows = report.failures.map((failure) => {
      const more = failure.count - Math.min(failure.paths.length, PATHS_SHOWN);
      return [failure.errorClass, failure.severity, formatCount(failure.count), `${failure.paths.slice(0, PATHS_SHOWN).join(', ')}${more > 0 ? ` (+${formatCount(more)} more)` : ''}`];
    });
    lines.push(...renderTable(['CLASS', 'SEVERITY', 'COUNT', 'PATHS'], rows).map((line) => `    ${line}`));
    for (const failure of report.failures) lines.push(`    ${failure.errorClass}: ${failure.firstMessage}`);
  }
  if (report.remainingPaths.length > 0) lines.push(`  ! left in the old shape: ${report.remainingPaths.slice(0, PATHS_SHOWN).join(', ')}${after.remaining > PATHS_SHOWN ? ', …' : ''}`);
  if (!report.definitionMatchesRun) lines.push(`  ! validated with definition checksum ${report.checksum.slice(0, 12)}…, not the one the run used`);
  return lines;
}

export function register(program: Command): void {
  program
    .command('report <runId>')
    .description(
      'Validate a run: read every document of its target, parse those at the target version with the target schema, classify ' +
        'those in the old shape; print the counts before/after and the failures, and store the report in the run document',
    )
    .addHelpText('after', '\nExit codes: 0 the report passed, 1 it failed (a document at the target does not parse, or one is left behind), 2 usage error.')
    .action(async (runId: string, _flags: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const config = loadContextConfig();
      const registry = await loadCliRegistry(globals.migrations);
      const paths = new ControlPaths(config.migration.controlCollection);
      await withFirestore(globals, async (connection) => {
        const run = await findRun(connection, paths, runId);
        const migration = migrationById(registry, run.migrationId);
        const report = await validateRun({ db: connection.db, migration, config, paths, run });
        await storeReport(connection.db, paths, report);
        if (globals.json) printJson(report);
        else printLines(renderValidationReport(report));
        process.exitCode = report.ok ? 0 : 1;
      });
    });
}
