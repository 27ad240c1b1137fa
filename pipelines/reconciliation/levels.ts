/**
 * The reconciliation levels that come before (or instead of) bisection, each usable on its own:
 *
 *   countRows       count(*) on each side — the floor every other level is measured against
 *   keyDiff         missing, extra and duplicated keys (keys only cross the wire)
 *   fullPullDiff    the values level: every row of both sides pulled and compared per column
 *   partitionDiff   per-day aggregates computed in each database; names the days that differ
 *   tableFingerprint an order-independent checksum of a whole table
 */
import type { SqlEngine } from '../engines/types.ts';
import { canonicalPayload, comparableSelect, compareRowSets, normalisedExpr, rowHashExpr, toComparable, validateSpec, type ComparableRow, type ReconSpec, type RowDiff, type TableSide } from './spec.ts';
import { keyBounds, rangeFilter } from './bisect.ts';
import { canonicalText } from '../engines/sql-common.ts';

export async function countRows(side: TableSide): Promise<number> {
  const [r] = await side.db.query<{ n: unknown }>(`SELECT count(*) AS n FROM ${side.from}`);
  return Number(r!.n);
}

export interface CountResult {
  source: number;
  target: number;
  equal: boolean;
}

export async function compareCounts(source: TableSide, target: TableSide): Promise<CountResult> {
  const [s, t] = await Promise.all([countRows(source), countRows(target)]);
  return { source: s, target: t, equal: s === t };
}

export interface KeyDiffResult {
  missing: number[];
  extra: number[];
  /** Keys held more than once on a side, with the count on each side. */
  duplicated: { key: number; sourceCount: number; targetCount: number }[];
  /** Keys moved out of the databases. */
  keysFetched: number;
}

/** Distinct keys with their multiplicity: duplicates are counted in the database, not lost in a set. */
async function keyCounts(side: TableSide, spec: ReconSpec): Promise<Map<number, number>> {
  const k = side.db.dialect.ident(spec.key);
  const rows = await side.db.query<{ k: unknown; n: unknown }>(`SELECT CAST(${k} AS BIGINT) AS k, count(*) AS n FROM ${side.from} GROUP BY 1`);
  return new Map(rows.map((r) => [Number(r.k), Number(r.n)]));
}

/** The keys level: which keys are missing in the target, extra in it, or held more than once. */
export async function keyDiff(source: TableSide, target: TableSide, spec: ReconSpec): Promise<KeyDiffResult> {
  const [s, t] = await Promise.all([keyCounts(source, spec), keyCounts(target, spec)]);
  const missing: number[] = [];
  const extra: number[] = [];
  const duplicated: KeyDiffResult['duplicated'] = [];
  for (const [key, n] of s) {
    const m = t.get(key) ?? 0;
    if (n > 1 || m > 1) duplicated.push({ key, sourceCount: n, targetCount: m });
    else if (m === 0) missing.push(key);
  }
  for (const [key, m] of t) {
    if (s.has(key)) continue;
    if (m > 1) duplicated.push({ key, sourceCount: 0, targetCount: m });
    else extra.push(key);
  }
  const asc = (a: number, b: number) => a - b;
  return { missing: missing.sort(asc), extra: extra.sort(asc), duplicated: duplicated.sort((a, b) => a.key - b.key), keysFetched: s.size + t.size };
}

export interface FullPullOptions {
  /** Rows per page and side (pages are key ranges, so a duplicated key never straddles two). */
  pageRows?: number;
  /** The SELECT list of comparable values (default: normalised canonical values, see spec.ts). */
  select?: (db: SqlEngine, spec: ReconSpec) => string;
  /** How the rows of one page are compared (default: compareRowSets). */
  compare?: (spec: ReconSpec, source: readonly ComparableRow[], target: readonly ComparableRow[]) => RowDiff[];
}

export interface FullPullResult {
  diffs: RowDiff[];
  rowsFetched: number;
}

/**
 * The values level, and the baseline bisection is measured against: pull every row of both
 * sides (page by page, by key range) and compare per column, NULL-safe, with tolerances.
 * Exact, and simple — and it moves both tables over the wire.
 */
export async function fullPullDiff(source: TableSide, target: TableSide, spec: ReconSpec, options: FullPullOptions = {}): Promise<FullPullResult> {
  validateSpec(spec);
  const select = options.select ?? comparableSelect;
  const compare = options.compare ?? compareRowSets;
  const [sb, tb] = await Promise.all([keyBounds(source, spec), keyBounds(target, spec)]);
  const mins = [sb.min, tb.min].filter((v): v is number => v !== null);
  const maxs = [sb.max, tb.max].filter((v): v is number => v !== null);
  if (mins.length === 0) return { diffs: [], rowsFetched: 0 };
  const lo = Math.min(...mins);
  const hi = Math.max(...maxs);
  const pages = Math.max(1, Math.ceil(Math.max(sb.rows, tb.rows) / (options.pageRows ?? 100_000)));
  const width = Math.ceil((hi - lo + 1) / pages);
  const diffs: RowDiff[] = [];
  let rowsFetched = 0;
  const pull = async (side: TableSide, range: { lo: number; hi: number }) => {
    const f = rangeFilter(side.db, spec.key, [range]);
    const rows = await side.db.query<Record<string, unknown>>(`SELECT ${select(side.db, spec)} FROM ${side.from} WHERE ${f.sql}`, f.params);
    return rows.map((r) => toComparable(spec, r));
  };
  for (let start = lo; start <= hi; start += width) {
    const range = { lo: start, hi: Math.min(hi, start + width - 1) };
    const [s, t] = await Promise.all([pull(source, range), pull(target, range)]);
    rowsFetched += s.length + t.length;
    diffs.push(...compare(spec, s, t));
  }
  return { diffs, rowsFetched };
}

export interface PartitionRow {
  day: string;
  sourceRows: number;
  targetRows: number;
  /** Which aggregates differ: count, distinct keys, sum/min/max of numeric columns, checksum. */
  differing: string[];
  /** Whether the classic aggregates (count, distinct, sum, min, max) alone would name this day. */
  classicDiffers: boolean;
}

export interface PartitionResult {
  partitions: PartitionRow[];
  /** Days whose aggregates differ (any of them, checksum included). */
  namedDays: string[];
  /** Days the classic aggregates alone name. */
  classicDays: string[];
}

const NUMERIC_KINDS = new Set(['int', 'decimal', 'double']);

interface DayAggregates {
  n: number;
  distinctKeys: number;
  checksum: string;
  numeric: Record<string, { sum: number | null; min: number | null; max: number | null }>;
}

async function dayAggregates(side: TableSide, spec: ReconSpec): Promise<Map<string, DayAggregates>> {
  const { db } = side;
  const part = db.dialect.ident(spec.partition!);
  const numeric = spec.columns.filter((c) => NUMERIC_KINDS.has(c.kind));
  const aggs = numeric.flatMap((c, i) => {
    const e = `CAST(${normalisedExpr(db, c)} AS DOUBLE PRECISION)`;
    return [`sum(${e}) AS s${i}`, `min(${e}) AS lo${i}`, `max(${e}) AS hi${i}`];
  });
  // The day as canonical text (days since 1970) groups identically whatever the DATE's type and DateStyle.
  const rows = await db.query<Record<string, unknown>>(
    `SELECT ${canonicalText(db.dialect, part, 'date')} AS day,
            count(*) AS n,
            count(DISTINCT ${db.dialect.ident(spec.key)}) AS nk,
            ${db.dialect.sumExact(rowHashExpr(db, spec))} AS fp
            ${aggs.length ? ', ' + aggs.join(', ') : ''}
       FROM ${side.from}
      GROUP BY 1`,
  );
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return new Map(
    rows.map((r) => [
      String(r.day),
      {
        n: Number(r.n),
        distinctKeys: Number(r.nk),
        checksum: String(r.fp),
        numeric: Object.fromEntries(numeric.map((c, i) => [c.name, { sum: num(r[`s${i}`]), min: num(r[`lo${i}`]), max: num(r[`hi${i}`]) }])),
      },
    ]),
  );
}

/**
 * Per-partition (per-day) aggregates, computed inside each database: only one row per day
 * crosses the wire. Names the days whose count, distinct keys, sum/min/max of each numeric
 * column (within the column's tolerance) or row-hash checksum differ.
 */
export async function partitionDiff(source: TableSide, target: TableSide, spec: ReconSpec): Promise<PartitionResult> {
  if (!spec.partition) throw new Error('partitionDiff needs spec.partition (a DATE column)');
  const [s, t] = await Promise.all([dayAggregates(source, spec), dayAggregates(target, spec)]);
  const days = [...new Set([...s.keys(), ...t.keys()])].sort((a, b) => dayOrder(a) - dayOrder(b));
  const partitions: PartitionRow[] = days.map((day) => {
    const a = s.get(day);
    const b = t.get(day);
    const differing: string[] = [];
    if ((a?.n ?? 0) !== (b?.n ?? 0)) differing.push('count');
    if ((a?.distinctKeys ?? 0) !== (b?.distinctKeys ?? 0)) differing.push('distinct_keys');
    for (const c of spec.columns.filter((col) => NUMERIC_KINDS.has(col.kind))) {
      const tol = (c.tolerance ?? 0) + 1e-9;
      for (const agg of ['sum', 'min', 'max'] as const) {
        const x = a?.numeric[c.name]?.[agg] ?? null;
        const y = b?.numeric[c.name]?.[agg] ?? null;
        if (x === null || y === null ? x !== y : Math.abs(x - y) > tol + 1e-12 * Math.abs(x)) differing.push(`${agg}(${c.name})`);
      }
    }
    const classicDiffers = differing.length > 0;
    if ((a?.checksum ?? '0') !== (b?.checksum ?? '0')) differing.push('checksum');
    return { day: displayDay(day), sourceRows: a?.n ?? 0, targetRows: b?.n ?? 0, differing, classicDiffers };
  });
  return {
    partitions,
    namedDays: partitions.filter((p) => p.differing.length > 0).map((p) => p.day),
    classicDays: partitions.filter((p) => p.classicDiffers).map((p) => p.day),
  };
}

/** '19783;' (canonical date text: days since 1970) → '2024-03-01'; a NULL day → '∅'. */
function displayDay(canonical: string): string {
  const days = canonicalPayload('date', canonical);
  return days === null ? '∅' : new Date(Number(days) * 86400000).toISOString().slice(0, 10);
}
function dayOrder(canonical: string): number {
  const days = canonicalPayload('date', canonical);
  return days === null ? -Infinity : Number(days);
}

export interface Fingerprint {
  rows: number;
  /** Exact sum of canonical row hashes: equal multisets of rows ⇒ equal; order does not matter. */
  sum: string;
}

/** An order-independent fingerprint of a whole table, computed inside its database. */
export async function tableFingerprint(side: TableSide, spec: ReconSpec): Promise<Fingerprint> {
  const [r] = await side.db.query<{ n: unknown; fp: unknown }>(`SELECT count(*) AS n, ${side.db.dialect.sumExact(rowHashExpr(side.db, spec))} AS fp FROM ${side.from}`);
  return { rows: Number(r!.n), sum: String(r!.fp) };
}
