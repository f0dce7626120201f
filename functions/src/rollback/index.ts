/**
 * The rollback engine (issue #6; DESIGN.md G4): assessment (writes nothing), the local runner,
 * one resumable batch for Cloud Tasks, and the run's preparation and finalisation for the task
 * path. The confirmation gate (ROLLBACK_CONFIRMED / `confirm: true`) belongs to the entry points;
 * this module requires a reason and a user.
 */
export * from './types';
export { assessRollback } from './assessment';
export { chooseStrategy, type StrategyChoice } from './strategy';
export { CONFLICT_REASON, rollbackBatch, rollbackMarkerId } from './batch';
export {
  CONFLICT_LIST_LIMIT,
  RollbackRefusedError,
  assertCaller,
  finishRollbackRun,
  listRollbackConflicts,
  prepareRollbackRun,
  reclaimRollbackRun,
  sourceRunCheckpoint,
  sumRollbackMarkers,
  type PreparedRollback,
  type RollbackFinish,
  type RollbackRunDocument,
} from './rollback-run';
export { resumeRollback, startRollback, type RollbackRunOptions } from './session';
export { validateRollback, type ValidateRollbackInput } from './validation';
export { listSourceRuns, type SourceRun } from './source-runs';
