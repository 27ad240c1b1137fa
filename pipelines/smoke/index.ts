import { join } from 'node:path';
import { createTopics, kafkaClient } from '../engines/kafka/admin.ts';
import type { DuckDbEngine } from '../engines/duckdb/driver.ts';
import type { PgEngine } from '../engines/postgres/driver.ts';
import type { Prng } from '../../fixtures/prng.ts';
import { fingerprintSql } from '../engines/sql-common.ts';
import { topicEnds } from '../engines/kafka/admin.ts';

/** DuckDB writes `rows` rows to Parquet with COPY and reads them back. */
export async function parquetRoundTrip(db: DuckDbEngine, dir: string, rows: number, seed: number) {
  const file = join(dir, 'smoke.parquet');
  // setseed makes random() deterministic for this connection: same seed, same file content.
  await db.exec(`SELECT setseed(${(seed % 1000) / 1000})`);
  await db.exec(`CREATE OR REPLACE TABLE smoke_src AS SELECT i AS id, 'v' || CAST(CAST(floor(random() * 1000) AS INTEGER) AS VARCHAR) AS val FROM range(${Number(rows)}) t(i)`);
  await db.exec(`COPY smoke_src TO '${file.replace(/'/g, "''")}' (FORMAT parquet)`);
  const columns = [
    { expr: 'id', kind: 'int' },
    { expr: 'val', kind: 'text' },
  ] as const;
  const fp = (from: string) => db.query<{ rows: number; checksum: string }>(fingerprintSql(db.dialect, from, columns));
  const [[written], [read]] = [await fp('smoke_src'), await fp(`read_parquet('${file.replace(/'/g, "''")}')`)];
  return { file, writtenRows: written!.rows, readRows: read!.rows, writtenFingerprint: written!.checksum, readFingerprint: read!.checksum };
}

export type PgChange = 'insert' | 'update' | 'delete' | 'begin' | 'commit' | 'relation' | 'other';

/**
 * Reads a pgoutput logical replication slot through SQL (`pg_logical_slot_get_binary_changes`)
 * and names each message by its first byte (pgoutput protocol: B, C, I, U, D, R, …).
 */
export async function readPgoutputSlot(db: PgEngine, slot: string, publication: string): Promise<PgChange[]> {
  const rows = await db.query<{ data: Buffer }>(
    `SELECT data FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
    [slot, publication],
  );
  const names: Record<string, PgChange> = { I: 'insert', U: 'update', D: 'delete', B: 'begin', C: 'commit', R: 'relation' };
  return rows.map((r) => names[String.fromCharCode(r.data[0]!)] ?? 'other');
}

export interface SlotOptions {
  /** Create the slot before the writes (correct) or after them (the pitfall: it sees nothing). */
  createSlotBeforeWrites: boolean;
}

export async function logicalSlotSeesChanges(db: PgEngine, names: { slot: string; publication: string }, opts: SlotOptions, rng: Prng) {
  await db.exec(`CREATE TABLE smoke_accounts (id INTEGER PRIMARY KEY, balance INTEGER NOT NULL)`);
  await db.exec(`CREATE PUBLICATION ${names.publication} FOR TABLE smoke_accounts`);
  const createSlot = () => db.exec(`SELECT pg_create_logical_replication_slot($1, 'pgoutput')`, [names.slot]);
  if (opts.createSlotBeforeWrites) await createSlot();
  const id = rng.int(1, 1000);
  await db.exec(`INSERT INTO smoke_accounts VALUES ($1, $2)`, [id, rng.int(0, 100)]);
  await db.exec(`UPDATE smoke_accounts SET balance = balance + $2 WHERE id = $1`, [id, rng.int(1, 100)]);
  await db.exec(`DELETE FROM smoke_accounts WHERE id = $1`, [id]);
  if (!opts.createSlotBeforeWrites) await createSlot();
  try {
    const changes = await readPgoutputSlot(db, names.slot, names.publication);
    const count = (k: PgChange) => changes.filter((c) => c === k).length;
    return { inserts: count('insert'), updates: count('update'), deletes: count('delete'), messages: changes.length };
  } finally {
    // A slot pins WAL and blocks DROP DATABASE: never leave one behind.
    await db.exec(`SELECT pg_drop_replication_slot($1)`, [names.slot]).catch(() => undefined);
  }
}

/** Produces `n` keyed messages, consumes them through a consumer group, commits, reads the committed offset back. */
export async function kafkaRoundTrip(brokers: string[], names: { topic: string; group: string }, n: number, rng: Prng) {
  const kafka = kafkaClient(brokers, 'de-lab-smoke');
  const admin = kafka.admin();
  const producer = kafka.producer();
  const consumer = kafka.consumer({ groupId: names.group, sessionTimeout: 10000, heartbeatInterval: 1000 });
  try {
    await admin.connect();
    await createTopics(admin, [names.topic], 1);
    await producer.connect();
    const sent = Array.from({ length: n }, (_, i) => ({ key: `k${i % 7}`, value: `${i}:${rng.word()}` }));
    await producer.send({ topic: names.topic, acks: -1, messages: sent });
    await consumer.connect();
    await consumer.subscribe({ topic: names.topic, fromBeginning: true });
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`Kafka: consumed ${received.length}/${n} messages in 20 s`)), 20000);
      consumer
        .run({
          autoCommit: false,
          eachMessage: async ({ message, partition }) => {
            received.push(String(message.value));
            await consumer.commitOffsets([{ topic: names.topic, partition, offset: (BigInt(message.offset) + 1n).toString() }]);
            if (received.length === n) {
              clearTimeout(timer);
              resolve();
            }
          },
        })
        .catch(reject);
    });
    await consumer.stop();
    const [committed] = await admin.fetchOffsets({ groupId: names.group, topics: [names.topic] });
    const [end] = await topicEnds(admin, names.topic);
    return {
      produced: n,
      consumed: received.length,
      inOrder: received.every((v, i) => v === sent[i]!.value),
      committedOffset: Number(committed!.partitions[0]!.offset),
      highWatermark: Number(end!.high),
    };
  } finally {
    await Promise.allSettled([consumer.disconnect(), producer.disconnect()]);
    await admin.deleteTopics({ topics: [names.topic] }).catch(() => undefined);
    await admin.disconnect();
  }
}
