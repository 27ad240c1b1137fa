/**
 * The incremental extractor: one scheduled run reads the source rows changed since the saved
 * watermark, MERGEs them into the target, and saves the next watermark in the same target
 * transaction as the data. Small pieces, so the pitfalls (labs/incremental/pitfalls.ts) are the
 * same pipeline with one piece wrong.
 *
 * The watermark (`planExtraction`): a row's `updated_at` is its transaction's START time, so a
 * row can become visible long after rows with later timestamps. The next run must therefore
 * start no later than the start of any transaction that could still commit. Before the data is
 * read, one statement reads every open transaction of the source database from
 * `pg_stat_activity`; the next watermark is the earliest of their starts and this statement's own
 * start, floored to the millisecond, minus a small safety margin. The next run reads
 * `updated_at >= watermark` (inclusive: a tie at the boundary is read again) and the MERGE makes
 * re-reading a row harmless. Why it never loses a committed row: labs/incremental/README.md.
 *
 * The fence: the state row also carries a version that every writer of the target (a run, a
 * backfill) reads before it reads the source and checks, inside its target transaction, before
 * it commits — a writer overtaken by another commits nothing instead of writing older rows over
 * newer ones.
 */
import type { SqlEngine } from '../engines/types.ts';
import { LabError } from '../errors.ts';
import { ORDER_COLUMN_NAMES, TARGET, sourceSelectList, type TransformVersion } from './schema.ts';

export type ExtractPoint = 'data-written';

export interface ExtractOptions {
  /** The state row's key. */
  pipeline?: string;
  /** Source table. */
  table?: string;
  transform?: TransformVersion;
  /** Extra margin subtracted from the watermark (see README: the reporting window of pg_stat_activity). */
  safetyMarginMs?: number;
  /** Called at named points; the crash test SIGKILLs the extractor's process at `data-written`. */
  checkpoint?: (point: ExtractPoint) => Promise<void>;
}

export interface ExtractRun {
  /** The watermark read from the state (ISO), null on a first run. */
  from: string | null;
  /** The watermark saved for the next run (ISO). */
  next: string | null;
  rowsRead: number;
  /** Heap rows the source read to answer the extraction (pg_stat_xact_user_tables: seq_tup_read + idx_tup_fetch). */
  rowsScanned: number;
  ms: number;
}

/** One scheduled run of an extractor (the lab's implementation under judgement). */
export type ExtractFn = (src: SqlEngine, target: SqlEngine, opts?: ExtractOptions) => Promise<ExtractRun>;

/** What a run reads, decided before it reads: the query, its binds, and the watermark to save. */
export interface ExtractionPlan {
  sql: string;
  params: unknown[];
  next: Date | null;
}

/** The exercise: decide the extraction query and the next watermark from the saved one. */
export type PlanExtraction = (src: SqlEngine, saved: Date | null, opts: { table: string; transform: TransformVersion; safetyMarginMs: number }) => Promise<ExtractionPlan>;

export const DEFAULT_SAFETY_MARGIN_MS = 100;

const defaults = (o: ExtractOptions = {}) => ({
  pipeline: o.pipeline ?? 'orders',
  table: o.table ?? 'orders',
  transform: o.transform ?? ('v1' as TransformVersion),
  safetyMarginMs: o.safetyMarginMs ?? DEFAULT_SAFETY_MARGIN_MS,
  checkpoint: o.checkpoint,
});

/**
 * The reference watermark. `statement_timestamp()` is taken before pg_stat_activity is read, and
 * both before the data is read (a later statement, a later snapshot): a transaction the data read
 * cannot see either began after this statement started (its `now()` is later), or was open when
 * pg_stat_activity was read (its start is in the min). A backend still executing its BEGIN has
 * no xact_start yet but shows state 'active' with query_start = that BEGIN's start.
 */
export const planExtraction: PlanExtraction = async (src, saved, { table, transform, safetyMarginMs }) => {
  const [w] = await src.query<{ next: Date }>(
    `SELECT date_trunc('milliseconds',
              LEAST(statement_timestamp(),
                    (SELECT min(LEAST(xact_start, CASE WHEN state = 'active' THEN query_start END))
                       FROM pg_stat_activity
                      WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'))
              - make_interval(secs => CAST($1 AS DOUBLE PRECISION) / 1000)) AS next`,
    [safetyMarginMs],
  );
  const from = src.dialect.ident(table);
  return saved
    ? { sql: `SELECT ${sourceSelectList(transform)} FROM ${from} WHERE updated_at >= $1`, params: [saved], next: w!.next }
    : { sql: `SELECT ${sourceSelectList(transform)} FROM ${from}`, params: [], next: w!.next };
};

export interface SourceRow {
  id: number;
  customer_id: number;
  order_date: string;
  amount: number;
  revenue: number;
  status: string;
  updated_at: Date;
  deleted: boolean;
}

/**
 * Runs the extraction query and reads, in the same source transaction, how many heap rows the
 * source read for it: `pg_stat_xact_user_tables` before and after the query (it counts this
 * session's reads not yet flushed to the cumulative stats, so only the difference is this query's).
 */
export async function readChanges(src: SqlEngine, table: string, sql: string, params: readonly unknown[]): Promise<{ rows: SourceRow[]; scanned: number }> {
  const counter = async (tx: SqlEngine) => {
    const [s] = await tx.query<{ n: unknown }>(
      `SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) AS n FROM pg_stat_xact_user_tables WHERE relid = CAST($1 AS regclass)`,
      [src.dialect.ident(table)],
    );
    return Number(s?.n ?? 0);
  };
  return src.transaction(async (tx) => {
    const before = await counter(tx);
    const rows = await tx.query<SourceRow>(sql, params);
    return { rows, scanned: (await counter(tx)) - before };
  });
}

/** A timestamp as the target's TIMESTAMP (UTC) literal: no session time zone can shift it. */
export const utcText = (d: Date) => d.toISOString().replace('T', ' ').replace('Z', '');

/** Replaces the stage's content with `rows` (inside the caller's transaction). */
export async function stageRows(tx: SqlEngine, rows: readonly SourceRow[]): Promise<void> {
  await tx.exec(`DELETE FROM ${tx.dialect.ident(TARGET.stage)}`);
  if (rows.length === 0) return;
  await tx.insertRows(
    tx.dialect.ident(TARGET.stage),
    ORDER_COLUMN_NAMES,
    rows.map((r) => [r.id, r.customer_id, r.order_date, r.amount, r.revenue, r.status, utcText(r.updated_at), r.deleted]),
  );
}

/** MERGE the stage into the target by key: a row read twice (a rerun, a tie at the boundary) lands once. */
export async function mergeStage(tx: SqlEngine): Promise<void> {
  const { ident } = tx.dialect;
  const set = ORDER_COLUMN_NAMES.filter((c) => c !== 'id').map((c) => `${c} = s.${c}`).join(', ');
  await tx.exec(`
    MERGE INTO ${ident(TARGET.orders)} AS t
    USING ${ident(TARGET.stage)} AS s
    ON t.id = s.id
    WHEN MATCHED THEN UPDATE SET ${set}
    WHEN NOT MATCHED THEN INSERT (${ORDER_COLUMN_NAMES.join(', ')}) VALUES (${ORDER_COLUMN_NAMES.map((c) => `s.${c}`).join(', ')})`);
}

/** INSERT the stage's rows as they are (a backfill's replacement rows). */
export async function appendStage(tx: SqlEngine): Promise<void> {
  const { ident } = tx.dialect;
  await tx.exec(`INSERT INTO ${ident(TARGET.orders)} (${ORDER_COLUMN_NAMES.join(', ')}) SELECT ${ORDER_COLUMN_NAMES.join(', ')} FROM ${ident(TARGET.stage)}`);
}

/** Another writer (a backfill, a second run) changed the target since this one read its state. */
export class FenceError extends LabError {}

/**
 * Inside the writer's target transaction: the state's version is still the one read before the
 * source was read, else throws (nothing of this write is committed; the writer may retry).
 */
export async function checkFence(tx: SqlEngine, pipeline: string, expected: number): Promise<SavedState> {
  const now = await readState(tx, pipeline);
  if (now.version !== expected) throw new FenceError(`${pipeline}: the target was written (state version ${expected} → ${now.version}) since this writer read the source; nothing committed`);
  return now;
}

export interface SavedState {
  watermark: Date | null;
  /**
   * The fence: bumped by every write to the target (a run, a backfill). A writer reads it before
   * reading the source and commits only if it is unchanged — a write that landed in between may
   * hold newer rows than the ones this writer read.
   */
  version: number;
}

export async function readState(db: SqlEngine, pipeline: string): Promise<SavedState> {
  const [r] = await db.query<{ watermark: Date | null; version: unknown }>(`SELECT watermark, version FROM ${db.dialect.ident(TARGET.state)} WHERE pipeline = $1`, [pipeline]);
  return { watermark: r?.watermark ?? null, version: Number(r?.version ?? 0) };
}

export async function saveState(tx: SqlEngine, pipeline: string, watermark: Date | null, version: number): Promise<void> {
  const state = tx.dialect.ident(TARGET.state);
  await tx.exec(`DELETE FROM ${state} WHERE pipeline = $1`, [pipeline]);
  await tx.exec(`INSERT INTO ${state} (pipeline, watermark, version) VALUES ($1, ${watermark ? 'CAST($2 AS TIMESTAMP)' : 'NULL'}, ${watermark ? '$3' : '$2'})`, watermark ? [pipeline, utcText(watermark), version] : [pipeline, version]);
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

export type ResolvedOptions = ReturnType<typeof defaults>;

/** The target side of a run: land `rows` and save `next` (the reference does both in one transaction). */
export type WriteRun = (target: SqlEngine, rows: readonly SourceRow[], saved: SavedState, next: Date | null, o: ResolvedOptions) => Promise<void>;

/** One run: read the state, plan, read the changes from the source, then `write` them to the target. */
export async function extractRun(src: SqlEngine, target: SqlEngine, options: ExtractOptions | undefined, plan: PlanExtraction, write: WriteRun): Promise<ExtractRun> {
  const t0 = performance.now();
  const o = defaults(options);
  const saved = await readState(target, o.pipeline);
  const p = await plan(src, saved.watermark, o);
  const read = await readChanges(src, o.table, p.sql, p.params);
  await write(target, read.rows, saved, p.next, o);
  return { from: iso(saved.watermark), next: iso(p.next), rowsRead: read.rows.length, rowsScanned: read.scanned, ms: performance.now() - t0 };
}

/**
 * Stage + MERGE + save the state in ONE target transaction: a crash anywhere before its commit
 * leaves the target and its state as they were, and the next run reads the same window again.
 */
export const writeAtomically: WriteRun = (target, rows, saved, next, o) =>
  target.transaction(async (tx) => {
    await checkFence(tx, o.pipeline, saved.version);
    await stageRows(tx, rows);
    await mergeStage(tx);
    await o.checkpoint?.('data-written');
    await saveState(tx, o.pipeline, next, saved.version + 1);
  });

/** An extractor around a plan (the reference's, or a learner's), writing atomically. */
export function extractWith(plan: PlanExtraction): ExtractFn {
  return (src, target, options) => extractRun(src, target, options, plan, writeAtomically);
}

/** The reference extractor. */
export const extractIncremental: ExtractFn = extractWith(planExtraction);

/**
 * The incremental model of the seed answers: `updated_at > (SELECT max(updated_at) FROM target)`.
 * Kept here because the lab runs it beside every implementation, to name the rows it loses.
 */
export const extractNaiveMax: ExtractFn = async (src, target, options) => {
  const t0 = performance.now();
  const o = defaults(options);
  const [m] = await target.query<{ m: Date | null }>(`SELECT max(updated_at) AS m FROM ${target.dialect.ident(TARGET.orders)}`);
  const max = m?.m ?? null;
  const from = src.dialect.ident(o.table);
  const sql = `SELECT ${sourceSelectList(o.transform)} FROM ${from}${max ? ' WHERE updated_at > $1' : ''}`;
  const read = await readChanges(src, o.table, sql, max ? [max] : []);
  await target.transaction(async (tx) => {
    await stageRows(tx, read.rows);
    await mergeStage(tx);
    await o.checkpoint?.('data-written');
  });
  return { from: iso(max), next: null, rowsRead: read.rows.length, rowsScanned: read.scanned, ms: performance.now() - t0 };
};

/** Where an extractor's code lives, so the crash test can run it in a child process. */
export interface ExtractorSource {
  /** File URL of the module. */
  module: string;
  exportName: string;
  /** `plan`: the export is a `PlanExtraction`, run inside the reference extractor (the exercise). */
  kind: 'extract' | 'plan';
}

export const moduleUrl = import.meta.url;

/** The state table's rows as they are (to replay a window: restore them and run again). */
export async function snapshotState(db: SqlEngine): Promise<(SavedState & { pipeline: string })[]> {
  const rows = await db.query<{ pipeline: string; watermark: Date | null; version: unknown }>(`SELECT pipeline, watermark, version FROM ${db.dialect.ident(TARGET.state)}`);
  return rows.map((r) => ({ pipeline: r.pipeline, watermark: r.watermark, version: Number(r.version) }));
}

/** Puts the state table back to a `snapshotState` (one transaction). */
export async function restoreState(db: SqlEngine, rows: readonly (SavedState & { pipeline: string })[]): Promise<void> {
  await db.transaction(async (tx) => {
    await tx.exec(`DELETE FROM ${tx.dialect.ident(TARGET.state)}`);
    for (const r of rows) await saveState(tx, r.pipeline, r.watermark, r.version);
  });
}
