import type { ControlPaths } from '../control/paths';

/** Where the write probe of the infrastructure check creates and deletes its document. */
export function healthProbesPath(paths: ControlPaths): string {
  return `${paths.root}/_control/health-probes`;
}

/** Open alerts (one document per alert key): de-duplication across health runs. */
export function alertStatePath(paths: ControlPaths): string {
  return `${paths.root}/_control/alert-state`;
}
