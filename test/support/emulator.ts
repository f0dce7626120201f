import { Firestore } from '@google-cloud/firestore';
import { loadConfig, type FiremigrateConfig } from '../../functions/src/config';
import { resetEmulatorProject } from '../../functions/src/dev/firestore-emulator';

/** `describe` where the emulator runs; the whole group is skipped (announced once by global setup) where it is missing. */
export const describeEmulator: jest.Describe = process.env.FIREMIGRATE_EMULATOR_MISSING
  ? describe.skip
  : describe;

export function emulatorHost(): string {
  const host = process.env.FIRESTORE_EMULATOR_HOST;
  if (!host) throw new Error('FIRESTORE_EMULATOR_HOST is not set: run integration tests through jest (global setup starts the emulator)');
  return host;
}

/**
 * The configuration of engine code running inside this jest process, on the test emulator. The
 * memory threshold is raised because the throttle measures this process's RSS, which here is
 * jest's own (ts-jest and every suite's modules): it passes the 512 MB default part-way through a
 * full run, and the engine would then pause for memory no migration holds.
 */
export function emulatorConfig(env: Record<string, string> = {}): FiremigrateConfig {
  return loadConfig({ FIRESTORE_EMULATOR_HOST: emulatorHost(), MIGRATION_MEMORY_THRESHOLD: '16384', ...env });
}

/**
 * A Firestore client on the test emulator, in a project of the suite's own (`demo-` ids keep the
 * Google libraries offline). `useBigInt` reads every integer as a bigint, keeping int64 beyond 2^53 exact.
 */
export function testFirestore(projectId: string, options: { useBigInt?: boolean } = {}): Firestore {
  if (!projectId.startsWith('demo-')) throw new Error('test project ids start with demo-');
  return new Firestore({ projectId, host: emulatorHost(), ssl: false, useBigInt: options.useBigInt ?? false });
}

export function resetProject(projectId: string): Promise<void> {
  return resetEmulatorProject(emulatorHost(), projectId);
}
