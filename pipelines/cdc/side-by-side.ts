/**
 * Our capture and real Debezium on one source and one workload, one after the other (each has the
 * machine to itself while it is timed), then both event streams read back and compared.
 *
 *   1. source tables and their initial rows; our capture starts (slot + snapshot) and stops, then
 *      Debezium does the same (its own slot and publication, its offsets kept in a file)
 *   2. the workload runs with neither capture running: both slots hold its WAL
 *   3. our capture restarts and streams it into Kafka, timed; then Debezium does, timed
 *   4. both sets of topics are read back: `compareCaptureStreams` says where they differ
 *
 * The rate of a capture is the events it streamed over the time from its first to its last event
 * in Kafka (topic ends sampled every 25 ms); its start (process, JVM, replication connection) is
 * reported apart as the time to its first event.
 */
import { join } from 'node:path';
import type { Admin, Kafka } from 'kafkajs';
import type { Engines } from '../engines/index.ts';
import type { PgEngine } from '../engines/postgres/driver.ts';
import { readTopicsToEnd, topicEnds, type ReadMessage } from '../engines/kafka/admin.ts';
import { startDebezium, type DebeziumWorker } from '../engines/debezium/provision.ts';
import { createTopics, kafkaClient, slotBehind, startCapture, topicFor } from './index.ts';
import { currentWalLsn, dropSlotAndPublication } from './source.ts';
import { decodeChangeEvent } from './debezium.ts';
import type { ChangeEvent } from './envelope.ts';

/** How often the topics' ends are sampled while a capture is timed. */
const SAMPLE_MS = 25;

export interface CaptureTiming {
  /** Change events streamed (tombstones not counted). */
  events: number;
  /** From the capture's start to its first event in Kafka. */
  firstEventMs: number;
  /** From its first to its last event in Kafka. */
  streamMs: number;
  eventsPerS: number;
}

export interface SideBySide {
  ours: ReadMessage[];
  debezium: ReadMessage[];
  timing: { ours: CaptureTiming; debezium: CaptureTiming };
  prefixes: { ours: string; debezium: string };
}

export interface SideBySideOptions {
  engines: Engines;
  /** The source database (tables created and filled by `prepare`). */
  source: PgEngine;
  sourceUrl: string;
  tables: readonly string[];
  /** Runs the workload against the source while no capture runs. */
  workload(): Promise<void>;
  partitions?: number;
  log?: (m: string) => void;
}

export async function runSideBySide(o: SideBySideOptions): Promise<SideBySide> {
  const { brokers } = await o.engines.kafka();
  const kafka = kafkaClient(brokers);
  const admin = kafka.admin();
  await admin.connect();
  const name = (b: string) => o.engines.name(b);
  const prefixes = { ours: name('ours'), debezium: name('dbz') };
  const topics = (prefix: string) => o.tables.map((t) => topicFor(prefix, t));
  const dir = o.engines.tempDir('side-by-side');
  const ours = { pgUrl: o.sourceUrl, slot: name('ours_slot'), publication: name('ours_pub'), tables: [...o.tables], brokers, topicPrefix: prefixes.ours };
  const dbz = { pgUrl: o.sourceUrl, slot: name('dbz_slot'), publication: name('dbz_pub'), tables: [...o.tables], brokers, topicPrefix: prefixes.debezium, offsetsFile: join(dir, 'debezium.offsets') };
  try {
    await createTopics(admin, [...topics(prefixes.ours), ...topics(prefixes.debezium)], o.partitions ?? 3);
    // 1. Slots and snapshots.
    const snapOurs = startCapture(ours);
    await snapOurs.waitFor('ready', 60000);
    await snapOurs.stop();
    const snapshotRows = await messageCount(admin, topics(prefixes.ours));
    let worker: DebeziumWorker | null = await startDebezium(dbz, o.engines.env, o.log);
    await untilCount(admin, topics(prefixes.debezium), snapshotRows, 60000, 'Debezium snapshot');
    await worker.stop(); // a clean stop flushes its offsets: the restart resumes after the snapshot
    worker = null;
    // 2. The workload, captured by neither yet.
    await o.workload();
    const endLsn = await currentWalLsn(o.source);
    // 3. Each capture alone, timed.
    const before = await messageCount(admin, topics(prefixes.ours));
    let t0 = performance.now();
    const run = startCapture(ours);
    const sampler = sampleCounts(admin, topics(prefixes.ours), before, t0);
    try {
      for (const deadline = Date.now() + 120000; (await slotBehind(o.source, ours.slot, endLsn)) !== 0; ) {
        if (Date.now() > deadline) throw new Error('our capture did not catch up in 120 s');
        await new Promise((r) => setTimeout(r, 25));
      }
    } finally {
      await run.stop();
    }
    const oursEnd = await messageCount(admin, topics(prefixes.ours));
    const oursTiming = await sampler.finish(oursEnd);
    t0 = performance.now();
    worker = await startDebezium(dbz, o.engines.env, o.log);
    const dbzBase = await messageCount(admin, topics(prefixes.debezium));
    const dbzSampler = sampleCounts(admin, topics(prefixes.debezium), snapshotRows, t0);
    try {
      await untilCount(admin, topics(prefixes.debezium), oursEnd, 120000, 'Debezium stream');
    } finally {
      await worker.stop();
    }
    const dbzTiming = await dbzSampler.finish(await messageCount(admin, topics(prefixes.debezium)));
    void dbzBase;
    // 4. Both streams back.
    const [a, b] = [(await readTopicsToEnd(kafka, admin, topics(prefixes.ours))).messages, (await readTopicsToEnd(kafka, admin, topics(prefixes.debezium))).messages];
    const streamed = (msgs: ReadMessage[]) => msgs.filter((m) => m.value !== null && decodeChangeEvent(m.key, m.value).op !== 'r').length;
    oursTiming.events = streamed(a);
    dbzTiming.events = streamed(b);
    // A capture that wrote every event between two samples (a small backlog) is counted as taking one
    // sample period: a lower bound of its rate, where a 0 ms stream would say nothing.
    for (const t of [oursTiming, dbzTiming]) t.eventsPerS = t.events > 0 ? Math.round((t.events / Math.max(t.streamMs, SAMPLE_MS)) * 1000) : 0;
    return { ours: a, debezium: b, timing: { ours: oursTiming, debezium: dbzTiming }, prefixes };
  } finally {
    for (const c of [ours, dbz]) await dropSlotAndPublication(o.source, c);
    await admin.deleteTopics({ topics: [...topics(prefixes.ours), ...topics(prefixes.debezium)] }).catch(() => undefined);
    await admin.disconnect();
  }
}

async function messageCount(admin: Admin, topics: string[]): Promise<number> {
  let n = 0;
  for (const t of topics) for (const p of await topicEnds(admin, t)) n += Number(p.high);
  return n;
}

async function untilCount(admin: Admin, topics: string[], count: number, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const n = await messageCount(admin, topics);
    if (n >= count) return;
    if (Date.now() > deadline) throw new Error(`${what}: ${n} of ${count} messages in Kafka after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Samples the topics' total every 25 ms: when the first new message appeared, and when the count reached its end. */
function sampleCounts(admin: Admin, topics: string[], base: number, t0: number) {
  const samples: { t: number; n: number }[] = [];
  let running = true;
  const loop = (async () => {
    while (running) {
      samples.push({ t: performance.now(), n: await messageCount(admin, topics).catch(() => base) });
      await new Promise((r) => setTimeout(r, SAMPLE_MS));
    }
  })();
  return {
    async finish(end: number): Promise<CaptureTiming> {
      running = false;
      await loop;
      const first = samples.find((s) => s.n > base)?.t ?? t0;
      const last = samples.find((s) => s.n >= end)?.t ?? performance.now();
      return { events: 0, firstEventMs: Math.round(first - t0), streamMs: Math.round(last - first), eventsPerS: 0 };
    },
  };
}

export interface StreamDiff {
  /** Rows (table:key) that are in one stream only. */
  keysOnlyIn: { ours: string[]; debezium: string[] };
  /** Rows whose messages went to different partitions. */
  partitionMismatch: string[];
  /** Rows whose op sequence (tombstones as `t`) differs: first one, with both sequences. */
  opSequenceMismatch: string[];
  /** Events (row, n-th change) whose before/after images differ after conversion. */
  valueMismatch: string[];
  /**
   * Images equal but for columns one side lacks and the other has as NULL: Debezium writes every
   * event with the table's schema as of its own start (a column added before it started is in
   * events written before the ALTER, as NULL); ours follows pgoutput's Relation messages. The
   * apply stores both alike (a column it lacks is NULL).
   */
  nullColumnsOnlyIn: number;
  /** Events whose WAL position (lsn) differs. */
  positionMismatch: string[];
  rows: number;
  events: number;
}

/** Compares two captures' streams of the same tables, row by row (`table:key`). */
export function compareCaptureStreams(s: Pick<SideBySide, 'ours' | 'debezium' | 'prefixes'>): StreamDiff {
  const byRow = (msgs: ReadMessage[], prefix: string) => {
    const rows = new Map<string, { partition: number; event: ChangeEvent | null }[]>();
    for (const m of msgs) {
      const row = `${m.topic.slice(prefix.length + 1)}:${m.key}`;
      const list = rows.get(row) ?? [];
      list.push({ partition: m.partition, event: m.value === null ? null : decodeChangeEvent(m.key, m.value) });
      rows.set(row, list);
    }
    return rows;
  };
  const a = byRow(s.ours, s.prefixes.ours);
  const b = byRow(s.debezium, s.prefixes.debezium);
  const diff: StreamDiff = { keysOnlyIn: { ours: [], debezium: [] }, partitionMismatch: [], opSequenceMismatch: [], valueMismatch: [], nullColumnsOnlyIn: 0, positionMismatch: [], rows: a.size, events: 0 };
  for (const row of a.keys()) if (!b.has(row)) diff.keysOnlyIn.ours.push(row);
  for (const row of b.keys()) if (!a.has(row)) diff.keysOnlyIn.debezium.push(row);
  const ops = (l: { event: ChangeEvent | null }[]) => l.map((x) => x.event?.op ?? 't').join('');
  for (const [row, ea] of a) {
    const eb = b.get(row);
    if (!eb) continue;
    if (new Set([...ea, ...eb].map((x) => x.partition)).size > 1) diff.partitionMismatch.push(row);
    if (ops(ea) !== ops(eb)) {
      diff.opSequenceMismatch.push(`${row}: ours ${ops(ea)} · debezium ${ops(eb)}`);
      continue;
    }
    ea.forEach((x, i) => {
      const y = eb[i]!;
      if (!x.event || !y.event) return;
      diff.events += 1;
      for (const side of ['before', 'after'] as const) {
        const [u, v] = [x.event[side], y.event[side]];
        const d = imageDifference(u, v);
        if (d === 'differs') diff.valueMismatch.push(`${row} #${i} ${x.event.op} ${side}: ours ${JSON.stringify(u)} · debezium ${JSON.stringify(v)}`);
        if (d === 'null-columns') diff.nullColumnsOnlyIn += 1;
      }
      if (x.event.op !== 'r' && x.event.source.lsn !== y.event.source.lsn) diff.positionMismatch.push(`${row} #${i}: ours lsn ${x.event.source.lsn} · debezium ${y.event.source.lsn}`);
    });
  }
  return diff;
}

/** 'same', 'null-columns' (equal once a column missing on one side is read as NULL), or 'differs'. */
function imageDifference(u: Record<string, unknown> | null, v: Record<string, unknown> | null): 'same' | 'null-columns' | 'differs' {
  if (u === null || v === null) return u === v ? 'same' : 'differs';
  let onlyNulls = false;
  for (const k of new Set([...Object.keys(u), ...Object.keys(v)])) {
    if (!(k in u) || !(k in v)) {
      if ((u[k] ?? null) !== null || (v[k] ?? null) !== null) return 'differs';
      onlyNulls = true;
    } else if (JSON.stringify(u[k]) !== JSON.stringify(v[k])) return 'differs';
  }
  return onlyNulls ? 'null-columns' : 'same';
}
