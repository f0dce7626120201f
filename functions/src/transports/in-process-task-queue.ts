import { TASK_ID_PATTERN, type EnqueueOptions, type EnqueueOutcome, type Task, type TaskDelivery, type TaskQueue } from './task-queue';

export type TaskHandler<P> = (payload: P, delivery: TaskDelivery) => Promise<void>;

export interface InProcessTaskQueueOptions {
  /** Handler calls in flight at most (Cloud Tasks: the queue's maxConcurrentDispatches). */
  concurrency: number;
  /** Deliveries of a failing task, the first included, before it is dropped (retryConfig.maxAttempts). */
  maxAttempts: number;
  /** Wait before the first retry; it doubles with each retry up to `maxBackoffMs` (min/maxBackoffSeconds). */
  minBackoffMs: number;
  maxBackoffMs: number;
}

export interface GivenUpTask {
  name: string;
  attempts: number;
  error: unknown;
}

interface Delivery {
  name: string;
  /** The payload as JSON text: every delivery parses its own copy, as a real queue's would. */
  json: string;
  retryCount: number;
}

/**
 * A task queue inside this process with the semantics the handlers must survive in production:
 * delivery at least once (a failed delivery is retried with doubling backoff, and a test can
 * deliver a task again with `deliverAgain`), bounded concurrency, and ids remembered for the
 * queue's whole life — as the Cloud Tasks emulator does — so a repeated enqueue is
 * 'already-exists'. The CLI's local runs and the tests use it.
 */
export class InProcessTaskQueue<P> implements TaskQueue<P> {
  private readonly seen = new Map<string, string>();
  private readonly ready: Delivery[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly dropped: GivenUpTask[] = [];
  private running = 0;
  private closed = false;

  constructor(
    private readonly handler: TaskHandler<P>,
    private readonly options: InProcessTaskQueueOptions,
  ) {
    const { concurrency, maxAttempts, minBackoffMs, maxBackoffMs } = options;
    if (!(Number.isInteger(concurrency) && concurrency >= 1)) throw new RangeError(`concurrency must be an integer ≥ 1, got ${concurrency}`);
    if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw new RangeError(`maxAttempts must be an integer ≥ 1, got ${maxAttempts}`);
    if (!(minBackoffMs >= 0 && maxBackoffMs >= minBackoffMs)) {
      throw new RangeError(`backoff must satisfy 0 ≤ minBackoffMs ≤ maxBackoffMs, got ${minBackoffMs} and ${maxBackoffMs}`);
    }
  }

  async enqueue(task: Task<P>, options: EnqueueOptions = {}): Promise<EnqueueOutcome> {
    if (this.closed) throw new Error(`the in-process task queue is closed: task ${task.name} was not enqueued`);
    if (!TASK_ID_PATTERN.test(task.name)) {
      // The same refusal as firebase-admin's, so a bad id fails here and not first in production.
      throw new RangeError(`task id ${JSON.stringify(task.name)} is invalid: it can contain only letters, numbers, hyphens and underscores, at most 500 characters`);
    }
    if (this.seen.has(task.name)) return 'already-exists';
    const json = JSON.stringify(task.payload);
    this.seen.set(task.name, json);
    this.schedule({ name: task.name, json, retryCount: 0 }, Math.max(0, (options.delaySeconds ?? 0) * 1000));
    return 'enqueued';
  }

  /** Delivers an enqueued task once more, as a queue may at any time (tests of duplicate deliveries). */
  deliverAgain(name: string): void {
    const json = this.seen.get(name);
    if (json === undefined) throw new Error(`task ${name} was never enqueued on this queue`);
    this.schedule({ name, json, retryCount: 0 }, 0);
  }

  /** Tasks dropped after their last attempt failed, with the last error. */
  get givenUp(): readonly GivenUpTask[] {
    return this.dropped;
  }

  /** Resolves once nothing is waiting, scheduled for a retry or running. */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Drops waiting and scheduled deliveries; calls in flight finish. Later enqueues throw. */
  close(): void {
    this.closed = true;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.ready.length = 0;
    this.settleIdle();
  }

  private isIdle(): boolean {
    return this.running === 0 && this.ready.length === 0 && this.timers.size === 0;
  }

  private settleIdle(): void {
    if (!this.isIdle()) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Deliveries always start from a timer: enqueue returns before its handler runs, as over the wire. */
  private schedule(delivery: Delivery, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      if (this.closed) return this.settleIdle();
      this.ready.push(delivery);
      this.pump();
    }, delayMs);
    this.timers.add(timer);
  }

  private pump(): void {
    while (this.running < this.options.concurrency && this.ready.length > 0) {
      const delivery = this.ready.shift()!;
      this.running++;
      void this.deliver(delivery).finally(() => {
        this.running--;
        this.pump();
        this.settleIdle();
      });
    }
  }

  private async deliver(delivery: Delivery): Promise<void> {
    try {
      await this.handler(JSON.parse(delivery.json) as P, { id: delivery.name, retryCount: delivery.retryCount });
    } catch (error) {
      const attempts = delivery.retryCount + 1;
      if (attempts >= this.options.maxAttempts || this.closed) {
        this.dropped.push({ name: delivery.name, attempts, error });
        return;
      }
      this.schedule({ ...delivery, retryCount: attempts }, this.backoffMs(delivery.retryCount));
    }
  }

  /** Cloud Tasks' doubling backoff: min, 2·min, 4·min, … capped at max. */
  private backoffMs(retry: number): number {
    return Math.min(this.options.maxBackoffMs, this.options.minBackoffMs * 2 ** retry);
  }
}
