import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import type { LatencySummary } from './protocol';

const MB = 1024 * 1024;
export const RSS_SAMPLE_MS = 50;

/** Nearest-rank percentile of `values` (p in 0–100); NaN for no values. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function summarizeLatencies(values: readonly number[]): LatencySummary {
  const total = values.reduce((sum, value) => sum + value, 0);
  return { count: values.length, p50Ms: percentile(values, 50), p95Ms: percentile(values, 95), meanMs: values.length ? total / values.length : NaN };
}

/** The process's RSS, sampled on a timer; the peak is what the table reports. */
export class RssSampler {
  private peak = 0;
  private timer?: NodeJS.Timeout;
  readonly startMb: number;

  constructor() {
    this.startMb = process.memoryUsage.rss() / MB;
    this.peak = this.startMb;
  }

  start(): void {
    this.timer = setInterval(() => this.sample(), RSS_SAMPLE_MS);
    this.timer.unref();
  }

  /** Stops sampling; returns the peak in MB (including one last sample). */
  stop(): number {
    clearInterval(this.timer);
    this.sample();
    return this.peak;
  }

  private sample(): void {
    const rss = process.memoryUsage.rss() / MB;
    if (rss > this.peak) this.peak = rss;
  }
}

/** The kernel's peak RSS of this process (VmHWM), or null off Linux. */
export function highWaterMarkMb(): number | null {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) / 1024 : null;
  } catch {
    return null;
  }
}

let clockTicks: number | undefined;
/** USER_HZ: the unit of /proc/<pid>/stat's CPU times. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** CPU time (user + system, ms) a process has used so far, or null if it cannot be read. */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): state is field 3, utime 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond();
  } catch {
    return null;
  }
}

/** The child of `parentPid` running `command` (e.g. the emulator's java under its watchdog shell). */
export function childProcessNamed(parentPid: number, command: string): number | null {
  try {
    const children = readFileSync(`/proc/${parentPid}/task/${parentPid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return children.find((pid) => readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === command) ?? null;
  } catch {
    return null;
  }
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  memoryMb: number;
  node: string;
  platform: string;
}

export function machineInfo(): MachineInfo {
  const list = cpus();
  return { cpus: list.length, cpuModel: list[0]?.model ?? 'unknown', memoryMb: Math.round(totalmem() / MB), node: process.version, platform: `${process.platform} ${process.arch}` };
}

/** 1-minute load average, rounded: this machine is shared, so every figure carries it. */
export function load1(): number {
  return Math.round(loadavg()[0] * 100) / 100;
}
