/**
 * Apply: Kafka micro-batches → one MERGE per batch into the target, exactly-once in effect.
 *
 *   1. keep the events beyond the applied watermark of this topic-partition (a replay is a no-op);
 *   2. keep the latest change per key BY POSITION (commit LSN, then change LSN) — not by ts_ms,
 *      which every change of one transaction shares;
 *   3. one MERGE: delete, update, or insert (an update for a key the target has never seen is an
 *      insert: the target may have missed the create, e.g. both landed in this batch);
 *   4. advance the watermark in the same transaction as the MERGE;
 *   5. only then commit the Kafka offsets (the consumer loop in apply-consumer.ts).
 *
 * `applyBatch` is the lab's exercise: `labs/cdc/exercise/stub.ts` has the same signature.
 */
import type { SqlEngine } from '../engines/types.ts';
import { ensureColumns } from '../engines/catalog.ts';
import { cdcDialect } from './dialect.ts';
import { comparePosition, keyOf, positionOf, type ChangeEvent, type LogicalType, type Position, type TableSchema } from './envelope.ts';

export const WATERMARK_TABLE = 'cdc_applied_lsn';

/** The apply process imports the batch apply by URL (see the exercise's `load`). */
export const MODULE_URL = import.meta.url;

export interface ApplyBatchInput {
  topic: string;
  partition: number;
  /** Target table: name, key, and every column seen in this batch (new source columns included). */
  table: TableSchema;
  /** The batch's change events in offset order (tombstones removed). */
  events: readonly ChangeEvent[];
  /** Runs first inside the batch's transaction (e.g. the DDL a schema-checked apply evolves the target with). */
  prepare?: (tx: SqlEngine) => Promise<void>;
}

export interface ApplyBatchResult {
  /** Events in the batch. */
  received: number;
  /** Events beyond the watermark (the rest were already applied: redelivery). */
  fresh: number;
  /** Rows given to the MERGE (latest change per key). */
  merged: number;
}

export type ApplyBatchFn = (db: SqlEngine, input: ApplyBatchInput) => Promise<ApplyBatchResult>;

// ---------------------------------------------------------------- helpers (also for the exercise)

export function columnType(db: SqlEngine, type: LogicalType): string {
  const t = db.dialect.types;
  return { int: t.int, bigint: t.bigint, double: t.double, text: t.text, bool: t.bool, timestamp: t.timestamp, date: t.date }[type];
}

/** The applied watermark of one topic-partition: the position of the last applied event. */
export async function readWatermark(db: SqlEngine, topic: string, partition: number): Promise<Position | null> {
  const rows = await db.query<{ commit_lsn: number | bigint; lsn: number | bigint }>(
    `SELECT commit_lsn, lsn FROM ${WATERMARK_TABLE} WHERE topic = $1 AND kafka_partition = $2`,
    [topic, partition],
  );
  const r = rows[0];
  return r ? { commitLsn: BigInt(r.commit_lsn), lsn: BigInt(r.lsn) } : null;
}

export async function writeWatermark(db: SqlEngine, topic: string, partition: number, at: Position, events: number): Promise<void> {
  await db.exec(`DELETE FROM ${WATERMARK_TABLE} WHERE topic = $1 AND kafka_partition = $2`, [topic, partition]);
  await db.exec(`INSERT INTO ${WATERMARK_TABLE} (topic, kafka_partition, commit_lsn, lsn, events, applied_at) VALUES ($1, $2, $3, $4, $5, CURRENT_TIMESTAMP)`, [
    topic,
    partition,
    lsnParam(at.commitLsn),
    lsnParam(at.lsn),
    events,
  ]);
}

/** LSNs as JSON numbers while exact (they are: 2^53 bytes of WAL is 9 PB), else strings. */
function jsonLsn(v: string): number | string {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : v;
}

function lsnParam(v: bigint): number | bigint {
  return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/**
 * Not yet applied? Beyond the watermark — or a snapshot row AT the watermark: snapshot rows share
 * the slot's consistent point as position, so a batch boundary can fall between them; applying one
 * twice is harmless while no streamed change has moved the watermark past the snapshot.
 */
export function isBeyondWatermark(e: ChangeEvent, wm: Position | null): boolean {
  if (!wm) return true;
  const c = comparePosition(positionOf(e), wm);
  return c > 0 || (c === 0 && e.op === 'r');
}

export const STAGE_META = ['_op', '_commit_lsn', '_lsn', '_ts_ms'] as const;

/**
 * Creates the empty temporary staging table `cdc_stage_<table>` (dropped first if there): the row
 * columns plus `_op`, `_commit_lsn`, `_lsn`, `_ts_ms`. Returns its quoted name.
 *
 * DDL: call it BEFORE `db.transaction` — on Snowflake every DDL statement commits the open
 * transaction, which would split the MERGE from its watermark. Inside the transaction only
 * `stageChanges` (an INSERT) touches the stage.
 */
export async function createStage(db: SqlEngine, table: TableSchema): Promise<string> {
  const q = (n: string) => db.dialect.ident(n);
  const stage = q(`cdc_stage_${table.name}`);
  await db.exec(`DROP TABLE IF EXISTS ${stage}`);
  const cols = table.columns.map((c) => `${q(c.name)} ${columnType(db, c.type)}`);
  const b = db.dialect.types.bigint;
  await db.exec(`CREATE TEMP TABLE ${stage} (${cols.join(', ')}, _op ${db.dialect.types.text}, _commit_lsn ${b}, _lsn ${b}, _ts_ms ${b})`);
  return stage;
}

/** Loads change rows (the after image, or before for a delete, plus the meta columns) into a stage from `createStage`. DML only. */
export async function stageChanges(db: SqlEngine, stage: string, table: TableSchema, events: readonly ChangeEvent[]): Promise<void> {
  const q = (n: string) => db.dialect.ident(n);
  const b = db.dialect.types.bigint;
  const columns = [
    ...table.columns.map((c) => ({ ident: q(c.name), name: c.name, type: columnType(db, c.type) })),
    ...STAGE_META.map((m) => ({ ident: m, name: m, type: m === '_op' ? db.dialect.types.text : b })),
  ];
  const rows = events.map((e) => {
    const image = (e.op === 'd' ? e.before : e.after) ?? {};
    const row: Record<string, unknown> = {};
    for (const c of table.columns) row[c.name] = image[c.name] ?? null;
    row._op = e.op;
    row._commit_lsn = jsonLsn(e.source.commit_lsn);
    row._lsn = jsonLsn(e.source.lsn);
    row._ts_ms = e.source.ts_ms;
    return row;
  });
  await db.exec(cdcDialect(db.name).insertFromJson(stage, columns), [JSON.stringify(rows)]);
}

/**
 * The MERGE of the latest change per key. `orderBy` decides "latest" — the reference orders by
 * position; the ts_ms pitfall passes its own.
 */
export function mergeLatestSql(db: SqlEngine, table: TableSchema, stage: string, opts: { orderBy?: string; insertOps?: string } = {}): string {
  const q = (n: string) => db.dialect.ident(n);
  const keys = table.key.map(q);
  const nonKey = table.columns.filter((c) => !table.key.includes(c.name)).map((c) => q(c.name));
  const all = table.columns.map((c) => q(c.name));
  const orderBy = opts.orderBy ?? 's._commit_lsn DESC, s._lsn DESC';
  const insertWhen = opts.insertOps ? `s._op IN (${opts.insertOps})` : `s._op <> 'd'`;
  return `
MERGE INTO ${q(table.name)} AS t
USING (
  SELECT * FROM (
    SELECT s.*, ROW_NUMBER() OVER (PARTITION BY ${keys.map((k) => `s.${k}`).join(', ')} ORDER BY ${orderBy}) AS _rn
    FROM ${stage} AS s
  ) AS ranked
  WHERE _rn = 1
) AS s
ON ${keys.map((k) => `t.${k} = s.${k}`).join(' AND ')}
WHEN MATCHED AND s._op = 'd' THEN DELETE
${nonKey.length ? `WHEN MATCHED THEN UPDATE SET ${nonKey.map((c) => `${c} = s.${c}`).join(', ')}` : ''}
WHEN NOT MATCHED AND ${insertWhen} THEN INSERT (${all.join(', ')}) VALUES (${all.map((c) => `s.${c}`).join(', ')})`;
}

// ---------------------------------------------------------------- the reference batch apply

export const applyBatch: ApplyBatchFn = applyBatchWith();

/**
 * The batch apply with the MERGE's options chosen (`mergeLatestSql`: the order that picks the latest
 * change, the ops that insert); `applyBatch` is it with the defaults. The lab's pitfalls swap one.
 */
export function applyBatchWith(merge: Parameters<typeof mergeLatestSql>[3] = {}): ApplyBatchFn {
  return async (db, input) => {
    // The stage is DDL: created before the transaction (Snowflake commits on DDL), so the MERGE and
    // the watermark commit together on every engine.
    const stage = await createStage(db, input.table);
    return db.transaction(async (tx) => {
      await input.prepare?.(tx);
      const wm = await readWatermark(tx, input.topic, input.partition);
      const fresh = input.events.filter((e) => isBeyondWatermark(e, wm));
      if (fresh.length === 0) return { received: input.events.length, fresh: 0, merged: 0 };
      await stageChanges(tx, stage, input.table, fresh);
      await tx.exec(mergeLatestSql(tx, input.table, stage, merge));
      const last = fresh.reduce((m, e) => (comparePosition(positionOf(e), m) > 0 ? positionOf(e) : m), positionOf(fresh[0]!));
      await writeWatermark(tx, input.topic, input.partition, last, fresh.length);
      const merged = new Set(fresh.map((e) => keyOf(input.table.key, (e.after ?? e.before)!))).size;
      return { received: input.events.length, fresh: fresh.length, merged };
    });
  };
}

// ---------------------------------------------------------------- target tables

/**
 * Creates the target table and the watermark table if missing, and adds columns that appeared
 * at the source (nullable: rows written before the change read NULL). Warehouse-style: no
 * primary-key constraint on the target (Snowflake would not enforce one either), so a wrong
 * apply shows up as duplicates instead of an error.
 */
export class TargetSchema {
  private readonly known = new Map<string, Set<string>>();
  constructor(private readonly db: SqlEngine) {}

  async ensureWatermarkTable(): Promise<void> {
    const t = this.db.dialect.types;
    await this.db.exec(
      `CREATE TABLE IF NOT EXISTS ${WATERMARK_TABLE} (topic ${t.text}, kafka_partition ${t.int}, commit_lsn ${t.bigint}, lsn ${t.bigint}, events ${t.bigint}, applied_at ${t.timestamp})`,
    );
  }

  /** Returns the columns added by this call. */
  async ensureTable(table: TableSchema): Promise<string[]> {
    let cols = this.known.get(table.name);
    if (cols && table.columns.every((c) => cols!.has(c.name))) return [];
    const added = await ensureColumns(this.db, table.name, table.columns.map((c) => ({ name: c.name, type: columnType(this.db, c.type) })));
    cols = new Set(table.columns.map((c) => c.name));
    this.known.set(table.name, cols);
    return added;
  }
}

/** The union of the schemas seen in a batch, in column order of the newest. */
export function batchSchema(events: readonly ChangeEvent[]): TableSchema {
  const newest = events[events.length - 1]!.schema;
  const seen = new Set(newest.columns.map((c) => c.name));
  const older = events.flatMap((e) => e.schema.columns).filter((c) => !seen.has(c.name) && (seen.add(c.name), true));
  return { ...newest, columns: [...newest.columns, ...older] };
}
