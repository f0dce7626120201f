import type { DeliveredMessage } from '../../functions/src/transports/alert-bus';
import { InProcessAlertBus } from '../../functions/src/transports/in-process-alert-bus';
import { TOPICS } from '../../functions/src/transports/names';

const OPTIONS = { maxDeliveryAttempts: 3, retryDelayMs: 5 };

describe('InProcessAlertBus', () => {
  it('delivers asynchronously, after publish returned its message id, as JSON with attributes', async () => {
    const bus = new InProcessAlertBus(OPTIONS);
    const received: DeliveredMessage[] = [];
    bus.subscribe(TOPICS.alerts, (message) => {
      received.push(message);
    });
    const id = await bus.publish(TOPICS.alerts, { runId: 'r1', at: new Date('2026-01-01T00:00:00.000Z'), score: 40 }, { severity: 'critical' });
    expect(received).toHaveLength(0);
    await bus.idle();
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({
      messageId: id,
      topic: 'migration-alerts',
      json: { runId: 'r1', at: '2026-01-01T00:00:00.000Z', score: 40 },
      attributes: { severity: 'critical' },
      deliveryAttempt: 1,
    });
    expect(received[0].publishTime).toBeInstanceOf(Date);
  });

  it('gives each message its own id and delivers only to the topic it was published on', async () => {
    const bus = new InProcessAlertBus(OPTIONS);
    const alerts: string[] = [];
    const rollbacks: string[] = [];
    bus.subscribe(TOPICS.alerts, (message) => void alerts.push(message.messageId));
    bus.subscribe(TOPICS.rollback, (message) => void rollbacks.push(message.messageId));
    const a = await bus.publish(TOPICS.alerts, { n: 1 });
    const b = await bus.publish(TOPICS.rollback, { n: 2 });
    await bus.idle();
    expect(a).not.toBe(b);
    expect(alerts).toEqual([a]);
    expect(rollbacks).toEqual([b]);
  });

  it('redelivers to a failing subscriber (at least once), with the delivery attempt', async () => {
    const bus = new InProcessAlertBus(OPTIONS);
    const attempts: number[] = [];
    bus.subscribe(TOPICS.alerts, (message) => {
      attempts.push(message.deliveryAttempt);
      if (message.deliveryAttempt < 3) throw new Error('not yet');
    });
    await bus.publish(TOPICS.alerts, { n: 1 });
    await bus.idle();
    expect(attempts).toEqual([1, 2, 3]);
    expect(bus.undelivered).toEqual([]);
  });

  it('reports a message a subscriber failed on every attempt; other subscribers still get it once', async () => {
    const bus = new InProcessAlertBus(OPTIONS);
    let healthy = 0;
    bus.subscribe(TOPICS.alerts, () => {
      throw new Error('always');
    });
    bus.subscribe(TOPICS.alerts, () => {
      healthy++;
    });
    const id = await bus.publish(TOPICS.alerts, { n: 1 });
    await bus.idle();
    expect(healthy).toBe(1);
    expect(bus.undelivered).toHaveLength(1);
    expect(bus.undelivered[0]).toMatchObject({ messageId: id, topic: 'migration-alerts', attempts: 3 });
  });

  it('lets a test redeliver a message (a duplicate): same id, same content', async () => {
    const bus = new InProcessAlertBus(OPTIONS);
    const received: DeliveredMessage[] = [];
    bus.subscribe(TOPICS.rollback, (message) => void received.push(message));
    const id = await bus.publish(TOPICS.rollback, { runId: 'r9' });
    await bus.idle();
    bus.redeliver(id);
    await bus.idle();
    expect(received.map((m) => [m.messageId, m.json])).toEqual([
      [id, { runId: 'r9' }],
      [id, { runId: 'r9' }],
    ]);
    expect(() => bus.redeliver('404')).toThrow('message 404 was never published on this bus');
  });

  it('drops messages published while a topic has no subscriber, as Pub/Sub does', async () => {
    const bus = new InProcessAlertBus(OPTIONS);
    await bus.publish(TOPICS.alerts, { early: true });
    const received: unknown[] = [];
    const unsubscribe = bus.subscribe(TOPICS.alerts, (message) => void received.push(message.json));
    await bus.publish(TOPICS.alerts, { late: true });
    await bus.idle();
    unsubscribe();
    await bus.publish(TOPICS.alerts, { gone: true });
    await bus.idle();
    expect(received).toEqual([{ late: true }]);
  });

  it('refuses attributes that are not strings', async () => {
    const bus = new InProcessAlertBus(OPTIONS);
    await expect(bus.publish(TOPICS.alerts, {}, { score: 40 as unknown as string })).rejects.toThrow('attribute score must be a string, got number');
  });
});
