/**
 * Schema change at a CDC source, end to end: `ALTER TABLE` on PostgreSQL while the cdc pipeline's
 * capture (pgoutput → Kafka, pipelines/cdc) runs, then an apply into the target that holds every
 * batch's schema against the target's contract (the same check the file loader uses):
 *
 *   compatible (a column added, a lossless widening)   evolve the target (ADD COLUMN / ALTER TYPE) and
 *                                                      MERGE the batch, in one transaction
 *   breaking (a column gone, renamed, retyped)         stop that partition at the batch's first offset,
 *                                                      one line naming table, column, old and new type;
 *                                                      everything from there stays in Kafka, unapplied
 *
 * A change stream cannot tell a rename from a drop plus an add: pgoutput's Relation message (and so
 * the event's schema) lists the columns as they are now, nothing more. The check calls a vanished
 * column next to a new one of the same type "renamed", and stops either way.
 */
import type { SqlEngine } from '../engines/types.ts';
import type { PgEngine } from '../engines/postgres/driver.ts';
import { readTopicsToEnd, kafkaClient, createTopics, type ReadMessage } from '../engines/kafka/admin.ts';
import { slotBehind, startCapture, topicFor } from '../cdc/index.ts';
import { applyBatch, batchSchema, TargetSchema } from '../cdc/apply.ts';
import { decodeChangeEvent } from '../cdc/debezium.ts';
import type { ChangeEvent, ColumnSpec, LogicalType } from '../cdc/envelope.ts';
import { currentWalLsn, dropSlotAndPublication } from '../cdc/source.ts';
import { quarantineLine, type BreakingChange } from './compat.ts';
import { evolveTable, tableColumns, type CompatibilityCheck } from './loader.ts';
import type { Column, ColumnType } from './types.ts';
import { lakeDialect } from './lake-dialect.ts';
import type { SourcePhase } from '../../fixtures/schema-evolution-cdc.ts';

const CONTRACT_TYPES: Record<LogicalType, ColumnType> = {
  int: { kind: 'int', bits: 32 },
  bigint: { kind: 'int', bits: 64 },
  double: { kind: 'double' },
  text: { kind: 'text' },
  bool: { kind: 'bool' },
  date: { kind: 'date' },
  timestamp: { kind: 'other', sql: 'TIMESTAMP' },
};

/** An event schema's columns as the contract check sees them. */
export const contractColumns = (cols: readonly ColumnSpec[]): Column[] => cols.map((c) => ({ name: c.name, type: CONTRACT_TYPES[c.type] }));

export interface CapturedSource {
  topic: string;
  /** Every message of the topic, per partition in offset order. */
  messages: ReadMessage[];
  /** The source table as it was right before the first breaking change: every value as text, by key. */
  beforeBreaking: Map<string, Record<string, string | null>>;
  /** The source table at the end (its columns as they are then). */
  final: Map<string, Record<string, string | null>>;
  /** The source's columns before the first breaking change. */
  columnsBeforeBreaking: string[];
}

export interface CaptureDeps {
  source: PgEngine;
  sourceUrl: string;
  brokers: string[];
  names: { topicPrefix: string; slot: string; publication: string };
  partitions: number;
  signal: AbortSignal;
  /** Registers a cleanup with the run (the capture process, slot, publication, topic). */
  onStop(fn: () => Promise<void>): void;
}

/** The source table, every value as text, keyed by order_id. */
async function readSource(source: PgEngine, table: string): Promise<{ rows: Map<string, Record<string, string | null>>; columns: string[] }> {
  const cols = (await source.query<{ c: string }>(`SELECT column_name AS c FROM information_schema.columns WHERE table_schema = 'public' AND table_name = $1 ORDER BY ordinal_position`, [table])).map((r) => r.c);
  const rows = await source.query<Record<string, string | null>>(`SELECT ${cols.map((c) => `CAST(${source.dialect.ident(c)} AS TEXT) AS ${source.dialect.ident(c)}`).join(', ')} FROM ${source.dialect.ident(table)}`);
  return { rows: new Map(rows.map((r) => [String(r.order_id), r])), columns: cols };
}

/**
 * Runs the phases on the source while the cdc capture process streams the table to Kafka; returns
 * once the slot has confirmed the last change (everything is in the topic), with the topic read back.
 */
export async function captureSourceChanges(deps: CaptureDeps, table: string, phases: readonly SourcePhase[]): Promise<CapturedSource> {
  const { source, names } = deps;
  const [initial, ...changes] = phases;
  const topic = topicFor(names.topicPrefix, `public.${table}`);
  const kafka = kafkaClient(deps.brokers, 'de-lab-schema-evolution-cdc');
  const admin = kafka.admin();
  await admin.connect();
  const capture = { job: null as ReturnType<typeof startCapture> | null };
  deps.onStop(async () => {
    await capture.job?.stop().catch(() => undefined);
    await dropSlotAndPublication(source, names);
    await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
    await admin.disconnect().catch(() => undefined);
  });
  for (const sql of initial!.dml) await source.exec(sql);
  await createTopics(admin, [topic], deps.partitions);
  capture.job = startCapture({ pgUrl: deps.sourceUrl, slot: names.slot, publication: names.publication, tables: [`public.${table}`], brokers: deps.brokers, topicPrefix: names.topicPrefix }, 'se-capture');
  let exited = false;
  void capture.job.exited.then(() => (exited = true));
  await capture.job.waitFor('ready', 60_000);
  let before: Awaited<ReturnType<typeof readSource>> | null = null;
  for (const p of changes) {
    if (deps.signal.aborted) throw new Error('interrupted');
    if (p.breaking && !before) before = await readSource(source, table);
    if (p.ddl) await source.exec(p.ddl);
    await source.transaction(async (tx) => {
      for (const sql of p.dml) await tx.exec(sql);
    });
  }
  const end = await currentWalLsn(source);
  const deadline = Date.now() + 60_000;
  while ((await slotBehind(source, names.slot, end)) !== 0) {
    if (deps.signal.aborted) throw new Error('interrupted');
    if (exited) throw new Error(`cdc capture exited: ${capture.job.stderrTail()}`);
    if (Date.now() > deadline) throw new Error(`schema-evolution cdc: the capture did not confirm ${end} within 60 s`);
    await new Promise((r) => setTimeout(r, 25));
  }
  await capture.job.stop();
  capture.job = null;
  const read = await readTopicsToEnd(kafka, admin, [topic], 30_000);
  const final = await readSource(source, table);
  before ??= final;
  return { topic, messages: read.messages, beforeBreaking: before.rows, final: final.rows, columnsBeforeBreaking: before.columns };
}

export interface CdcStop {
  partition: number;
  /** Offset of the first event not applied. */
  offset: number;
  /** Events of the partition from there on: still in Kafka, unapplied. */
  held: number;
  line: string;
  breaking: BreakingChange[];
}

export interface GatedApplyRun {
  /** Events applied (MERGEd) to the target. */
  applied: number;
  batches: number;
  /** What the applied batches changed in the target's contract, in order (`add coupon TEXT`, …). */
  changes: string[];
  stops: CdcStop[];
}

/** How a candidate's apply consumes the captured topic into `target.table`. */
export type CdcApplyFn = (target: SqlEngine, table: string, messages: readonly ReadMessage[]) => Promise<GatedApplyRun>;

/** Runs of consecutive events with the same schema, per partition, in offset order. */
export function schemaRuns(messages: readonly ReadMessage[]): { partition: number; offset: number; events: ChangeEvent[]; rest: number }[] {
  const runs: { partition: number; offset: number; events: ChangeEvent[]; rest: number }[] = [];
  const byPartition = new Map<number, ReadMessage[]>();
  for (const m of messages) if (m.value !== null) (byPartition.get(m.partition) ?? byPartition.set(m.partition, []).get(m.partition)!).push(m);
  for (const [partition, list] of [...byPartition].sort((a, b) => a[0] - b[0])) {
    let sig = '';
    list.forEach((m, i) => {
      const e = decodeChangeEvent(m.key, m.value!);
      const s = e.schema.columns.map((c) => `${c.name}:${c.type}`).join(',');
      if (s !== sig || runs.length === 0) runs.push({ partition, offset: m.offset, events: [], rest: list.length - i });
      sig = s;
      runs[runs.length - 1]!.events.push(e);
    });
  }
  return runs;
}

/**
 * The reference apply: per partition, each run of same-schema events is checked against the
 * target's contract; compatible runs evolve the target and MERGE in one transaction (the cdc
 * pipeline's batch apply, its watermark included); the first breaking run stops the partition.
 *
 * A schema the apply accepted already applies as it is: partitions are read one after the other,
 * so events written before an ADD COLUMN can come after another partition's events that evolved
 * the target — they are an older version of the contract, not a removal (the same key's changes
 * stay in order: a key lives in one partition).
 */
export const gatedApply =
  (check: CompatibilityCheck): CdcApplyFn =>
  async (target, table, messages) => {
    const run: GatedApplyRun = { applied: 0, batches: 0, changes: [], stops: [] };
    await new TargetSchema(target).ensureWatermarkTable();
    const stopped = new Set<number>();
    const accepted = new Set<string>();
    for (const r of schemaRuns(messages)) {
      if (stopped.has(r.partition)) continue;
      const incoming = contractColumns(r.events[0]!.schema.columns);
      const version = JSON.stringify(incoming);
      let prepare: ((tx: SqlEngine) => Promise<void>) | undefined;
      if (!accepted.has(version)) {
        const current = await tableColumns(target, table);
        const verdict = check(current, incoming);
        if (!verdict.compatible) {
          stopped.add(r.partition);
          run.stops.push({ partition: r.partition, offset: r.offset, held: r.rest, breaking: verdict.breaking, line: quarantineLine(`${table} (partition ${r.partition}, offset ${r.offset})`, verdict.breaking) });
          continue;
        }
        accepted.add(version);
        if (current.length) run.changes.push(...verdict.changes.filter((c) => !run.changes.includes(c)));
        // Inside the MERGE's transaction: the table takes the contract the batch loads under.
        prepare = (tx) => (current.length ? evolveTable(tx, table, current, verdict.contract) : createTable(tx, table, verdict.contract));
      }
      await applyBatch(target, { topic: table, partition: r.partition, table: { ...batchSchema(r.events), name: table }, events: r.events, prepare });
      run.applied += r.events.length;
      run.batches += 1;
    }
    return run;
  };

async function createTable(tx: SqlEngine, table: string, columns: readonly Column[]): Promise<void> {
  const { sqlType } = lakeDialect(tx);
  await tx.exec(`CREATE TABLE ${tx.dialect.ident(table)} (${columns.map((c) => `${tx.dialect.ident(c.name)} ${sqlType(c.type)}`).join(', ')})`);
}

/** The target table, every value as text, keyed by order_id. */
export async function readTarget(target: SqlEngine, table: string): Promise<{ rows: Map<string, Record<string, string | null>>; columns: string[] }> {
  const columns = (await tableColumns(target, table)).map((c) => c.name);
  if (columns.length === 0) return { rows: new Map(), columns };
  const text = target.dialect.types.text;
  const rows = await target.query<Record<string, string | null>>(`SELECT ${columns.map((c) => `CAST(${target.dialect.ident(c)} AS ${text}) AS ${target.dialect.ident(c)}`).join(', ')} FROM ${target.dialect.ident(table)}`);
  return { rows: new Map(rows.map((r) => [String(r.order_id), r])), columns };
}
