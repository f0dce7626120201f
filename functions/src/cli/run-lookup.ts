import { RunNotFoundError, RunStore, type RunDocument } from '../control/runs';
import type { ControlPaths } from '../control/paths';
import { CliError, EXIT_FAILURE, type FirestoreConnection } from './context';

/** The run `runId` of any migration, or a failure (exit 1) saying it does not exist. */
export async function findRun(connection: FirestoreConnection, paths: ControlPaths, runId: string): Promise<RunDocument> {
  try {
    return await new RunStore(connection.db, paths).find(runId);
  } catch (error) {
    if (error instanceof RunNotFoundError) throw new CliError(error.message, EXIT_FAILURE);
    throw error;
  }
}
