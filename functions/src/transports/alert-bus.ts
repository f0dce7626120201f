import type { TopicName } from './names';

/**
 * The alert-bus port (one method). Messages are JSON; attributes are short string labels a
 * subscription can filter on. Delivery is at least once and carries no publisher identity, so
 * subscribers de-duplicate by message id and trust only what they re-read from Firestore.
 */
export interface AlertBus {
  /** Resolves with the message id once the bus has accepted the message. */
  publish(topic: TopicName, message: Record<string, unknown>, attributes?: Record<string, string>): Promise<string>;
}

/** A message as a subscriber receives it (the shape of `onMessagePublished`'s `event.data.message`). */
export interface DeliveredMessage {
  messageId: string;
  topic: TopicName;
  /** The published object after a JSON round trip, as the subscriber of a real topic gets it. */
  json: unknown;
  attributes: Record<string, string>;
  publishTime: Date;
  /** 1 for the first delivery of this message to this subscriber. */
  deliveryAttempt: number;
}
