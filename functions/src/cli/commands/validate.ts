import { hostname } from 'node:os';
import type { Command } from 'commander';
import { Timestamp } from '@google-cloud/firestore';
import type { FiremigrateConfig } from '../../config';
import { ControlPaths } from '../../control/paths';
import { RegistryStore } from '../../control/registry-store';
import type { MigrationRegistry } from '../../definitions/registry';
import type { Migration } from '../../definitions/types';
import { targetQuery } from '../../engine/planner';
import {
  CliError,
  EXIT_FAILURE,
  EXIT_OK,
  EXIT_USAGE,
  loadCliRegistry,
  loadContextConfig,
  openFirestore,
  resolveCaller,
  type FirestoreConnection,
  type GlobalOptions,
} from '../context';
import { printJson, printLines } from '../output';

/**
 * The seed's `--validate-only`: is this machine ready to run these migrations? Each check is
 * reported on its own; a check that depends on a failed one is reported as not run. Only the
 * control-collection probe writes, and it deletes what it wrote.
 */
export type CheckStatus = 'pass' | 'fail' | 'not-run';

export interface ValidationCheck {
  name: string;
  status: CheckStatus;
  detail: string;
}

/** Checks whose failure is the caller's to fix before anything can run: exit 2, like any usage error. */
const USAGE_CHECKS = ['configuration', 'definitions', 'project'];

export interface ValidationReport {
  ok: boolean;
  /** 0 all passed, 2 configuration, definitions or project are invalid, 1 another check failed. */
  exitCode: number;
  checks: ValidationCheck[];
}

/** `migrationIds` limits the checksum and target checks to those migrations (default: all). */
export async function validateSystem(globals: GlobalOptions, migrationIds?: readonly string[]): Promise<ValidationReport> {
  const checks: ValidationCheck[] = [];
  const add = (name: string, status: CheckStatus, detail: string) => checks.push({ name, status, detail });
  const finish = (): ValidationReport => {
    const usage = checks.some((check) => check.status === 'fail' && USAGE_CHECKS.includes(check.name));
    const failed = checks.some((check) => check.status === 'fail');
    return { ok: !failed, exitCode: usage ? EXIT_USAGE : failed ? EXIT_FAILURE : EXIT_OK, checks };
  };
  const firestoreChecks = ['registry entries and checksums', 'target queries', 'control collection writable'];
  const skipRest = (because: string, names = ['project', ...firestoreChecks]) => names.forEach((name) => add(name, 'not-run', `needs ${because}`));

  let config: FiremigrateConfig;
  try {
    config = loadContextConfig();
    add('configuration', 'pass', `valid; control collection "${config.migration.controlCollection}", batch size ${config.migration.batchSize}`);
  } catch (error) {
    add('configuration', 'fail', messageOf(error));
    add('definitions', 'not-run', 'needs a valid configuration');
    skipRest('a valid configuration');
    return finish();
  }

  let migrations: Migration[];
  try {
    const registry: MigrationRegistry = await loadCliRegistry(globals.migrations);
    migrations = migrationIds ? migrationIds.map((id) => registry.get(id)) : registry.all();
    add('definitions', 'pass', `${registry.all().length} migration(s) loaded: ${registry.all().map((m) => m.id).join(', ') || 'none'}`);
  } catch (error) {
    add('definitions', 'fail', messageOf(error));
    skipRest('loadable definitions');
    return finish();
  }

  let connection: FirestoreConnection;
  try {
    connection = openFirestore(globals);
  } catch (error) {
    add('project', 'fail', messageOf(error));
    skipRest('a project', firestoreChecks);
    return finish();
  }
  try {
    const caller = await resolveCaller(globals.user, connection);
    add(
      'project',
      'pass',
      `${connection.projectId}${connection.emulatorHost ? ` on the emulator at ${connection.emulatorHost}` : ''}; ` +
        `caller ${caller.identity}${caller.user ? ` (--user ${caller.user})` : ''}`,
    );
    const db = connection.db;
    const paths = new ControlPaths(config.migration.controlCollection);
    const store = new RegistryStore(db, paths);

    try {
      const entries = new Map((await store.list()).map((entry) => [entry.id, entry]));
      const problems: string[] = [];
      const notes = migrations.map((migration) => {
        const entry = entries.get(migration.id);
        if (!entry) return `${migration.id}: never run`;
        try {
          store.assertRunnable(entry, migration);
        } catch (error) {
          problems.push(messageOf(error));
          return `${migration.id}: CHECKSUM MISMATCH`;
        }
        const changed = entry.checksum !== migration.checksum ? ', definition changed since (allowed: not applied)' : '';
        return `${migration.id}: ${entry.status}${changed}`;
      });
      add('registry entries and checksums', problems.length ? 'fail' : 'pass', [...notes, ...problems].join('; ') || 'no migrations');
    } catch (error) {
      add('registry entries and checksums', 'fail', `cannot read ${paths.root}: ${messageOf(error)}`);
    }

    const unreadable: string[] = [];
    for (const migration of migrations) {
      try {
        // One document is enough to prove the query is accepted (filters, indexes, permissions).
        await targetQuery(db, migration.target).limit(1).get();
      } catch (error) {
        unreadable.push(`${migration.id}: ${messageOf(error)}`);
      }
    }
    add('target queries', unreadable.length ? 'fail' : 'pass', unreadable.join('; ') || `${migrations.length} target(s) readable`);

    const probe = db.doc(`${paths.root}/_control/probes/validate-${hostname()}-${process.pid}-${Date.now()}`);
    try {
      const started = Date.now();
      await probe.create({ purpose: 'firemigrate validate: write probe, deleted at once', createdAt: Timestamp.now() });
      await probe.delete();
      add('control collection writable', 'pass', `created and deleted ${probe.path} in ${Date.now() - started} ms`);
    } catch (error) {
      add('control collection writable', 'fail', `${probe.path}: ${messageOf(error)}`);
    }
  } finally {
    await connection.close();
  }
  return finish();
}

function messageOf(error: unknown): string {
  if (error instanceof CliError || error instanceof Error) return error.message;
  return String(error);
}

const MARK: Record<CheckStatus, string> = { pass: 'ok  ', fail: 'FAIL', 'not-run': 'skip' };

export function renderValidation(report: ValidationReport): string[] {
  return [
    ...report.checks.map((check) => `[${MARK[check.status]}] ${check.name}: ${check.detail}`),
    '',
    report.ok ? 'Ready: every check passed.' : 'Not ready: see the failed checks above.',
  ];
}

export function register(program: Command): void {
  program
    .command('validate [migrations...]')
    .description('Check configuration, definitions, checksums against applied ones, target queries and that the control collection is writable')
    .action(async (migrationIds: string[], _flags: unknown, command: Command) => {
      const globals = command.optsWithGlobals<GlobalOptions>();
      const report = await validateSystem(globals, migrationIds.length > 0 ? migrationIds : undefined);
      if (globals.json) printJson(report);
      else printLines(renderValidation(report));
      process.exitCode = report.exitCode;
    });
}
