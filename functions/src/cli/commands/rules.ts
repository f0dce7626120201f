import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { checkRules, collectionsOfTargets, describeCollection, WRITE_GUARD, type GuardedCollection, type RulesFinding } from '../../compat/rules-check';
import { RulesSyntaxError } from '../../compat/rules-syntax';
import { MODE_DOCUMENT_PATH } from '../../control/paths';
import { CliError, EXIT_FAILURE, EXIT_OK, EXIT_USAGE, loadCliRegistry, loadContextConfig, type GlobalOptions } from '../context';
import { printJson, printLines } from '../output';
import { parseCollectionList } from './mode';

interface RulesCheckFlags {
  collections?: string[];
}

export interface RulesCheckReport {
  file: string;
  ok: boolean;
  /** The migrated collections the writes were checked against. */
  collections: string[];
  /** Root collections of the control data and the mode document that no allow may reach. */
  controlCollections: string[];
  findings: RulesFinding[];
}

/** `--collections` entries: an id is any collection with that id at any depth; a path (`users/u1/orders`) is that collection. */
function fromFlag(names: readonly string[]): GuardedCollection[] {
  return names.map((name) => (name.includes('/') ? { collectionPath: name.replace(/^\/+|\/+$/g, '') } : { collectionGroup: name }));
}

export function renderRulesCheck(report: RulesCheckReport): string[] {
  const scope = `migrated collections: ${report.collections.join(', ') || 'none'}; control data: ${report.controlCollections.join(', ')}`;
  if (report.ok) return [`${report.file}: no findings (${scope}).`];
  return [
    ...report.findings.map((finding) => `${report.file}:${finding.line}:${finding.column}: ${finding.kind}: ${finding.message}`),
    '',
    `${report.findings.length} finding(s) in ${report.file} (${scope}).`,
  ];
}

export function register(program: Command): void {
  const rules = program.command('rules').description('Check a Firestore security rules file against firemigrate\'s rule functions');
  rules
    .command('check <file>')
    .description(
      `Flag allows that reach the control data or the mode document (${MODE_DOCUMENT_PATH}) through recursive or collection wildcards ` +
        `or by name, and writes to migrated collections whose condition does not AND in ${WRITE_GUARD}(…)`,
    )
    .option('--collections <ids>', 'the migrated collections, comma-separated (default: the targets of the registered migrations)', parseCollectionList)
    .addHelpText(
      'after',
      '\nAn allow whose condition is `false` grants nothing and is never flagged. A write counts as guarded when every ' +
        `branch of its condition ANDs in ${WRITE_GUARD}(…), directly or through a rules function.\n` +
        'Exit codes: 0 no findings, 1 findings, 2 usage error (unreadable or unparsable file, bad configuration).',
    )
    .action(async (file: string, flags: RulesCheckFlags, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const config = loadContextConfig();
      const collections = flags.collections
        ? fromFlag(flags.collections)
        : collectionsOfTargets((await loadCliRegistry(globals.migrations)).all().map((migration) => migration.target));
      let source: string;
      try {
        source = readFileSync(file, 'utf8');
      } catch (error) {
        throw new CliError(`cannot read the rules file ${file}: ${error instanceof Error ? error.message : String(error)}`, EXIT_USAGE);
      }
      const controlCollections = [config.migration.controlCollection];
      let findings: RulesFinding[];
      try {
        findings = checkRules(source, { collections, controlCollections });
      } catch (error) {
        if (error instanceof RulesSyntaxError) throw new CliError(`${file}:${error.line}:${error.column}: cannot parse the rules: ${error.problem}`, EXIT_USAGE);
        throw error;
      }
      const report: RulesCheckReport = {
        file,
        ok: findings.length === 0,
        collections: collections.map(describeCollection),
        controlCollections: [...controlCollections, MODE_DOCUMENT_PATH.split('/')[0]],
        findings,
      };
      if (globals.json) printJson(report);
      else printLines(renderRulesCheck(report));
      process.exitCode = report.ok ? EXIT_OK : EXIT_FAILURE;
    });
}
