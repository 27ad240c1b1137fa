/**
 * What the reconciler compares, and how one value is judged equal to another. Every level
 * (keys, values, partitions, bisection) uses the same column spec, so a difference found by one
 * level means the same thing in another.
 */
import type { CanonicalKind, SqlEngine } from '../engines/types.ts';
import { canonicalRowHash, canonicalText } from '../engines/sql-common.ts';

/** One side of a reconciliation: a table or view (or `read_parquet(...)` view) in one engine. */
export interface TableSide {
  /** 'source' / 'target', for messages. */
  label: string;
  db: SqlEngine;
  /** A table or view name in `db`, quoted by the caller if needed (we generate these names). */
  from: string;
}

export interface ColumnSpec {
  name: string;
  /** Logical kind, the same on both sides whatever the physical types (see CanonicalKind). */
  kind: CanonicalKind;
  /**
   * Numeric columns: |source − target| ≤ tolerance is equal. Without one, values must be equal:
   * a 'double' column then compares exactly (every level hashes its shortest round-trip digits:
   * 0.1234567 ≠ 0.1234568, and NUMERIC 0.30 ≠ DOUBLE 0.1*3 — declare a tolerance to compare a
   * NUMERIC with a DOUBLE). With a tolerance, a 'double' column's row hash resolves 1e-6, so a
   * tolerance below 1e-6 cannot be honoured by the hash levels (rejected).
   */
  tolerance?: number;
  /** Text: 'abc  ' = 'abc' (a CHAR(n) source, a padding loader). Default: significant. */
  trailingSpaces?: 'significant' | 'insignificant';
  /** Text: 'Paid' = 'paid'. Default: significant. */
  letterCase?: 'significant' | 'insignificant';
  /**
   * Timestamps: compare at this precision (date_trunc), e.g. 'millisecond' when one side stores
   * milliseconds. Default: microseconds, as stored.
   */
  timestampPrecision?: 'second' | 'millisecond';
}

export interface ReconSpec {
  /** The key column: a BIGINT-compatible integer (bisection splits its range). */
  key: string;
  /** Compared columns (the key excluded). */
  columns: readonly ColumnSpec[];
  /** DATE column used by the per-partition level. */
  partition?: string;
}

export type DiffKind = 'missing' | 'extra' | 'duplicate' | 'value';

export interface ColumnDiff {
  column: string;
  source: string | null;
  target: string | null;
}

/** One differing key: what differs, and (for values) which columns, with both values. */
export interface RowDiff {
  key: number;
  kind: DiffKind;
  /** 'value': the differing columns. */
  columns?: ColumnDiff[];
  /** 'duplicate': rows with this key on each side. */
  sourceCount?: number;
  targetCount?: number;
}

/** A row as fetched for comparison: the key, then one comparable value per spec column. */
export interface ComparableRow {
  key: number;
  values: (string | number | null)[];
}

export function validateSpec(spec: ReconSpec): void {
  for (const c of spec.columns) {
    if (c.tolerance !== undefined && !(c.kind === 'double' || c.kind === 'decimal' || c.kind === 'int')) {
      throw new Error(`column ${c.name}: a tolerance only applies to numeric kinds, not ${c.kind}`);
    }
    if (c.tolerance !== undefined && !(c.tolerance >= 0 && Number.isFinite(c.tolerance))) {
      throw new Error(`column ${c.name}: tolerance must be a finite number ≥ 0, got ${c.tolerance}`);
    }
    if (c.kind === 'double' && c.tolerance !== undefined && c.tolerance > 0 && c.tolerance < 1e-6) {
      throw new Error(`column ${c.name}: tolerance ${c.tolerance} is below the row hash's 1e-6 resolution for doubles (leave it out to compare exactly)`);
    }
  }
}

const hasTolerance = (c: ColumnSpec) => c.tolerance !== undefined && c.tolerance > 0;

/** How a column is canonicalised: a 'double' without a tolerance exactly ('float'), everything else by its kind. */
export function canonicalKindOf(c: ColumnSpec): CanonicalKind {
  return c.kind === 'double' && !hasTolerance(c) ? 'float' : c.kind;
}

/**
 * The column as it is compared: normalisations the spec declares insignificant are applied
 * inside the database, before hashing or fetching, so every level sees the same value.
 */
export function normalisedExpr(db: SqlEngine, c: ColumnSpec): string {
  let e = db.dialect.ident(c.name);
  if (c.kind === 'text') {
    if (c.trailingSpaces === 'insignificant') e = `rtrim(${e}, ' ')`;
    if (c.letterCase === 'insignificant') e = `lower(${e})`;
  }
  if (c.kind === 'timestamp' && c.timestampPrecision) e = `date_trunc('${c.timestampPrecision}', ${e})`;
  return e;
}

/**
 * The canonical row hash of the spec's key + columns, computed inside `db`. Identical on
 * PostgreSQL and DuckDB for rows equal under the spec (tests/row-hash.test.ts, claim 2).
 */
export function rowHashExpr(db: SqlEngine, spec: ReconSpec): string {
  return canonicalRowHash(db.dialect, [
    { expr: db.dialect.ident(spec.key), kind: 'int' },
    ...spec.columns.map((c) => ({ expr: normalisedExpr(db, c), kind: canonicalKindOf(c) })),
  ]);
}

/**
 * SELECT list of comparable values: a DOUBLE for columns compared with a tolerance, the
 * canonical text otherwise (equal text ⇔ equal value, across engines).
 */
export function comparableSelect(db: SqlEngine, spec: ReconSpec): string {
  const key = `CAST(${db.dialect.ident(spec.key)} AS BIGINT) AS k`;
  const cols = spec.columns.map((c, i) =>
    hasTolerance(c) ? `CAST(${normalisedExpr(db, c)} AS DOUBLE PRECISION) AS v${i}` : `${canonicalText(db.dialect, normalisedExpr(db, c), canonicalKindOf(c))} AS v${i}`,
  );
  return [key, ...cols].join(', ');
}

export function toComparable(spec: ReconSpec, r: Record<string, unknown>): ComparableRow {
  return {
    key: Number(r.k),
    values: spec.columns.map((_, i) => {
      const v = r[`v${i}`];
      return v === null || v === undefined ? null : typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : String(v);
    }),
  };
}

/** NULL-safe: NULL = NULL, NULL ≠ anything else (unlike SQL `<>`, which says "unknown"). */
export function valuesDiffer(c: ColumnSpec, a: string | number | null, b: string | number | null): boolean {
  if (a === null || b === null) return a !== b;
  if (typeof a === 'number' && typeof b === 'number') return Math.abs(a - b) > (c.tolerance ?? 0) + 1e-9 * Math.max(1, Math.abs(a));
  return a !== b;
}

/** The value inside a canonical text: '3:abc' → 'abc', '19783;' → '19783'; ':' (a NULL text) and ';' (any other NULL) → null. */
export function canonicalPayload(kind: CanonicalKind, canonical: string): string | null {
  if (kind === 'text') {
    const colon = canonical.indexOf(':');
    return colon <= 0 ? null : canonical.slice(colon + 1);
  }
  return canonical === ';' ? null : canonical.replace(/;$/, '');
}

/** Display form of a comparable value (canonical text → what a person reads). */
export function displayValue(c: ColumnSpec, v: string | number | null): string | null {
  if (v === null) return null;
  if (typeof v === 'number') return String(v);
  const text = canonicalPayload(c.kind, v);
  if (text === null) return null;
  switch (canonicalKindOf(c)) {
    case 'timestamp': {
      const us = BigInt(text);
      const ms = us / 1000n;
      const micros = String(((us % 1000000n) + 1000000n) % 1000000n).padStart(6, '0');
      return new Date(Number(ms)).toISOString().slice(0, 19).replace('T', ' ') + '.' + micros;
    }
    case 'date':
      return new Date(Number(text) * 86400000).toISOString().slice(0, 10);
    case 'double':
      return /^-?\d+$/.test(text) ? String(Number(text) / 1e6) : text;
    case 'float':
      return text.startsWith('b') ? String(Number(text.slice(1)) / 8) : text;
    default:
      return text;
  }
}

/**
 * Compares the rows of one key range, both sides fetched in full: every key present on one side
 * only, every key present more than once on a side, every column that differs.
 */
export function compareRowSets(
  spec: ReconSpec,
  source: readonly ComparableRow[],
  target: readonly ComparableRow[],
  differs: (c: ColumnSpec, a: string | number | null, b: string | number | null) => boolean = valuesDiffer,
): RowDiff[] {
  const group = (rows: readonly ComparableRow[]) => {
    const m = new Map<number, ComparableRow[]>();
    for (const r of rows) (m.get(r.key) ?? m.set(r.key, []).get(r.key)!).push(r);
    return m;
  };
  const s = group(source);
  const t = group(target);
  const keys = [...new Set([...s.keys(), ...t.keys()])].sort((a, b) => a - b);
  const diffs: RowDiff[] = [];
  for (const key of keys) {
    const sr = s.get(key) ?? [];
    const tr = t.get(key) ?? [];
    if (sr.length > 1 || tr.length > 1) diffs.push({ key, kind: 'duplicate', sourceCount: sr.length, targetCount: tr.length });
    else if (tr.length === 0) diffs.push({ key, kind: 'missing' });
    else if (sr.length === 0) diffs.push({ key, kind: 'extra' });
    else {
      const columns: ColumnDiff[] = [];
      spec.columns.forEach((c, i) => {
        const a = sr[0]!.values[i]!;
        const b = tr[0]!.values[i]!;
        if (differs(c, a, b)) columns.push({ column: c.name, source: displayValue(c, a), target: displayValue(c, b) });
      });
      if (columns.length > 0) diffs.push({ key, kind: 'value', columns });
    }
  }
  return diffs;
}
