import type { PubSub, Topic } from '@google-cloud/pubsub';
import type { AlertBus } from './alert-bus';
import type { TopicName } from './names';

/** gRPC NOT_FOUND: the topic does not exist. */
const NOT_FOUND = 5;

/**
 * Google Cloud Pub/Sub (the emulator when PUBSUB_EMULATOR_HOST is set). The bus never creates
 * topics: deploying the `onMessagePublished` functions creates them, and a publisher needs only
 * `roles/pubsub.publisher`, not the right to create topics.
 */
export class PubSubAlertBus implements AlertBus {
  // One Topic per name: each Topic object batches and keeps its own publisher connection.
  private readonly topics = new Map<TopicName, Topic>();

  constructor(private readonly pubsub: PubSub) {}

  async publish(topic: TopicName, message: Record<string, unknown>, attributes: Record<string, string> = {}): Promise<string> {
    let handle = this.topics.get(topic);
    if (!handle) {
      handle = this.pubsub.topic(topic);
      this.topics.set(topic, handle);
    }
    try {
      return await handle.publishMessage({ json: message, attributes });
    } catch (error) {
      if ((error as { code?: unknown }).code === NOT_FOUND) {
        throw new Error(
          `Pub/Sub topic "${topic}" does not exist in project ${this.pubsub.projectId}: deploy the firemigrate functions ` +
            `(their onMessagePublished triggers create it), or create it with: gcloud pubsub topics create ${topic}`,
          { cause: error },
        );
      }
      throw error;
    }
  }

  /** Sends what is batched and closes the connections. */
  async close(): Promise<void> {
    await Promise.all([...this.topics.values()].map((topic) => topic.flush()));
    await this.pubsub.close();
  }
}
