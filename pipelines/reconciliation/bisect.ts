/**
 * Hash-bisection diff: find the exact differing keys and columns of two tables in two engines
 * while moving almost no rows.
 *
 *   1. Each database hashes its own rows (canonical row hash, identical across engines) and sums
 *      the hashes per key-range segment: one GROUP BY per side, a few numbers back per segment.
 *   2. Segments whose (row count, hash sum) agree are equal — with a 60-bit hash, a different
 *      multiset of rows gives the same sum with probability ~2⁻⁶⁰.
 *   3. A segment that differs is split into `fanout` children, and only those are re-hashed.
 *   4. A differing segment with at most `fetchThreshold` rows on each side is fetched from both
 *      sides and compared column by column (NULL-safe, tolerances): the exact diff.
 *
 * Segments sit on a grid of power-of-two widths from the smallest key, so a child is always
 * wholly inside its parent and one query per side and level serves every segment of that level.
 */
import type { SqlEngine } from '../engines/types.ts';
import { comparableSelect, compareRowSets, rowHashExpr, toComparable, validateSpec, type ComparableRow, type ReconSpec, type RowDiff, type TableSide } from './spec.ts';

export interface BisectOptions {
  /** Children per split (a power of two). */
  fanout: number;
  /** A differing segment with at most this many rows on each side is fetched and compared. */
  fetchThreshold: number;
  /**
   * Upper bound on first-pass segments. Default: enough that one split reaches the threshold
   * (rows / (fanout × fetchThreshold)), so a table is hashed about once, not once per level.
   */
  rootSegments?: number;
}

export const DEFAULT_BISECT: BisectOptions = { fanout: 32, fetchThreshold: 32 };

/** A node of the segment tree: key range [lo, hi], what each side holds there, and the verdict. */
export interface SegmentNode {
  lo: number;
  hi: number;
  sourceRows: number;
  targetRows: number;
  status: 'equal' | 'differs' | 'fetched';
  children?: SegmentNode[];
}

export interface BisectStats {
  /** Queries sent, both sides together. */
  queries: number;
  /** Levels of the segment tree that were hashed. */
  levels: number;
  segmentsCompared: number;
  segmentsFetched: number;
  /** Rows moved out of the databases (both sides), by the fetches. */
  rowsFetched: number;
  sourceRows: number;
  targetRows: number;
  /** Where the time went: bounds, each level (segments returned, both sides), the fetch. */
  phases?: { phase: string; ms: number; segments: number }[];
}

export interface BisectResult {
  diffs: RowDiff[];
  /** Root: the whole key range; its children the first-pass segments. */
  tree: SegmentNode;
  stats: BisectStats;
}

/** A contiguous key range, both ends inclusive. */
export interface KeyRange {
  lo: number;
  hi: number;
}

export interface SegmentChecksum {
  rows: number;
  /** Exact sum of the row hashes in the segment, as text. */
  sum: string;
}

/** Row count and key bounds of one side. */
export async function keyBounds(side: TableSide, spec: ReconSpec): Promise<{ rows: number; min: number | null; max: number | null }> {
  const k = side.db.dialect.ident(spec.key);
  const [r] = await side.db.query<{ n: unknown; lo: unknown; hi: unknown }>(`SELECT count(*) AS n, min(${k}) AS lo, max(${k}) AS hi FROM ${side.from}`);
  return { rows: Number(r!.n), min: r!.lo === null ? null : Number(r!.lo), max: r!.hi === null ? null : Number(r!.hi) };
}

/** Below this many ranges a few BETWEENs per row cost less than building a key set. */
const KEY_SET_MIN_RANGES = 8;
/** The most keys a key-set filter generates; wider (sparse) ranges stay BETWEENs. */
const KEY_SET_MAX_KEYS = 1 << 20;

/**
 * A WHERE predicate selecting the keys in `ranges` (merged when adjacent), with its binds:
 * `(k BETWEEN $i AND $i+1) OR …`, or on engines whose dialect asks for it (`keyRangeFilter:
 * 'key-set'`) and when there are many narrow ranges, `k IN (the keys of every range)`.
 */
export function rangeFilter(db: SqlEngine, key: string, ranges: readonly KeyRange[], firstParam = 1): { sql: string; params: number[] } {
  const merged: KeyRange[] = [];
  for (const r of [...ranges].sort((a, b) => a.lo - b.lo)) {
    const last = merged[merged.length - 1];
    if (last && r.lo <= last.hi + 1) last.hi = Math.max(last.hi, r.hi);
    else merged.push({ ...r });
  }
  const k = db.dialect.ident(key);
  const params: number[] = [];
  const bind = (v: number) => (params.push(v), `CAST($${firstParam + params.length - 1} AS BIGINT)`);
  const keys = merged.reduce((n, r) => n + (r.hi - r.lo + 1), 0);
  if (db.dialect.keyRangeFilter === 'key-set' && merged.length >= KEY_SET_MIN_RANGES && keys <= KEY_SET_MAX_KEYS) {
    const rows = merged.map((r) => `(${bind(r.lo)}, ${bind(r.hi)})`).join(', ');
    return { sql: `${k} IN (SELECT unnest(generate_series(lo, hi)) FROM (VALUES ${rows}) AS key_ranges(lo, hi))`, params };
  }
  const terms = merged.map((r) => `(${k} BETWEEN ${bind(r.lo)} AND ${bind(r.hi)})`);
  return { sql: terms.length ? terms.join(' OR ') : 'TRUE', params };
}

/** Ranges per query: keeps statements small on both engines. */
const RANGES_PER_QUERY = 256;

function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out.length ? out : [[]];
}

/**
 * Row count and hash sum per segment of width `width` from `origin`, for the rows whose key lies
 * in `ranges` (none: every row, unfiltered) — computed inside the database; only one small row per segment comes back.
 * Segment i covers keys [origin + i·width, origin + (i+1)·width − 1].
 */
export async function segmentChecksums(side: TableSide, spec: ReconSpec, ranges: readonly KeyRange[], origin: number, width: number): Promise<{ segments: Map<number, SegmentChecksum>; queries: number }> {
  const { db } = side;
  const k = db.dialect.ident(spec.key);
  const segments = new Map<number, SegmentChecksum>();
  let queries = 0;
  for (const part of chunks(ranges, RANGES_PER_QUERY)) {
    const filter = rangeFilter(db, spec.key, part, 3);
    // floor over a DOUBLE division: exact for keys and widths below 2^53, and spelled the same on every engine.
    const rows = await db.query<{ seg: unknown; n: unknown; fp: unknown }>(
      `SELECT CAST(floor(CAST(${k} - CAST($1 AS BIGINT) AS DOUBLE PRECISION) / CAST($2 AS DOUBLE PRECISION)) AS BIGINT) AS seg,
              count(*) AS n,
              ${db.dialect.sumExact(rowHashExpr(db, spec))} AS fp
         FROM ${side.from}
        WHERE ${filter.sql}
        GROUP BY 1`,
      [origin, width, ...filter.params],
    );
    queries += 1;
    for (const r of rows) segments.set(Number(r.seg), { rows: Number(r.n), sum: String(r.fp) });
  }
  return { segments, queries };
}

/** Every row of `ranges`, as comparable values (normalised and canonical, computed in the database). */
export async function fetchRows(side: TableSide, spec: ReconSpec, ranges: readonly KeyRange[]): Promise<{ rows: ComparableRow[]; queries: number }> {
  const { db } = side;
  const out: ComparableRow[] = [];
  let queries = 0;
  for (const part of chunks(ranges, RANGES_PER_QUERY)) {
    if (part.length === 0) continue;
    const filter = rangeFilter(db, spec.key, part);
    const rows = await db.query<Record<string, unknown>>(`SELECT ${comparableSelect(db, spec)} FROM ${side.from} WHERE ${filter.sql}`, filter.params);
    queries += 1;
    for (const r of rows) out.push(toComparable(spec, r));
  }
  return { rows: out, queries };
}

const sameChecksum = (a: SegmentChecksum | undefined, b: SegmentChecksum | undefined) => (a?.rows ?? 0) === (b?.rows ?? 0) && (a?.sum ?? '0') === (b?.sum ?? '0');

/**
 * The first-level width: a power of two such that a segment holds about `fanout × fetchThreshold / 2`
 * rows, so one split of a differing segment gives children of about `fetchThreshold / 2` rows —
 * below the threshold even with a few extra or duplicated rows — and they are fetched at once.
 * Every row is hashed once in the first pass; the next pass re-hashes only the differing segments
 * (a few rows per difference × fanout).
 */
export function firstWidth(span: number, rows: number, options: BisectOptions): number {
  if (options.rootSegments !== undefined) return 2 ** Math.ceil(Math.log2(Math.max(1, span / Math.max(1, options.rootSegments))));
  const perKey = Math.max(1, rows) / Math.max(1, span); // rows per key value (≤ 1 for unique keys)
  const leafWidth = 2 ** Math.max(0, Math.floor(Math.log2(Math.max(1, options.fetchThreshold / 2 / perKey))));
  return Math.min(2 ** Math.ceil(Math.log2(Math.max(1, span))), leafWidth * options.fanout);
}

/**
 * The reference bisection diff: exact differing keys (missing, extra, duplicated) and columns
 * between `source` and `target`, fetching only rows of small differing segments.
 */
export async function bisectDiff(source: TableSide, target: TableSide, spec: ReconSpec, options: BisectOptions = DEFAULT_BISECT): Promise<BisectResult> {
  validateSpec(spec);
  const { fanout, fetchThreshold } = options;
  if (fanout < 2 || (fanout & (fanout - 1)) !== 0) throw new Error(`fanout must be a power of two ≥ 2, got ${fanout}`);
  const t0 = performance.now();
  const [sb, tb] = await Promise.all([keyBounds(source, spec), keyBounds(target, spec)]);
  const stats: BisectStats = { queries: 2, levels: 0, segmentsCompared: 0, segmentsFetched: 0, rowsFetched: 0, sourceRows: sb.rows, targetRows: tb.rows };
  const phases: NonNullable<BisectStats['phases']> = (stats.phases = []);
  phases.push({ phase: 'bounds', ms: performance.now() - t0, segments: 0 });
  const mins = [sb.min, tb.min].filter((v): v is number => v !== null);
  const maxs = [sb.max, tb.max].filter((v): v is number => v !== null);
  const root: SegmentNode = { lo: 0, hi: -1, sourceRows: sb.rows, targetRows: tb.rows, status: 'equal', children: [] };
  if (mins.length === 0) return { diffs: [], tree: root, stats };
  root.lo = Math.min(...mins);
  root.hi = Math.max(...maxs);

  const origin = root.lo;
  const span = root.hi - root.lo + 1;
  // Power-of-two widths: every split divides a segment exactly into `fanout` (or fewer, at width < fanout) children.
  let width = firstWidth(span, Math.max(sb.rows, tb.rows), options);

  // The segments of the current level to hash, each with the tree node it will fill.
  let level: { range: KeyRange; children: SegmentNode[] }[] = [{ range: { lo: root.lo, hi: root.hi }, children: root.children! }];
  const toFetch: { range: KeyRange; node: SegmentNode }[] = [];

  while (level.length > 0) {
    const tl = performance.now();
    stats.levels += 1;
    // The first level covers the whole key range: no filter, one scan per side.
    const ranges = stats.levels === 1 ? [] : level.map((l) => l.range);
    const [s, t] = await Promise.all([segmentChecksums(source, spec, ranges, origin, width), segmentChecksums(target, spec, ranges, origin, width)]);
    stats.queries += s.queries + t.queries;
    const next: typeof level = [];
    for (const parent of level) {
      const first = Math.floor((parent.range.lo - origin) / width);
      const last = Math.floor((parent.range.hi - origin) / width);
      const visit = (seg: number) => {
        const a = s.segments.get(seg);
        const b = t.segments.get(seg);
        if (!a && !b) return; // no rows on either side: nothing to compare
        stats.segmentsCompared += 1;
        const range = { lo: Math.max(parent.range.lo, origin + seg * width), hi: Math.min(parent.range.hi, origin + (seg + 1) * width - 1) };
        const node: SegmentNode = { ...range, sourceRows: a?.rows ?? 0, targetRows: b?.rows ?? 0, status: 'equal' };
        parent.children.push(node);
        if (sameChecksum(a, b)) return;
        if (Math.max(node.sourceRows, node.targetRows) <= fetchThreshold || width === 1) {
          node.status = 'fetched';
          toFetch.push({ range, node });
        } else {
          node.status = 'differs';
          node.children = [];
          next.push({ range, children: node.children });
        }
      };
      if (last - first + 1 <= s.segments.size + t.segments.size) for (let seg = first; seg <= last; seg++) visit(seg);
      else for (const seg of [...new Set([...s.segments.keys(), ...t.segments.keys()])].sort((x, y) => x - y)) if (seg >= first && seg <= last) visit(seg);
    }
    phases.push({ phase: `level ${stats.levels}`, ms: performance.now() - tl, segments: s.segments.size + t.segments.size });
    level = next;
    width = Math.max(1, width / fanout);
  }

  const tf = performance.now();
  if (toFetch.length > 0) root.status = 'differs';
  stats.segmentsFetched = toFetch.length;
  const ranges = toFetch.map((f) => f.range);
  const [sr, tr] = toFetch.length > 0 ? await Promise.all([fetchRows(source, spec, ranges), fetchRows(target, spec, ranges)]) : [{ rows: [], queries: 0 }, { rows: [], queries: 0 }];
  stats.queries += sr.queries + tr.queries;
  stats.rowsFetched = sr.rows.length + tr.rows.length;
  const diffs = compareRowSets(spec, sr.rows, tr.rows);
  phases.push({ phase: 'fetch', ms: performance.now() - tf, segments: toFetch.length });
  return { diffs, tree: root, stats };
}
