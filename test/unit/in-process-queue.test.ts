import { InProcessTaskQueue, type TaskHandler } from '../../functions/src/transports/in-process-task-queue';
import type { TaskDelivery } from '../../functions/src/transports/task-queue';

interface Payload {
  n: number;
  at?: unknown;
}

const FAST = { concurrency: 1, maxAttempts: 5, minBackoffMs: 20, maxBackoffMs: 1000 };

function recorder(behaviour: (payload: Payload, delivery: TaskDelivery) => Promise<void> | void = () => undefined) {
  const deliveries: Array<{ payload: Payload; delivery: TaskDelivery; at: number }> = [];
  const handler: TaskHandler<Payload> = async (payload, delivery) => {
    deliveries.push({ payload, delivery, at: Date.now() });
    await behaviour(payload, delivery);
  };
  return { deliveries, handler };
}

describe('InProcessTaskQueue', () => {
  it('delivers after enqueue returns, a JSON copy of the payload with the task id', async () => {
    const { deliveries, handler } = recorder();
    const queue = new InProcessTaskQueue<Payload>(handler, FAST);
    const payload = { n: 1, at: new Date('2026-01-02T03:04:05.000Z') };
    await expect(queue.enqueue({ name: 'task-1', payload })).resolves.toBe('enqueued');
    expect(deliveries).toHaveLength(0);
    await queue.idle();
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0].payload).toEqual({ n: 1, at: '2026-01-02T03:04:05.000Z' });
    expect(deliveries[0].delivery).toEqual({ id: 'task-1', retryCount: 0 });
  });

  it('remembers every id it has seen: a second enqueue is already-exists, even after the task ran', async () => {
    const { deliveries, handler } = recorder();
    const queue = new InProcessTaskQueue<Payload>(handler, FAST);
    await queue.enqueue({ name: 'same', payload: { n: 1 } });
    await expect(queue.enqueue({ name: 'same', payload: { n: 2 } })).resolves.toBe('already-exists');
    await queue.idle();
    await expect(queue.enqueue({ name: 'same', payload: { n: 3 } })).resolves.toBe('already-exists');
    await queue.idle();
    expect(deliveries.map((d) => d.payload.n)).toEqual([1]);
  });

  it('refuses ids the Cloud Tasks SDK would refuse', async () => {
    const queue = new InProcessTaskQueue<Payload>(recorder().handler, FAST);
    for (const name of ['run|p0000', 'run/p0000', '', 'x'.repeat(501)]) {
      await expect(queue.enqueue({ name, payload: { n: 0 } })).rejects.toThrow(/is invalid: it can contain only letters/);
    }
    await expect(queue.enqueue({ name: 'x'.repeat(500), payload: { n: 0 } })).resolves.toBe('enqueued');
    await queue.idle();
  });

  it('retries a failing task with doubling backoff and the retry count, until it succeeds', async () => {
    const { deliveries, handler } = recorder((_payload, delivery) => {
      if (delivery.retryCount < 3) throw new Error(`transient ${delivery.retryCount}`);
    });
    const queue = new InProcessTaskQueue<Payload>(handler, FAST);
    await queue.enqueue({ name: 'flaky', payload: { n: 7 } });
    await queue.idle();
    expect(deliveries.map((d) => d.delivery.retryCount)).toEqual([0, 1, 2, 3]);
    expect(deliveries.every((d) => d.payload.n === 7)).toBe(true);
    const gaps = deliveries.slice(1).map((d, i) => d.at - deliveries[i].at);
    // 20, 40, 80 ms (timers may fire a millisecond early, never much later on an idle loop).
    expect(gaps[0]).toBeGreaterThanOrEqual(19);
    expect(gaps[1]).toBeGreaterThanOrEqual(39);
    expect(gaps[2]).toBeGreaterThanOrEqual(79);
    expect(queue.givenUp).toEqual([]);
  });

  it('caps the backoff at maxBackoffMs', async () => {
    const { deliveries, handler } = recorder((_payload, delivery) => {
      if (delivery.retryCount < 3) throw new Error('fails');
    });
    const queue = new InProcessTaskQueue<Payload>(handler, { concurrency: 1, maxAttempts: 10, minBackoffMs: 30, maxBackoffMs: 30 });
    await queue.enqueue({ name: 'capped', payload: { n: 1 } });
    await queue.idle();
    const gaps = deliveries.slice(1).map((d, i) => d.at - deliveries[i].at);
    expect(gaps).toHaveLength(3);
    for (const gap of gaps) {
      expect(gap).toBeGreaterThanOrEqual(29);
      expect(gap).toBeLessThan(200);
    }
  });

  it('drops a task after maxAttempts deliveries and reports it with the last error', async () => {
    const { deliveries, handler } = recorder((_payload, delivery) => {
      throw new Error(`attempt ${delivery.retryCount + 1} failed`);
    });
    const queue = new InProcessTaskQueue<Payload>(handler, { ...FAST, maxAttempts: 3, minBackoffMs: 1 });
    await queue.enqueue({ name: 'doomed', payload: { n: 1 } });
    await queue.idle();
    expect(deliveries).toHaveLength(3);
    expect(queue.givenUp).toHaveLength(1);
    expect(queue.givenUp[0]).toMatchObject({ name: 'doomed', attempts: 3 });
    expect((queue.givenUp[0].error as Error).message).toBe('attempt 3 failed');
  });

  it('never runs more handlers at once than its concurrency, and runs them all', async () => {
    let inFlight = 0;
    let peak = 0;
    const { deliveries, handler } = recorder(async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 15));
      inFlight--;
    });
    const queue = new InProcessTaskQueue<Payload>(handler, { ...FAST, concurrency: 3 });
    await Promise.all(Array.from({ length: 10 }, (_, n) => queue.enqueue({ name: `t${n}`, payload: { n } })));
    await queue.idle();
    expect(peak).toBe(3);
    expect(deliveries.map((d) => d.payload.n).sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it('lets a test deliver a task again (a duplicate delivery), with the same id and payload', async () => {
    const { deliveries, handler } = recorder();
    const queue = new InProcessTaskQueue<Payload>(handler, FAST);
    await queue.enqueue({ name: 'dup', payload: { n: 4 } });
    await queue.idle();
    queue.deliverAgain('dup');
    queue.deliverAgain('dup');
    await queue.idle();
    expect(deliveries.map((d) => [d.delivery.id, d.payload.n])).toEqual([
      ['dup', 4],
      ['dup', 4],
      ['dup', 4],
    ]);
    expect(() => queue.deliverAgain('never')).toThrow('task never was never enqueued on this queue');
  });

  it('honours delaySeconds', async () => {
    const { deliveries, handler } = recorder();
    const queue = new InProcessTaskQueue<Payload>(handler, FAST);
    const start = Date.now();
    await queue.enqueue({ name: 'later', payload: { n: 1 } }, { delaySeconds: 0.1 });
    await queue.idle();
    expect(deliveries[0].at - start).toBeGreaterThanOrEqual(99);
  });

  it('close drops scheduled retries and refuses new tasks', async () => {
    const { deliveries, handler } = recorder(() => {
      throw new Error('fails');
    });
    const queue = new InProcessTaskQueue<Payload>(handler, { ...FAST, minBackoffMs: 10_000, maxBackoffMs: 10_000 });
    await queue.enqueue({ name: 'stuck', payload: { n: 1 } });
    while (deliveries.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
    queue.close();
    await queue.idle();
    expect(deliveries).toHaveLength(1);
    await expect(queue.enqueue({ name: 'after', payload: { n: 2 } })).rejects.toThrow(/closed/);
  });

  it('refuses impossible options', () => {
    const { handler } = recorder();
    expect(() => new InProcessTaskQueue<Payload>(handler, { ...FAST, concurrency: 0 })).toThrow(/concurrency/);
    expect(() => new InProcessTaskQueue<Payload>(handler, { ...FAST, maxAttempts: 0 })).toThrow(/maxAttempts/);
    expect(() => new InProcessTaskQueue<Payload>(handler, { ...FAST, minBackoffMs: 50, maxBackoffMs: 10 })).toThrow(/backoff/);
  });
});
