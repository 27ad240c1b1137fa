/**
 * Admin calls that kafkajs does not retry but a busy single broker can refuse for a moment.
 *
 * `admin.fetchTopicOffsets` gives up at once on "This server is not the leader for that
 * topic-partition" (NOT_LEADER_OR_FOLLOWER, retriable by the protocol): a partition created a moment
 * ago, or a broker that missed a controller heartbeat on a loaded machine, answers it until its
 * leadership settles. Retried here with fresh metadata until `timeoutMs`.
 */
import { Kafka, logLevel, type Admin, type Consumer } from 'kafkajs';
import { errorLine } from '../../errors.ts';

/** A kafkajs client for the lab's brokers, quiet (errors reach the caller, not the log). */
export function kafkaClient(brokers: string[], clientId = 'de-lab'): Kafka {
  return new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING });
}

/**
 * Creates `topics` with `partitions` each and returns once every partition has a leader. The
 * leader wait is ours: kafkajs's `waitForLeaders` retries only LEADER_NOT_AVAILABLE, but a loaded
 * KRaft broker can answer UNKNOWN_TOPIC_OR_PARTITION for a moment after the create returned (its
 * metadata cache lags the controller) — and a produce in that moment fails.
 */
export async function createTopics(admin: Admin, topics: string[], partitions: number, timeoutMs = 30_000): Promise<void> {
  await admin.createTopics({ topics: topics.map((topic) => ({ topic, numPartitions: partitions })), waitForLeaders: false });
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let error: unknown = null;
    try {
      const meta = await admin.fetchTopicMetadata({ topics });
      if (meta.topics.length === topics.length && meta.topics.every((t) => t.partitions.length === partitions && t.partitions.every((p) => p.leader >= 0))) return;
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type !== 'UNKNOWN_TOPIC_OR_PARTITION' && type !== 'LEADER_NOT_AVAILABLE') throw err;
      error = err;
    }
    if (Date.now() > deadline) throw new Error(`Kafka: ${topics.join(', ')} without a leader for every partition after ${timeoutMs / 1000} s${error ? ` (${errorLine(error)})` : ''}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

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

/**
 * Runs `work` while heartbeating every `intervalMs`. kafkajs heartbeats only between fetches: a
 * batch whose processing outlasts the session (a slow target, a loaded machine) loses the group
 * membership mid-batch, and the group then either hands the partition out again from the last
 * committed offset or drops the member for good (kafkajs crashes it with UNKNOWN_MEMBER_ID).
 */
export async function heartbeating<T>(heartbeat: () => Promise<void>, intervalMs: number, work: () => Promise<T>): Promise<T> {
  const beat = setInterval(() => void heartbeat().catch(() => undefined), intervalMs);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}

/** Group-membership errors: the coordinator dropped or fenced this member; joining again cures them. */
const MEMBERSHIP_LOST = new Set(['UNKNOWN_MEMBER_ID', 'ILLEGAL_GENERATION', 'REBALANCE_IN_PROGRESS', 'NOT_COORDINATOR_FOR_GROUP']);

export function lostMembership(err: unknown): boolean {
  for (let e = err as { type?: string; cause?: unknown } | undefined; e; e = e.cause as typeof e) {
    if (e.type && MEMBERSHIP_LOST.has(e.type)) return true;
  }
  return false;
}

export interface StayOptions {
  /** Names the consumer in the error. */
  what: string;
  /** Called once when the consumer stops for good (a crash kafkajs does not restart, or too many rejoins). */
  fail: (err: Error) => void;
  maxRejoins?: number;
  onRejoin?: (err: unknown) => void;
  /** True when the caller is stopping on purpose: no rejoin then. */
  stopping?: () => boolean;
}

/**
 * `consumer.run(config)`, kept in its group. `run()` resolves as soon as the consumer starts: a
 * crash later is only an event, and a caller waiting for offsets would wait for its timeout without
 * saying why. When the group dropped the member (a batch outlasted the session; kafkajs crashes the
 * consumer with UNKNOWN_MEMBER_ID and kin, restart: false) it joins again as a new member, from the
 * last committed offsets — the caller skips what it already holds. Any other crash calls `fail`.
 */
export async function runInGroup(consumer: Consumer, config: Parameters<Consumer['run']>[0], opts: StayOptions): Promise<void> {
  const max = opts.maxRejoins ?? 20;
  let rejoins = 0;
  const fail = (err: unknown) => opts.fail(err instanceof Error ? err : new Error(String(err)));
  consumer.on(consumer.events.CRASH, (e) => {
    if (e.payload.restart) return; // kafkajs restarts it itself (e.g. "the coordinator is loading")
    if (lostMembership(e.payload.error) && !opts.stopping?.() && rejoins < max) {
      rejoins += 1;
      opts.onRejoin?.(e.payload.error);
      void consumer
        .connect()
        .then(() => consumer.run(config))
        .catch(fail);
      return;
    }
    fail(new Error(`Kafka: ${opts.what} stopped${rejoins ? ` after ${rejoins} rejoins` : ''}: ${errorLine(e.payload.error)}`));
  });
  await consumer.run(config);
}

export interface ReadMessage {
  topic: string;
  partition: number;
  offset: number;
  key: string | null;
  value: Buffer | null;
}

export interface TopicsRead {
  /** Per partition in offset order, topics in name order. */
  messages: ReadMessage[];
  /** performance.now() at the group join, the first batch, the last message (a consumer that only receives: a throughput floor). */
  joinedAt: number;
  firstAt: number;
  lastAt: number;
}

/**
 * Every message of `topics` up to their ends at the time of the call (a consumer group of its
 * own, deleted after). The timings say how fast a consumer that does nothing else reads them.
 */
export async function readTopicsToEnd(kafka: Kafka, admin: Admin, topics: string[], timeoutMs = 30000, groupId = `de-lab-read-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`): Promise<TopicsRead> {
  const ends = new Map<string, number>();
  let total = 0;
  for (const t of topics) {
    for (const p of await topicEnds(admin, t)) {
      ends.set(`${t}/${p.partition}`, Number(p.high));
      total += Number(p.high);
    }
  }
  const read: TopicsRead = { messages: [], joinedAt: 0, firstAt: 0, lastAt: 0 };
  if (total === 0) return read;
  const out = read.messages;
  const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 50 });
  // A floor's clock starts when the consumer has joined its group and may fetch (not at the first
  // batch: at a small scale that is one fetch, and the rate would be one fetch's size / 0 ms).
  consumer.on(consumer.events.GROUP_JOIN, () => void (read.joinedAt ||= performance.now()));
  try {
    await consumer.connect();
    await consumer.subscribe({ topics, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`read ${out.length}/${total} messages of ${topics.join(', ')} in ${timeoutMs} ms`)), timeoutMs);
      // Next offset wanted per partition: a rebalance hands a partition out again from its last
      // committed offset (none here), and what was read already must not be counted twice.
      const next = new Map<string, number>();
      void runInGroup(
        consumer,
        {
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            read.firstAt ||= performance.now();
            const tp = `${batch.topic}/${batch.partition}`;
            const end = ends.get(tp) ?? 0;
            for (const m of batch.messages) {
              const o = Number(m.offset);
              if (o < (next.get(tp) ?? 0) || o >= end) continue;
              next.set(tp, o + 1);
              out.push({ topic: batch.topic, partition: batch.partition, offset: o, key: m.key?.toString() ?? null, value: m.value });
            }
            read.lastAt = performance.now();
            if (out.length >= total) {
              clearTimeout(timer);
              resolve();
            }
          },
        },
        { what: `the reader of ${topics.join(', ')}`, fail: (err) => (clearTimeout(timer), reject(err)) },
      ).catch(reject);
    });
  } finally {
    await consumer.disconnect().catch(() => undefined);
    await admin.deleteGroups([groupId]).catch(() => undefined);
  }
  out.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition || a.offset - b.offset));
  return read;
}
