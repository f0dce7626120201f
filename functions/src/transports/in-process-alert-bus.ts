import type { AlertBus, DeliveredMessage } from './alert-bus';
import type { TopicName } from './names';

export type MessageHandler = (message: DeliveredMessage) => Promise<void> | void;

export interface InProcessAlertBusOptions {
  /** Deliveries of a message to a subscriber that keeps failing, the first included. */
  maxDeliveryAttempts: number;
  /** Wait before redelivering a message whose handler failed. */
  retryDelayMs: number;
}

export interface UndeliveredMessage {
  messageId: string;
  topic: TopicName;
  attempts: number;
  error: unknown;
}

interface Published {
  messageId: string;
  topic: TopicName;
  json: string;
  attributes: Record<string, string>;
  publishTime: Date;
}

/**
 * Pub/Sub inside this process, with the semantics subscribers must survive: handlers run
 * asynchronously (never inside `publish`), a failing handler gets the message again, and a test
 * can deliver any message again with `redeliver`. As with a real topic, a message published
 * while a topic has no subscriber reaches nobody.
 */
export class InProcessAlertBus implements AlertBus {
  private readonly subscribers = new Map<TopicName, Set<MessageHandler>>();
  private readonly published = new Map<string, Published>();
  private readonly failed: UndeliveredMessage[] = [];
  private readonly pending = new Set<Promise<void>>();
  private nextId = 1;

  constructor(private readonly options: InProcessAlertBusOptions) {
    if (!(Number.isInteger(options.maxDeliveryAttempts) && options.maxDeliveryAttempts >= 1)) {
      throw new RangeError(`maxDeliveryAttempts must be an integer ≥ 1, got ${options.maxDeliveryAttempts}`);
    }
    if (!(options.retryDelayMs >= 0)) throw new RangeError(`retryDelayMs must be ≥ 0, got ${options.retryDelayMs}`);
  }

  /** Subscribes `handler` to `topic`; returns the unsubscribe function. */
  subscribe(topic: TopicName, handler: MessageHandler): () => void {
    const handlers = this.subscribers.get(topic) ?? new Set<MessageHandler>();
    handlers.add(handler);
    this.subscribers.set(topic, handlers);
    return () => handlers.delete(handler);
  }

  async publish(topic: TopicName, message: Record<string, unknown>, attributes: Record<string, string> = {}): Promise<string> {
    for (const [key, value] of Object.entries(attributes)) {
      if (typeof value !== 'string') throw new TypeError(`attribute ${key} must be a string, got ${typeof value}`);
    }
    const messageId = String(this.nextId++);
    const entry: Published = { messageId, topic, json: JSON.stringify(message), attributes: { ...attributes }, publishTime: new Date() };
    this.published.set(messageId, entry);
    this.fanOut(entry);
    return messageId;
  }

  /** Delivers a published message again to every current subscriber of its topic (a duplicate delivery). */
  redeliver(messageId: string): void {
    const entry = this.published.get(messageId);
    if (!entry) throw new Error(`message ${messageId} was never published on this bus`);
    this.fanOut(entry);
  }

  /** Messages a subscriber failed on every attempt. */
  get undelivered(): readonly UndeliveredMessage[] {
    return this.failed;
  }

  /** Resolves once every delivery started so far (retries included) has finished. */
  async idle(): Promise<void> {
    while (this.pending.size > 0) await Promise.all([...this.pending]);
  }

  private fanOut(entry: Published): void {
    for (const handler of this.subscribers.get(entry.topic) ?? []) {
      const delivery = this.deliver(handler, entry);
      this.pending.add(delivery);
      void delivery.finally(() => this.pending.delete(delivery));
    }
  }

  private async deliver(handler: MessageHandler, entry: Published): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      // Never inside publish: a subscriber runs after the publisher has moved on.
      await new Promise((resolve) => setTimeout(resolve, attempt === 1 ? 0 : this.options.retryDelayMs));
      try {
        await handler({
          messageId: entry.messageId,
          topic: entry.topic,
          json: JSON.parse(entry.json),
          attributes: { ...entry.attributes },
          publishTime: entry.publishTime,
          deliveryAttempt: attempt,
        });
        return;
      } catch (error) {
        if (attempt >= this.options.maxDeliveryAttempts) {
          this.failed.push({ messageId: entry.messageId, topic: entry.topic, attempts: attempt, error });
          return;
        }
      }
    }
  }
}
