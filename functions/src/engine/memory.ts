/**
 * How much memory this worker may use, and how much it uses. MIGRATION_MEMORY_THRESHOLD is the
 * RSS at which the throttle pauses; inside a Cloud Function (or any container with a memory
 * limit) the instance is killed at its limit, so the threshold there is also capped at a
 * fraction of the instance's memory (DESIGN.md "Rules for the edges").
 *
 * Where the instance's memory comes from:
 * - `FUNCTION_MEMORY_MB`: set only by the OLDER Cloud Functions runtimes (Google's env-var docs,
 *   "older runtimes"). Newer runtimes and 2nd gen set `FUNCTION_TARGET`,
 *   `FUNCTION_SIGNATURE_TYPE`, `K_SERVICE`, `K_REVISION`, `PORT` and no memory variable.
 * - so, otherwise, the cgroup the platform puts the instance in: cgroup v2
 *   `/sys/fs/cgroup/memory.max` (`max` = no limit), else cgroup v1
 *   `/sys/fs/cgroup/memory/memory.limit_in_bytes` (Cloud Run's 1st gen sandbox runs cgroups in
 *   hybrid mode with memory on v1: automemlimit issue 7; "no limit" there is a huge number).
 * `process.constrainedMemory()` reads the same files through libuv but is not used: on Node 20
 * it answers 2^64 on a host without a limit (seen on this machine), so it needs the same
 * sanity check and adds nothing.
 */
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import type { FiremigrateConfig } from '../config';

/**
 * Share of the instance's memory the threshold may reach. The rest is headroom for what RSS
 * does not see coming: the batches already in flight finish after the pause starts (each holds
 * its documents, before-images and a commit of up to ~9 MiB), and V8 returns freed pages to the
 * OS lazily. The throttle starts slowing at 80 % of the threshold, i.e. at 60 % of the instance.
 */
export const INSTANCE_MEMORY_FRACTION = 0.75;

export const CGROUP_V2_MEMORY_MAX = '/sys/fs/cgroup/memory.max';
export const CGROUP_V1_MEMORY_LIMIT = '/sys/fs/cgroup/memory/memory.limit_in_bytes';

const BYTES_PER_MB = 1024 * 1024;

/** What `instanceMemory` looks at; injectable so tests need no cgroup. */
export interface MemorySources {
  env: NodeJS.ProcessEnv;
  /** A file's text, or null when it does not exist or cannot be read. */
  readFile: (path: string) => string | null;
  /** The host's memory in bytes: a cgroup "limit" at or above it limits nothing. */
  totalMemoryBytes: number;
}

export interface InstanceMemory {
  /** MB here and everywhere in firemigrate are MiB (1024 × 1024 bytes), as RSS is reported. */
  mb: number;
  /** Where the figure came from, for logs: `FUNCTION_MEMORY_MB`, or the cgroup file's path. */
  source: string;
}

function readOptionalFile(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

export function nodeMemorySources(): MemorySources {
  return { env: process.env, readFile: readOptionalFile, totalMemoryBytes: totalmem() };
}

function cgroupLimitBytes(text: string | null, totalMemoryBytes: number): number | null {
  const value = text?.trim();
  if (!value || !/^\d+$/.test(value)) return null; // absent, or `max` (v2: no limit)
  const bytes = Number(value);
  return bytes > 0 && bytes < totalMemoryBytes ? bytes : null;
}

/**
 * The memory limit of the instance (function, Cloud Run instance, container) this process runs
 * in, or null when nothing limits it below the host's memory. Where several sources give a limit,
 * the smallest wins: it is the one that kills the process.
 */
export function instanceMemory(sources: MemorySources = nodeMemorySources()): InstanceMemory | null {
  const found: InstanceMemory[] = [];
  const declared = sources.env.FUNCTION_MEMORY_MB?.trim();
  if (declared) {
    if (!/^\d+$/.test(declared) || Number(declared) === 0) {
      throw new Error(`FUNCTION_MEMORY_MB="${declared}" is invalid: expected the instance's memory as a whole number of MB greater than 0`);
    }
    found.push({ mb: Number(declared), source: 'FUNCTION_MEMORY_MB' });
  }
  for (const path of [CGROUP_V2_MEMORY_MAX, CGROUP_V1_MEMORY_LIMIT]) {
    const bytes = cgroupLimitBytes(sources.readFile(path), sources.totalMemoryBytes);
    if (bytes !== null) found.push({ mb: Math.floor(bytes / BYTES_PER_MB), source: path });
  }
  return found.reduce<InstanceMemory | null>((smallest, limit) => (smallest === null || limit.mb < smallest.mb ? limit : smallest), null);
}

/**
 * The RSS (MB) at which the throttle pauses: MIGRATION_MEMORY_THRESHOLD, capped at
 * INSTANCE_MEMORY_FRACTION of the instance's memory when the instance has a limit.
 */
export function memoryThresholdMb(config: Pick<FiremigrateConfig, 'migration'>, instance: InstanceMemory | null = instanceMemory()): number {
  const configured = config.migration.memoryThresholdMb;
  return instance === null ? configured : Math.min(configured, Math.floor(instance.mb * INSTANCE_MEMORY_FRACTION));
}

/** This process's resident set size in MB. `memoryUsage.rss()` is cheap; `memoryUsage()` walks the heap. */
export function rssMb(): number {
  return process.memoryUsage.rss() / BYTES_PER_MB;
}
