/**
 * The CLI's safety gate before a rollback writes anything (DESIGN.md G6): ROLLBACK_CONFIRMED=true
 * (unless ROLLBACK_REQUIRE_CONFIRMATION=false, honoured only on the emulator), a reason and a
 * user — and, for backup restoration, `--accept-inexact` on top: an import is not an exact
 * rollback, and confirming a rollback in general must not confirm that by accident.
 */
import type { FiremigrateConfig } from '../config';

export interface RollbackGateInput {
  rollback: Pick<FiremigrateConfig['rollback'], 'requireConfirmation' | 'confirmed'>;
  /** `--reason`. */
  reason: string | undefined;
  /** The global `--user` (the OS user is not enough: someone must answer for a rollback by name). */
  user: string | undefined;
  /** `--backup-id`: backup restoration. */
  backupId?: string;
  /** `--accept-inexact`. */
  acceptInexact?: boolean;
}

/** Every reason the gate refuses, each a sentence naming what to set; empty: the rollback may run. */
export function rollbackRefusals(input: RollbackGateInput): string[] {
  const refusals: string[] = [];
  if (input.rollback.requireConfirmation && !input.rollback.confirmed) {
    refusals.push('a rollback rewrites application documents: set ROLLBACK_CONFIRMED=true in the environment to confirm it');
  }
  if (!input.reason?.trim()) refusals.push('say why: --reason <text> (recorded in the rollback run and the audit trail)');
  if (!input.user?.trim()) refusals.push('say who answers for it: --user <name> (recorded beside your Google identity)');
  if (input.backupId !== undefined && !input.acceptInexact) {
    refusals.push(
      'backup restoration is not exact (documents are overwritten with their state at the export, app writes since are lost, ' +
        'documents created since are kept): confirm that with --accept-inexact',
    );
  }
  return refusals;
}
