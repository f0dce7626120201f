import { Firestore } from '@google-cloud/firestore';
import { tradesV2 } from '../functions/src/migrations/tradeya/trades';
import { runEngine } from './contender-engine';
import { runFireway } from './contender-fireway';
import { runHandLoop } from './contender-hand-loop';
import { highWaterMarkMb, RssSampler, summarizeLatencies } from './measure';
import type { ContenderJob, ContenderResult, EngineDetails } from './protocol';

/** What a contender reports; the child adds memory and CPU. */
export interface ContenderOutcome {
  processed: number;
  migrated: number;
  /** The migration itself, from its first read to its last commit (client set-up excluded). */
  elapsedMs: number;
  batchLatenciesMs: number[];
  engine?: EngineDetails;
}

/** The bench migrates the TradeYa trades with the project's own migration. */
export const BENCH_MIGRATION = tradesV2;

/** Runs one contender in this (child) process, sampling its RSS every 50 ms. */
export async function runContender(job: ContenderJob): Promise<ContenderResult> {
  const sampler = new RssSampler();
  const cpu = process.cpuUsage();
  sampler.start();
  let outcome: ContenderOutcome;
  if (job.contender === 'engine') {
    outcome = await runEngine(job.projectId, BENCH_MIGRATION);
  } else {
    const db = new Firestore({ projectId: job.projectId });
    try {
      outcome = job.contender === 'hand-loop' ? await runHandLoop(db, job.collection, BENCH_MIGRATION) : await runFireway(db, job.collection, BENCH_MIGRATION);
    } finally {
      await db.terminate();
    }
  }
  const peakRssMb = sampler.stop();
  const used = process.cpuUsage(cpu);
  return {
    contender: job.contender,
    processed: outcome.processed,
    migrated: outcome.migrated,
    notMigrated: outcome.processed - outcome.migrated,
    elapsedMs: outcome.elapsedMs,
    batches: summarizeLatencies(outcome.batchLatenciesMs),
    peakRssMb,
    startRssMb: sampler.startMb,
    hwmRssMb: highWaterMarkMb(),
    cpuUserMs: used.user / 1000,
    cpuSystemMs: used.system / 1000,
    ...(outcome.engine ? { engine: outcome.engine } : {}),
  };
}
