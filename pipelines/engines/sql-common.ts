import type { CanonicalKind, Dialect } from './types.ts';

/**
 * Dialect pieces that DuckDB and PostgreSQL share (both accept these spellings).
 * Engine dialects spread this and override what differs.
 */
export const standardDialect: Omit<Dialect, 'name' | 'hash64' | 'types'> = {
  // SUM of a BIGINT is already exact on both engines (Postgres: NUMERIC via an int128
  // accumulator, DuckDB: HUGEINT); casting each hash to DECIMAL first only costs time.
  sumExact: (h) => `CAST(COALESCE(SUM(${h}), 0) AS VARCHAR)`,
  distinct: (a, b) => `(${a} IS DISTINCT FROM ${b})`,
  canonicalText: canonicalTextWith({ epochMicros: (x) => `CAST(EXTRACT(EPOCH FROM ${x}) * 1000000 AS BIGINT)` }),
  addDays: (d, n) => `(${d} + CAST(${n} AS INTEGER))`,
  dateParam: (p) => `CAST(${p} AS DATE)`,
  mergeDelete: true,
  ident: (name) => `"${name.replace(/"/g, '""')}"`,
};

/**
 * A SQL string literal for a *name we generated* (slot, publication, file path) where a bind
 * parameter cannot be used. Never for data: data always goes through binds.
 */
export function nameLiteral(name: string): string {
  if (!/^[A-Za-z0-9_.:/\-]+$/.test(name)) throw new Error(`refusing to inline unexpected name ${JSON.stringify(name)}`);
  return `'${name}'`;
}

/** The engine-specific spellings the canonical text needs; everything else is shared SQL. */
export interface CanonicalSpelling {
  /** Microseconds since 1970-01-01 00:00 UTC of a TIMESTAMP (read as UTC) or TIMESTAMPTZ, as an exact BIGINT. */
  epochMicros(expr: string): string;
}

/**
 * Builds `Dialect.canonicalText` (see `CanonicalKind` for what each kind normalises). Every
 * expression below was checked to give the same text on DuckDB and PostgreSQL
 * (tests/row-hash.test.ts); the traps it avoids are in labs/reconciliation/README.md:
 *   - CAST(double AS VARCHAR) gives '1' on Postgres and '1.0' on DuckDB, '-0' vs '-0.0';
 *   - Postgres converts double → NUMERIC through 15 significant digits, DuckDB exactly, so a
 *     double is rounded with IEEE arithmetic (floor(x·1e6 + 0.5)), which both engines share;
 *   - TIMESTAMPTZ prints in the session zone, and DATE in the session DateStyle on Postgres.
 */
export function canonicalTextWith(spelling: CanonicalSpelling): Dialect['canonicalText'] {
  return (expr: string, kind: CanonicalKind): string => {
    const dbl = `CAST(${expr} AS DOUBLE PRECISION)`;
    const text: Record<CanonicalKind, string> = {
      text: `CAST(${expr} AS VARCHAR)`,
      int: `CAST(CAST(${expr} AS BIGINT) AS VARCHAR)`,
      decimal: `CAST(CAST(${expr} AS DECIMAL(38,6)) AS VARCHAR)`,
      double:
        `CASE WHEN abs(${dbl}) < 1e12 THEN CAST(CAST(floor(${dbl} * CAST(1000000 AS DOUBLE PRECISION) + 0.5) AS BIGINT) AS VARCHAR)` +
        ` WHEN abs(${dbl}) < 9e18 THEN 'u' || CAST(CAST(floor(${dbl} + 0.5) AS BIGINT) AS VARCHAR)` +
        // NaN / ±Infinity / huge: Postgres prints 'Infinity'/'NaN', DuckDB 'inf'/'nan'.
        ` ELSE replace(lower(CAST(${dbl} AS VARCHAR)), 'infinity', 'inf') END`,
      date: `CAST(CAST(${expr} AS DATE) - DATE '1970-01-01' AS VARCHAR)`,
      timestamp: `CAST(${spelling.epochMicros(expr)} AS VARCHAR)`,
      bool: `CASE WHEN ${expr} THEN 't' ELSE 'f' END`,
    };
    // '\N' marks NULL (as COPY does). Each value delimits itself, so concatenated columns cannot
    // shift into each other: text is length-prefixed ('3:abc'), other kinds never contain ';'
    // and end with it. No value starts with a backslash, so none collides with the marker.
    if (kind === 'text') return `COALESCE(CAST(length(${text.text}) AS VARCHAR) || ':' || ${text.text}, '\\N')`;
    return `COALESCE(${text[kind]} || ';', '\\N')`;
  };
}

/**
 * The canonical hash of a row: `hash64` of the concatenated canonical texts of its columns, in
 * the order given. Computed inside the database; identical rows give identical hashes on every
 * engine whatever their physical column types (same `kind` per column on both sides).
 */
export function canonicalRowHash(dialect: Dialect, columns: readonly { expr: string; kind: CanonicalKind }[]): string {
  if (columns.length === 0) throw new Error('canonicalRowHash needs at least one column');
  // One concat() of the self-delimiting, never-NULL column texts: the same text as chaining them
  // with ||, but built in one step instead of one intermediate string per column (DuckDB and
  // PostgreSQL both spend a visible share of a row hash on those copies).
  const texts = columns.map((c) => dialect.canonicalText(c.expr, c.kind));
  return dialect.hash64(texts.length === 1 ? texts[0]! : `concat(${texts.join(', ')})`);
}

/**
 * The order-independent fingerprint query every lab uses to say "same rows": row count and the
 * exact sum of each row's canonical hash (equal multisets ⇒ equal result; one changed, missing
 * or doubled row ⇒ a different checksum, up to 60-bit hash collisions). Columns `rows`,
 * `checksum` (text), and the `groupBy` column when given.
 */
export function fingerprintSql(
  dialect: Dialect,
  from: string,
  columns: readonly { expr: string; kind: CanonicalKind }[],
  groupBy?: string,
): string {
  const hash = dialect.sumExact(canonicalRowHash(dialect, columns));
  const group = groupBy ? `${groupBy}, ` : '';
  return `SELECT ${group}count(*) AS rows, ${hash} AS checksum FROM ${from}${groupBy ? ` GROUP BY ${groupBy} ORDER BY ${groupBy}` : ''}`;
}
