/**
 * Ingest: a Kafka topic → a streaming sink that writes a micro-batch every trigger interval
 * into Hive-partitioned Parquet (dt=…/hour=…), one file per partition per trigger, and commits
 * each micro-batch as a new manifest version (files + the next source offset, together).
 *
 * The sink writes Parquet from Node with `@dsnp/parquetjs` (see the lab README for why that and
 * not DuckDB COPY). The trigger runs on processing time = the Kafka message timestamp, replayed:
 * the same topic gives the same micro-batches and the same files on every run, however fast the
 * consumer happens to be (a wall-clock trigger would make the file count depend on machine load).
 */
import parquet from '@dsnp/parquetjs';
import { mkdirSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { join } from 'node:path';
import type { ClickEvent } from '../../fixtures/compaction.ts';
import { partitionOf } from '../../fixtures/compaction.ts';
import { errorLine } from '../errors.ts';
import { createTopics, heartbeating, kafkaClient, runInGroup } from '../engines/kafka/admin.ts';
import { commitManifest, createTable, partitionDir, partitionKey, readManifest, type DataFile } from './table.ts';

const SCHEMA = new parquet.ParquetSchema({
  event_id: { type: 'INT64', compression: 'SNAPPY' },
  ts: { type: 'TIMESTAMP_MILLIS', compression: 'SNAPPY' },
  user_id: { type: 'INT32', compression: 'SNAPPY' },
  event_type: { type: 'UTF8', compression: 'SNAPPY' },
  amount_cents: { type: 'INT64', compression: 'SNAPPY' },
  country: { type: 'UTF8', compression: 'SNAPPY' },
});

/** One Parquet file with the sink's schema, encoded in memory. */
export async function encodeParquetFile(rows: readonly ClickEvent[]): Promise<Buffer> {
  // Encoded in memory, then written with one call: a file stream per tiny file costs more than the encoding.
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  const w = await parquet.ParquetWriter.openStream(SCHEMA, sink as unknown as Parameters<typeof parquet.ParquetWriter.openStream>[1]);
  for (const e of rows) {
    await w.appendRow({ event_id: e.event_id, ts: new Date(e.ts), user_id: e.user_id, event_type: e.event_type, amount_cents: e.amount_cents, country: e.country });
  }
  await w.close();
  return Buffer.concat(chunks);
}

/** Writes one Parquet file with the sink's schema. */
export async function writeParquetFile(file: string, rows: readonly ClickEvent[]): Promise<void> {
  await writeFile(file, await encodeParquetFile(rows));
}

/** The trigger window an arrival falls in (processing-time trigger, aligned to the epoch like Spark's). */
export function triggerWindow(arrival: number, triggerMs: number): number {
  return Math.floor(arrival / triggerMs);
}

export interface MicroBatchPlan {
  triggerMs: number;
  batches: number;
  /** One per (trigger, partition) with rows: what the sink writes. */
  files: number;
  rows: number;
  /** Worst processing-time lag: from an event's arrival to the flush that makes it readable. */
  worstFreshnessMs: number;
}

/**
 * What a sink with this trigger would write for these events: pure counting, no I/O. The sink
 * below writes exactly these files (the lab checks planned = written for the trigger it ran).
 */
export function planMicroBatches(events: readonly ClickEvent[], triggerMs: number): MicroBatchPlan {
  const byWindow = new Map<number, Set<string>>();
  let worst = 0;
  for (const e of events) {
    const w = triggerWindow(e.arrival, triggerMs);
    let parts = byWindow.get(w);
    if (!parts) byWindow.set(w, (parts = new Set()));
    parts.add(partitionKey(partitionOf(e.ts)));
    worst = Math.max(worst, (w + 1) * triggerMs - e.arrival);
  }
  let files = 0;
  for (const p of byWindow.values()) files += p.size;
  return { triggerMs, batches: byWindow.size, files, rows: events.length, worstFreshnessMs: worst };
}

export interface SinkStats {
  batches: number;
  filesWritten: number;
  rows: number;
  commits: number;
}

/**
 * The streaming sink: buffers events of the current trigger window; when an event of a later
 * window arrives (or the stream ends), it flushes: one Parquet file per partition in the buffer,
 * then one manifest commit adding them with the source offset after the batch.
 */
export class MicroBatchSink {
  private buffer: ClickEvent[] = [];
  private window: number | null = null;
  private lastOffset: string | undefined;
  /** Partition directories already created. */
  private readonly dirs = new Set<string>();
  readonly stats: SinkStats = { batches: 0, filesWritten: 0, rows: 0, commits: 0 };

  constructor(
    readonly dir: string,
    readonly triggerMs: number,
  ) {
    try {
      readManifest(dir);
    } catch {
      createTable(dir);
    }
  }

  /** Adds one consumed event; flushes the previous window first if this one starts a new window. */
  async add(e: ClickEvent, nextOffset?: string): Promise<void> {
    const w = triggerWindow(e.arrival, this.triggerMs);
    if (this.window !== null && w !== this.window) await this.flush();
    this.window = w;
    this.buffer.push(e);
    this.lastOffset = nextOffset ?? this.lastOffset;
  }

  /** Writes the buffered micro-batch: one file per partition, then one commit. */
  async flush(): Promise<void> {
    if (this.buffer.length === 0) return;
    const batch = this.stats.batches + 1;
    const byPartition = new Map<string, { dt: string; hour: number; rows: ClickEvent[] }>();
    for (const e of this.buffer) {
      const p = partitionOf(e.ts);
      const k = partitionKey(p);
      let g = byPartition.get(k);
      if (!g) byPartition.set(k, (g = { ...p, rows: [] }));
      g.rows.push(e);
    }
    const added: DataFile[] = [];
    const writes: Promise<void>[] = [];
    let seq = 0;
    try {
      for (const g of [...byPartition.values()].sort((a, b) => partitionKey(a).localeCompare(partitionKey(b)))) {
        const rel = `${partitionDir(g)}/part-b${String(batch).padStart(6, '0')}-${String(seq++).padStart(3, '0')}.parquet`;
        const pdir = partitionDir(g);
        if (!this.dirs.has(pdir)) mkdirSync(join(this.dir, pdir), { recursive: true });
        this.dirs.add(pdir);
        // Encoding is CPU (one at a time); the file writes run on the I/O threads meanwhile, all
        // of the batch's files at once. The commit below waits for every one of them.
        const bytes = await encodeParquetFile(g.rows);
        writes.push(writeFile(join(this.dir, rel), bytes));
        added.push({ path: rel, dt: g.dt, hour: g.hour, rows: g.rows.length, bytes: bytes.length });
      }
    } finally {
      // Settle every write started, even when an encoding failed: no write outlives the flush.
      const settled = await Promise.allSettled(writes);
      const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    }
    // Files first, then the commit that makes them (and the offset after them) visible at once.
    const base = readManifest(this.dir);
    commitManifest(this.dir, base, { operation: 'append', files: [...base.files, ...added], removed: base.removed, sourceOffset: this.lastOffset });
    this.stats.batches = batch;
    this.stats.filesWritten += added.length;
    this.stats.rows += this.buffer.length;
    this.stats.commits += 1;
    this.buffer = [];
  }
}

/** Creates the lab's single-partition topic (one partition: arrival order = offset order). */
export async function createTopic(brokers: string[], topic: string): Promise<void> {
  const admin = kafkaClient(brokers, 'de-lab-compaction-admin').admin();
  try {
    await admin.connect();
    await createTopics(admin, [topic], 1);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Produces the events, in order, to a topic made by `createTopic`; the message timestamp is the arrival time. */
export async function produceClickStream(brokers: string[], topic: string, events: readonly ClickEvent[]): Promise<void> {
  const kafka = kafkaClient(brokers, 'de-lab-compaction-producer');
  const producer = kafka.producer();
  try {
    await producer.connect();
    // One send at a time: concurrent sends could reorder the stream on the partition.
    for (let i = 0; i < events.length; i += 2000) {
      await producer.send({
        topic,
        acks: -1,
        messages: events.slice(i, i + 2000).map(({ arrival, ...e }) => ({ key: String(e.user_id), value: JSON.stringify(e), timestamp: String(arrival) })),
      });
    }
  } finally {
    await producer.disconnect().catch(() => undefined);
  }
}

/**
 * Consumes the topic through a consumer group into `sink` until offset `endOffset` (exclusive),
 * then flushes the last batch. Runs alongside the producer — a streaming job does not wait for
 * its input to be complete — so the end is given (a fresh topic of n messages ends at n) rather
 * than read from the broker at start.
 */
export async function streamTopicToTable(brokers: string[], names: { topic: string; group: string }, sink: MicroBatchSink, endOffset: number, opts: { timeoutMs?: number; signal?: AbortSignal; sessionTimeoutMs?: number } = {}): Promise<SinkStats & { redelivered: number }> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const kafka = kafkaClient(brokers, 'de-lab-compaction-sink');
  const high = BigInt(endOffset);
  // maxWaitTimeInMs: while the producer is still sending, a fetch that finds nothing new returns
  // after 100 ms instead of kafkajs's 5 s default. The session outlives a slow batch (and the
  // batch heartbeats while it runs): losing the membership mid-stream once stalled the sink in CI.
  const sessionTimeout = opts.sessionTimeoutMs ?? 30_000;
  const heartbeatMs = Math.min(1000, Math.floor(sessionTimeout / 3));
  const consumer = kafka.consumer({ groupId: names.group, sessionTimeout, heartbeatInterval: heartbeatMs, maxBytes: 8 << 20, maxWaitTimeInMs: 100 });
  try {
    let redelivered = 0;
    if (high === 0n) return { ...sink.stats, redelivered };
    await consumer.connect();
    await consumer.subscribe({ topic: names.topic, fromBeginning: true });
    let seen = 0n;
    let batches = 0;
    await new Promise<void>((resolve, reject) => {
      // Says how far it got: stuck at 0 (no assignment, no fetch) reads differently from slow.
      const timer = setTimeout(() => reject(new Error(`Kafka: sink did not reach offset ${high} of ${names.topic} in ${timeoutMs / 1000} s (at offset ${seen} after ${batches} batches)`)), timeoutMs);
      const fail = (err: Error) => (clearTimeout(timer), reject(err));
      // The producer failed, or the run was interrupted: stop waiting for offsets that will not come.
      if (opts.signal?.aborted) reject(new Error('ingest aborted'));
      opts.signal?.addEventListener('abort', () => fail(new Error('ingest aborted')), { once: true });
      void runInGroup(
        consumer,
        {
          autoCommit: false,
          eachBatch: ({ batch, heartbeat }) =>
            heartbeating(heartbeat, heartbeatMs, async () => {
              batches += 1;
              for (const m of batch.messages) {
                const next = BigInt(m.offset) + 1n;
                // Redelivered (a rebalance restarts the partition from its last committed offset,
                // none here): the sink holds it already, in a file or in its buffer.
                if (next <= seen) {
                  redelivered += 1;
                  continue;
                }
                seen = next;
                const e = JSON.parse(String(m.value)) as Omit<ClickEvent, 'arrival'>;
                await sink.add({ ...e, arrival: Number(m.timestamp) }, next.toString());
                if (next === high) {
                  await sink.flush();
                  clearTimeout(timer);
                  resolve();
                  return;
                }
              }
            }),
        },
        { what: 'the compaction sink', fail, stopping: () => opts.signal?.aborted ?? false },
      ).catch(reject);
    });
    return { ...sink.stats, redelivered };
  } finally {
    await consumer.stop().catch(() => undefined);
    await consumer.disconnect().catch(() => undefined);
  }
}

/** Deletes a topic the lab created. */
export async function deleteTopic(brokers: string[], topic: string): Promise<void> {
  const kafka = kafkaClient(brokers, 'de-lab-compaction-admin');
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.deleteTopics({ topics: [topic] });
  } catch {
    /* best effort */
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
