import { InvalidArgumentError, type Command } from 'commander';
import { formatFieldChange } from '../../engine/document-diff';
import { RAMP_GROWTH_PER_STEP, RAMP_STEP_MINUTES } from '../../engine/ramp';
import { DEFAULT_SAMPLE_SIZE, planMigration, type PlanReport } from '../../engine/planner';
import { loadCliRegistry, loadContextConfig, migrationById, withFirestore, type GlobalOptions } from '../context';
import { formatCount, formatDuration, formatPercent, printJson, printLines, renderTable } from '../output';
import { renderValidation, validateSystem } from './validate';

interface PlanFlags {
  showValues?: boolean;
  sample: number;
  validateOnly?: boolean;
}

const PATHS_PER_LINE = 4;

export function renderPlanReport(report: PlanReport): string[] {
  const { counts, estimate } = report;
  const where = report.target.where.length
    ? ` where ${report.target.where.map((filter) => `${filter.field} ${filter.op} ${JSON.stringify(filter.value)}`).join(' and ')}`
    : '';
  const lines = [
    `Plan for ${report.migrationId} (version ${report.version}) — dry run, nothing was written`,
    `  ${report.description}`,
    `  target: ${report.target.kind === 'collection' ? 'collection' : 'collection group'} ${report.target.name}${where}`,
    `  checksum ${report.checksum}; target-schema validation ${report.validationEnabled ? 'on' : 'off (MIGRATION_VALIDATION_ENABLED=false)'}`,
    '',
    ...renderTable(
      ['DOCUMENTS', 'COUNT', 'SHARE'],
      (
        [
          ['would migrate', counts.migrate],
          ['already at target', counts.alreadyAtTarget],
          ['skipped by up()', counts.skipped],
          ['would fail', counts.fail],
        ] as const
      )
        .map(([label, count]) => [label, formatCount(count), formatPercent(count, counts.total)])
        .concat([['total read', formatCount(counts.total), '']]),
    ),
  ];
  if (report.skipReasons.length > 0) {
    lines.push('', 'Skipped (reason: documents)');
    for (const { reason, count } of report.skipReasons) lines.push(`  ${reason}: ${formatCount(count)}`);
    if (report.skippedOtherReasons > 0) lines.push(`  (other reasons): ${formatCount(report.skippedOtherReasons)}`);
  }
  if (report.failures.length > 0) {
    lines.push('', 'Would fail (the run records these and leaves them unchanged)');
    for (const failure of report.failures) {
      lines.push(`  ${failure.errorClass} (${failure.severity}): ${formatCount(failure.count)}`);
      for (const { message, count } of failure.messages) lines.push(`    ${formatCount(count)} × ${message}`);
      if (failure.otherMessages > 0) lines.push(`    ${formatCount(failure.otherMessages)} × (other messages)`);
      for (let i = 0; i < failure.paths.length; i += PATHS_PER_LINE) lines.push(`    ${failure.paths.slice(i, i + PATHS_PER_LINE).join('  ')}`);
      if (failure.count > failure.paths.length) lines.push(`    … and ${formatCount(failure.count - failure.paths.length)} more`);
    }
  }
  if (report.samples.length > 0) {
    lines.push('', `Sample changes (${report.showValues ? 'with values' : 'field names and types; --show-values adds values'})`);
    for (const sample of report.samples) {
      lines.push(`  ${sample.path}`);
      for (const change of sample.changes) lines.push(`    ${formatFieldChange(change)}`);
    }
  }
  const writes = estimate.writes;
  lines.push(
    '',
    `Production estimate (Firestore 500/50/5 ramp: ${formatCount(estimate.startOpsPerSecond)} ops/s at MIGRATION_QUOTA_SAFETY=${estimate.quotaSafety}, ` +
      `+${Math.round((RAMP_GROWTH_PER_STEP - 1) * 100)} % every ${RAMP_STEP_MINUTES} min)`,
    `  reads:    ${formatCount(estimate.reads)} documents`,
    `  writes:   ${formatCount(writes.total)} = ${formatCount(writes.updates)} updates + ${formatCount(writes.beforeImages)} before-images + ` +
      `${formatCount(writes.batchMarkers)} batch markers (${formatCount(estimate.documentsPerBatch)} documents per batch) + ` +
      `${formatCount(writes.failureRecords)} failure records`,
    `  duration: at least ${formatDuration(estimate.durationSeconds)} of writes at the ramp's limit`,
    '',
    `Planned ${formatCount(counts.total)} documents in ${formatDuration(report.elapsedMs / 1000)}.`,
  );
  return lines;
}

function nonNegativeInteger(text: string): number {
  if (!/^\d+$/.test(text)) throw new InvalidArgumentError('expected an integer of 0 or more');
  return Number(text);
}

export function register(program: Command): void {
  program
    .command('plan <migration>')
    .description('Dry run: classify every target document as the run would and estimate the production cost; writes nothing')
    .option('--show-values', 'include document values in the sample diffs (personal data: off by default)')
    .option('--sample <n>', 'before/after samples to show', nonNegativeInteger, DEFAULT_SAMPLE_SIZE)
    .option('--validate-only', 'check configuration, definitions, checksums and control-collection access instead of planning')
    .action(async (migrationId: string, flags: PlanFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      if (flags.validateOnly) {
        const report = await validateSystem(globals, [migrationId]);
        if (globals.json) printJson(report);
        else printLines(renderValidation(report));
        process.exitCode = report.exitCode;
        return;
      }
      const config = loadContextConfig();
      const migration = migrationById(await loadCliRegistry(globals.migrations), migrationId);
      // A running count on an interactive terminal only, erased before the report.
      const showProgress = !globals.json && process.stderr.isTTY;
      const report = await withFirestore(globals, ({ db }) =>
        planMigration(db, migration, config, {
          showValues: flags.showValues ?? false,
          sampleSize: flags.sample,
          onProgress: showProgress ? (counts) => process.stderr.write(`\r  … ${formatCount(counts.total)} documents read`) : undefined,
        }),
      );
      if (showProgress) process.stderr.write('\r\x1b[2K');
      if (globals.json) printJson(report);
      else printLines(renderPlanReport(report));
    });
}
