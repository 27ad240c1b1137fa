/**
 * Admin calls that kafkajs does not retry but a busy single broker can refuse for a moment.
 *
 * `admin.fetchTopicOffsets` gives up at once on "This server is not the leader for that
 * topic-partition" (NOT_LEADER_OR_FOLLOWER, retriable by the protocol): a partition created a moment
 * ago, or a broker that missed a controller heartbeat on a loaded machine, answers it until its
 * leadership settles. Retried here with fresh metadata until `timeoutMs`.
 */
import type { Admin, Kafka } from 'kafkajs';

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

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
}

/**
 * Every message of `topics` up to their ends at the time of the call, per partition in offset
 * order (a throwaway consumer group, deleted after). For audits and comparisons, not for speed.
 */
export async function readTopicsToEnd(kafka: Kafka, admin: Admin, topics: string[], timeoutMs = 30000): Promise<ReadMessage[]> {
  const ends = new Map<string, number>();
  let total = 0;
  for (const t of topics) {
    for (const p of await topicEnds(admin, t)) {
      ends.set(`${t}/${p.partition}`, Number(p.high));
      total += Number(p.high);
    }
  }
  const out: ReadMessage[] = [];
  if (total === 0) return out;
  const groupId = `de-lab-read-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50 });
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${out.length}/${total} messages of ${topics.join(', ')} in ${timeoutMs} ms`)), timeoutMs);
      void consumer
        .run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            const end = ends.get(`${batch.topic}/${batch.partition}`) ?? 0;
            for (const m of batch.messages) {
              if (Number(m.offset) < end) out.push({ topic: batch.topic, partition: batch.partition, offset: Number(m.offset), key: m.key?.toString() ?? null, value: m.value });
            }
            if (out.length >= total) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  return out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition || a.offset - b.offset));
}
