import {
  CGROUP_V1_MEMORY_LIMIT,
  CGROUP_V2_MEMORY_MAX,
  INSTANCE_MEMORY_FRACTION,
  instanceMemory,
  memoryThresholdMb,
  rssMb,
  type MemorySources,
} from '../../functions/src/engine/memory';
import { loadConfig } from '../../functions/src/config';

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;

function sources(env: NodeJS.ProcessEnv, files: Record<string, string> = {}): MemorySources {
  return { env, readFile: (path) => files[path] ?? null, totalMemoryBytes: 16 * GiB };
}

describe('instanceMemory', () => {
  it('reads FUNCTION_MEMORY_MB, which older Cloud Functions runtimes set', () => {
    expect(instanceMemory(sources({ FUNCTION_MEMORY_MB: '256' }))).toEqual({ mb: 256, source: 'FUNCTION_MEMORY_MB' });
  });

  it('reads the cgroup v2 limit (newer runtimes and Cloud Run set no memory variable)', () => {
    const env = { FUNCTION_TARGET: 'migrateBatch', K_SERVICE: 'migratebatch' };
    expect(instanceMemory(sources(env, { [CGROUP_V2_MEMORY_MAX]: `${512 * MiB}\n` }))).toEqual({ mb: 512, source: CGROUP_V2_MEMORY_MAX });
  });

  it('falls back to the cgroup v1 limit', () => {
    expect(instanceMemory(sources({}, { [CGROUP_V2_MEMORY_MAX]: 'max\n', [CGROUP_V1_MEMORY_LIMIT]: `${GiB}\n` }))).toEqual({ mb: 1024, source: CGROUP_V1_MEMORY_LIMIT });
  });

  it('finds no limit where the cgroup says "max", "unlimited" (a huge number), or at least the host\'s memory', () => {
    expect(instanceMemory(sources({}))).toBeNull();
    expect(instanceMemory(sources({}, { [CGROUP_V2_MEMORY_MAX]: 'max\n', [CGROUP_V1_MEMORY_LIMIT]: '9223372036854771712\n' }))).toBeNull();
    expect(instanceMemory(sources({}, { [CGROUP_V2_MEMORY_MAX]: `${16 * GiB}` }))).toBeNull();
  });

  it('takes the smallest of several limits: that one kills the process', () => {
    const found = instanceMemory(sources({ FUNCTION_MEMORY_MB: '2048' }, { [CGROUP_V2_MEMORY_MAX]: `${GiB}` }));
    expect(found).toEqual({ mb: 1024, source: CGROUP_V2_MEMORY_MAX });
  });

  it('refuses a FUNCTION_MEMORY_MB that is not a whole number of MB, naming it', () => {
    expect(() => instanceMemory(sources({ FUNCTION_MEMORY_MB: '256MB' }))).toThrow(
      'FUNCTION_MEMORY_MB="256MB" is invalid: expected the instance\'s memory as a whole number of MB greater than 0',
    );
    expect(() => instanceMemory(sources({ FUNCTION_MEMORY_MB: '0' }))).toThrow(/FUNCTION_MEMORY_MB="0"/);
  });
});

describe('memoryThresholdMb', () => {
  const config = loadConfig({ MIGRATION_MEMORY_THRESHOLD: '512' });

  it('is MIGRATION_MEMORY_THRESHOLD when nothing limits the instance', () => {
    expect(memoryThresholdMb(config, null)).toBe(512);
  });

  it('is capped at 75 % of the instance\'s memory inside a function', () => {
    expect(INSTANCE_MEMORY_FRACTION).toBe(0.75);
    expect(memoryThresholdMb(config, { mb: 256, source: 'FUNCTION_MEMORY_MB' })).toBe(192);
    expect(memoryThresholdMb(config, { mb: 2048, source: CGROUP_V2_MEMORY_MAX })).toBe(512);
    expect(memoryThresholdMb(config, { mb: 683, source: CGROUP_V2_MEMORY_MAX })).toBe(512);
    expect(memoryThresholdMb(config, { mb: 682, source: CGROUP_V2_MEMORY_MAX })).toBe(511);
  });
});

describe('rssMb', () => {
  it('is this process\'s resident set size in MiB', () => {
    const before = process.memoryUsage().rss / MiB;
    const reading = rssMb();
    const after = process.memoryUsage().rss / MiB;
    expect(reading).toBeGreaterThan(0);
    expect(reading).toBeGreaterThanOrEqual(Math.min(before, after) - 16);
    expect(reading).toBeLessThanOrEqual(Math.max(before, after) + 16);
  });
});
