/**
 * Capture: Postgres logical decoding (pgoutput, over the replication protocol) → Debezium-shaped
 * events → Kafka, one topic per table, key = primary key.
 *
 * Guarantees, and how:
 *  - Initial snapshot consistent with the slot: the slot is created with an exported snapshot
 *    (`CREATE_REPLICATION_SLOT … (SNAPSHOT 'export')`) and the tables are read in a REPEATABLE READ
 *    transaction that adopts it (`SET TRANSACTION SNAPSHOT`). Rows committed before the slot's
 *    consistent point are in the snapshot (op=r); everything after is streamed. No gap, no double.
 *  - At-least-once into Kafka: the slot's confirmed LSN moves only after Kafka acknowledged every
 *    event up to it (acks=all). A crash in between re-sends those transactions on restart; the apply
 *    side recognises them by position and ignores them.
 *  - Tombstone after each delete (same key, null value).
 */
import pg from 'pg';
import { kafkaClient } from '../engines/kafka/admin.ts';
import { Partitioners, type Message, type Producer } from 'kafkajs';
import { LogicalReplicationService, PgoutputPlugin } from 'pg-logical-replication';
import type { Pgoutput } from 'pg-logical-replication';
import { crashPoint, send, type CrashSpec } from '../engines/child.ts';
import { formatLsn, jsonValue, keyOf, logicalTypeOfOid, parseLsn, type ChangeEvent, type ColumnSpec, type Op, type RowImage, type TableSchema } from './envelope.ts';
import { nameLiteral } from '../engines/sql-common.ts';

export interface CaptureConfig {
  pgUrl: string;
  slot: string;
  publication: string;
  /** Source tables, `schema.table`. */
  tables: string[];
  brokers: string[];
  topicPrefix: string;
  /** Flush to Kafka after this many events, or `lingerMs` after the first unflushed one. */
  flushEvents?: number;
  lingerMs?: number;
  /** `capture:after-kafka-ack`: die after Kafka acked a flush and before the slot is acknowledged. */
  crash?: CrashSpec;
}

export const CAPTURE_CRASH_POINT = 'capture:after-kafka-ack';

export function topicFor(prefix: string, table: string): string {
  return `${prefix}.${table}`;
}

const ident = (n: string) => `"${n.replace(/"/g, '""')}"`;
const qualified = (t: string) => t.split('.').map(ident).join('.');

/**
 * Every value as the text Postgres sent: one conversion (`jsonValue`) for snapshot and stream alike
 * (pg-logical-replication decodes pgoutput through the same `pg.types` parsers). Every built-in
 * type, not a list: a type left to pg's parser arrives as something else — jsonb as a parsed
 * object (nested JSON in the event while the schema says text), arrays as arrays, bytea as a Buffer.
 * Process-global on purpose: the capture runs in its own process.
 */
function useTextValues(): void {
  for (const oid of new Set(Object.values(pg.types.builtins))) pg.types.setTypeParser(oid, (s: string) => s);
}

interface TableInfo {
  schema: TableSchema;
  qualifiedName: string;
  schemaJson?: string;
}

/** Columns and primary key of a table, read from the catalog (inside the snapshot when there is one). */
async function describeTable(client: pg.Client, table: string): Promise<TableInfo> {
  const cols = await client.query<{ attname: string; atttypid: string }>(
    `SELECT attname, atttypid FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum`,
    [table],
  );
  const key = await client.query<{ attname: string }>(
    `SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
      WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)`,
    [table],
  );
  if (key.rows.length === 0) throw new Error(`cdc: table ${table} has no primary key (the Kafka key and the MERGE need one)`);
  const columns: ColumnSpec[] = cols.rows.map((c) => ({ name: c.attname, type: logicalTypeOfOid(Number(c.atttypid)) }));
  return { qualifiedName: table, schema: { name: table.split('.').pop()!, key: key.rows.map((k) => k.attname), columns } };
}

function toImage(schema: TableSchema, raw: Record<string, unknown> | null): RowImage | null {
  if (!raw) return null;
  const out: RowImage = {};
  for (const c of schema.columns) if (c.name in raw) out[c.name] = jsonValue(c.type, raw[c.name] as string | null);
  return out;
}

/** Creates the publication if missing (a publication is harmless; the slot is what pins WAL). */
async function ensurePublication(client: pg.Client, cfg: CaptureConfig): Promise<void> {
  const { rows } = await client.query(`SELECT 1 FROM pg_publication WHERE pubname = $1`, [cfg.publication]);
  if (rows.length === 0) await client.query(`CREATE PUBLICATION ${ident(cfg.publication)} FOR TABLE ${cfg.tables.map(qualified).join(', ')}`);
}

/**
 * Creates the slot with an exported snapshot and publishes every existing row as op=r, positioned
 * at the slot's consistent point. Returns that point: streaming starts there.
 */
async function snapshotAndCreateSlot(client: pg.Client, cfg: CaptureConfig, publish: (msgs: TopicMessage[]) => Promise<void>): Promise<{ lsn: bigint; rows: number }> {
  const repl = new pg.Client({ connectionString: cfg.pgUrl, replication: 'database' } as pg.ClientConfig);
  await repl.connect();
  try {
    const created = await repl.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${ident(cfg.slot)} LOGICAL pgoutput (SNAPSHOT 'export')`,
    );
    const { consistent_point, snapshot_name } = created.rows[0]!;
    const lsn = parseLsn(consistent_point);
    // The exported snapshot lives as long as `repl` stays idle: read everything before closing it.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const snapshotAt = Date.now();
    const messages: TopicMessage[] = [];
    try {
      await client.query(`SET TRANSACTION SNAPSHOT ${nameLiteral(snapshot_name)}`);
      for (const table of cfg.tables) {
        const info = await describeTable(client, table);
        const { rows } = await client.query(`SELECT * FROM ${qualified(table)} ORDER BY ${info.schema.key.map(ident).join(', ')}`);
        for (const row of rows) {
          const after = toImage(info.schema, row)!;
          messages.push(eventMessage(cfg, info, { op: 'r', before: null, after }, { lsn, commitLsn: lsn, txId: null, tsMs: snapshotAt, snapshot: true }));
        }
      }
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
    await publish(messages);
    return { lsn, rows: messages.length };
  } finally {
    await repl.end().catch(() => undefined);
  }
}

interface TopicMessage {
  topic: string;
  message: Message;
}

function eventMessage(
  cfg: CaptureConfig,
  info: TableInfo,
  change: { op: Op; before: RowImage | null; after: RowImage | null },
  at: { lsn: bigint; commitLsn: bigint; txId: number | null; tsMs: number; snapshot: boolean },
): TopicMessage {
  const row = (change.after ?? change.before)!;
  const event: Omit<ChangeEvent, 'schema'> = {
    op: change.op,
    before: change.before,
    after: change.after,
    ts_ms: Date.now(),
    source: {
      lsn: at.lsn.toString(),
      commit_lsn: at.commitLsn.toString(),
      txId: at.txId,
      table: info.qualifiedName,
      ts_ms: at.tsMs,
      snapshot: at.snapshot,
    },
  };
  // The schema is the same for every event of a table: serialised once, spliced in.
  info.schemaJson ??= JSON.stringify(info.schema);
  const value = `${JSON.stringify(event).slice(0, -1)},"schema":${info.schemaJson}}`;
  return { topic: topicFor(cfg.topicPrefix, info.qualifiedName), message: { key: keyOf(info.schema.key, row), value } };
}

async function sendAll(producer: Producer, msgs: TopicMessage[], chunk: number): Promise<void> {
  // Chunks keep every produce request well under the broker's 1 MB batch limit.
  for (let i = 0; i < msgs.length; i += chunk) {
    const byTopic = new Map<string, Message[]>();
    for (const m of msgs.slice(i, i + chunk)) {
      const list = byTopic.get(m.topic) ?? [];
      list.push(m.message);
      byTopic.set(m.topic, list);
    }
    await producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
  }
}

interface OpenTxn {
  xid: number;
  commitLsn: bigint;
  tsMs: number;
  changes: { lsn: bigint; info: TableInfo; op: Op; before: RowImage | null; after: RowImage | null }[];
}

/** The capture process's main loop: runs until `signal` aborts. */
export async function runCapture(cfg: CaptureConfig, signal: AbortSignal): Promise<void> {
  useTextValues();
  const flushEvents = cfg.flushEvents ?? 1000;
  const lingerMs = cfg.lingerMs ?? 20;
  const kafka = kafkaClient(cfg.brokers, 'de-lab-cdc-capture');
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false, maxInFlightRequests: 1 });
  const client = new pg.Client({ connectionString: cfg.pgUrl, application_name: 'de-lab-cdc-capture' });
  await Promise.all([producer.connect(), client.connect()]);
  const publish = (msgs: TopicMessage[]) => sendAll(producer, msgs, flushEvents);

  try {
    await ensurePublication(client, cfg);
    const slot = await client.query<{ confirmed_flush_lsn: string | null }>(`SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1`, [cfg.slot]);
    let startLsn: bigint;
    let snapshotRows = 0;
    if (slot.rows.length === 0) {
      const snap = await snapshotAndCreateSlot(client, cfg, publish);
      startLsn = snap.lsn;
      snapshotRows = snap.rows;
    } else {
      // Restart: resume where the slot was last acknowledged; Postgres re-sends what came after.
      startLsn = parseLsn(slot.rows[0]!.confirmed_flush_lsn ?? '0/0');
    }

    const tables = new Map<string, TableInfo>();
    for (const t of cfg.tables) tables.set(t, await describeTable(client, t));
    const infoFor = async (rel: Pgoutput.MessageRelation): Promise<TableInfo> => {
      const name = `${rel.schema}.${rel.name}`;
      const known = tables.get(name);
      const columns: ColumnSpec[] = rel.columns.map((c) => ({ name: c.name, type: logicalTypeOfOid(c.typeOid) }));
      if (known && known.schema.columns.length === columns.length && known.schema.columns.every((c, i) => c.name === columns[i]!.name && c.type === columns[i]!.type)) return known;
      // A Relation message with new columns (ALTER TABLE … ADD COLUMN): the event schema follows it.
      const info: TableInfo = { qualifiedName: name, schema: { name: rel.name, key: known?.schema.key ?? rel.keyColumns, columns } };
      tables.set(name, info);
      return info;
    };

    let confirmed = startLsn;
    let streamed = 0;
    let txn: OpenTxn | null = null;
    let buffer: TopicMessage[] = [];
    let bufferEvents = 0;
    let bufferAck: bigint | null = null;
    let inFlight = 0;
    let chain: Promise<void> = Promise.resolve();
    let linger: NodeJS.Timeout | null = null;

    const service = new LogicalReplicationService(
      { connectionString: cfg.pgUrl, application_name: 'de-lab-cdc-capture' },
      // No automatic acknowledgement (the library would confirm what it *received*, not what Kafka holds).
      { acknowledge: { auto: false, timeoutSeconds: 0 }, flowControl: { enabled: true } },
    );
    // The library reports `lsn + 1` as flushed; we confirm exact positions.
    const confirm = async (lsn: bigint) => {
      if (lsn > confirmed) confirmed = lsn;
      await service.acknowledge(formatLsn(confirmed - 1n));
    };

    const flush = async () => {
      if (linger) clearTimeout(linger);
      linger = null;
      if (buffer.length === 0) return;
      const msgs = buffer;
      const events = bufferEvents;
      const ack = bufferAck!;
      buffer = [];
      bufferEvents = 0;
      bufferAck = null;
      await publish(msgs);
      streamed += events;
      crashPoint(cfg.crash, CAPTURE_CRASH_POINT, streamed, { ackLsn: formatLsn(ack) });
      await confirm(ack);
      send({ ev: 'flushed', events, streamed, lsn: ack.toString(), t: Date.now() });
    };
    const flushSerial = () => {
      inFlight += 1;
      chain = chain.then(flush).finally(() => void (inFlight -= 1));
      return chain;
    };

    service.on('data', async (lsnText: string, msg: Pgoutput.Message) => {
      switch (msg.tag) {
        case 'begin':
          txn = { xid: msg.xid, commitLsn: parseLsn(msg.commitLsn!), tsMs: Number(BigInt(msg.commitTime as unknown as bigint) / 1000n), changes: [] };
          return;
        case 'insert':
        case 'update':
        case 'delete': {
          const info = await infoFor(msg.relation);
          const lsn = parseLsn(lsnText);
          if (msg.tag === 'insert') {
            txn!.changes.push({ lsn, info, op: 'c', before: null, after: toImage(info.schema, msg.new) });
          } else if (msg.tag === 'update') {
            const before = toImage(info.schema, msg.old ?? msg.key);
            const after = toImage(info.schema, msg.new)!;
            if (before && keyOf(info.schema.key, before) !== keyOf(info.schema.key, after)) {
              // A primary-key change is a delete of the old key and a create of the new one (as Debezium does).
              txn!.changes.push({ lsn, info, op: 'd', before, after: null });
              txn!.changes.push({ lsn, info, op: 'c', before: null, after });
            } else {
              txn!.changes.push({ lsn, info, op: 'u', before, after });
            }
          } else {
            txn!.changes.push({ lsn, info, op: 'd', before: toImage(info.schema, msg.old ?? msg.key), after: null });
          }
          return;
        }
        case 'commit': {
          const t = txn!;
          txn = null;
          for (const c of t.changes) {
            const m = eventMessage(cfg, c.info, c, { lsn: c.lsn, commitLsn: t.commitLsn, txId: t.xid, tsMs: t.tsMs, snapshot: false });
            buffer.push(m);
            bufferEvents += 1;
            if (c.op === 'd') buffer.push({ topic: m.topic, message: { key: m.message.key, value: null } });
          }
          bufferAck = parseLsn(msg.commitEndLsn!);
          if (bufferEvents >= flushEvents) {
            // Keep decoding while Kafka acknowledges (acks stay in order: flushes are chained);
            // wait only when several flushes are queued — that is the backpressure.
            const flushed = flushSerial();
            if (inFlight >= 3) await flushed;
          }
          else if (!linger && buffer.length > 0) linger = setTimeout(() => void flushSerial().catch(fail), lingerMs);
          else if (buffer.length === 0) {
            // A transaction with nothing for us (another table, or empty): nothing to wait for.
            if (inFlight === 0) await confirm(bufferAck);
            bufferAck = null;
          }
          return;
        }
        default:
          return;
      }
    });

    service.on('heartbeat', (lsnText: string, _ts: number, shouldRespond: boolean) => {
      const internals = service as unknown as { _messageQueue: unknown[]; _processing: boolean };
      const idle = txn === null && buffer.length === 0 && inFlight === 0 && internals._messageQueue.length === 0 && !internals._processing;
      // Idle: everything decoded so far is in Kafka, so the server's position can be confirmed
      // (keeps the slot from pinning WAL written by other databases). Busy: just answer.
      if (idle) void confirm(parseLsn(lsnText)).catch(fail);
      else if (shouldRespond) void confirm(confirmed).catch(fail);
    });

    let failure: Error | null = null;
    let wake: () => void = () => undefined;
    const stopped = new Promise<void>((resolve) => (wake = resolve));
    function fail(err: unknown) {
      failure ??= err instanceof Error ? err : new Error(String(err));
      wake();
    }
    service.on('error', fail);
    signal.addEventListener('abort', () => wake(), { once: true });
    service.on('start', () => send({ ev: 'ready', startLsn: startLsn.toString(), snapshotRows }));

    await subscribeWithRetry(service, cfg.slot, cfg.publication, formatLsn(startLsn), signal, fail);
    await stopped;
    if (failure) throw failure;
    // Clean stop: drain what is decoded, then close the stream.
    await chain;
    await flushSerial();
    await service.destroy();
  } finally {
    await Promise.allSettled([producer.disconnect(), client.end()]);
  }
}

/**
 * START_REPLICATION, retried while the slot is still held by a previous (killed) capture: its
 * walsender lets go once it notices the dead connection.
 */
async function subscribeWithRetry(service: LogicalReplicationService, slot: string, publication: string, startLsn: string, signal: AbortSignal, fail: (e: unknown) => void): Promise<void> {
  const plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [publication] });
  for (let attempt = 0; ; attempt++) {
    const started = new Promise<void>((resolve) => service.once('start', () => resolve()));
    const running = service.subscribe(plugin, slot, startLsn);
    const outcome = await Promise.race([started.then(() => 'started' as const), running.then(() => 'ended' as const, (e: Error) => e)]);
    if (outcome === 'started') {
      void running.catch(fail);
      return;
    }
    if (outcome instanceof Error && /is active for PID/.test(outcome.message) && attempt < 100 && !signal.aborted) {
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    throw outcome instanceof Error ? outcome : new Error('replication stream ended before it started');
  }
}
