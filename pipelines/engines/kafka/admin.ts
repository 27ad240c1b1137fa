/**
 * Admin calls that kafkajs does not retry but a busy single broker can refuse for a moment.
 *
 * `admin.fetchTopicOffsets` gives up at once on "This server is not the leader for that
 * topic-partition" (NOT_LEADER_OR_FOLLOWER, retriable by the protocol): a partition created a moment
 * ago, or a broker that missed a controller heartbeat on a loaded machine, answers it until its
 * leadership settles. Retried here with fresh metadata until `timeoutMs`.
 */
import type { Admin } from 'kafkajs';

export interface PartitionEnd {
  partition: number;
  /** Offset of the next message to be written (the high watermark). */
  high: string;
  low: string;
}

export async function topicEnds(admin: Admin, topic: string, timeoutMs = 15000): Promise<PartitionEnd[]> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 50; ; delay = Math.min(1000, delay * 2)) {
    try {
      return (await admin.fetchTopicOffsets(topic)).map(({ partition, high, low }) => ({ partition, high, low }));
    } catch (err) {
      if (!(err as { retriable?: boolean }).retriable || Date.now() + delay > deadline) throw err;
      await new Promise((r) => setTimeout(r, delay));
      // Fresh leaders for the next try (kafkajs keeps the metadata that led to the refusal).
      await admin.fetchTopicMetadata({ topics: [topic] }).catch(() => undefined);
    }
  }
}
