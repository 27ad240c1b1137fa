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
  canonicalParts: canonicalPartsWith({ epochMicros: (x) => `CAST(EXTRACT(EPOCH FROM ${x}) * 1000000 AS BIGINT)` }),
  concatText: concatSkippingNulls,
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
  /** Days since 1970-01-01 of a DATE, as an integer. Default: `CAST(x AS DATE) - DATE '1970-01-01'`. */
  epochDays?(expr: string): string;
  /** The type names casts use. Default: VARCHAR and DOUBLE PRECISION (Spark: STRING and DOUBLE). */
  text?: string;
  double?: string;
  /**
   * The 'float' kind: a double's shortest round-trip text as DuckDB and Postgres spell it. Absent:
   * the shared spelling below. An engine that prints doubles otherwise (Spark: '1.0E15') and has no
   * way to respell them exactly throws here, rather than hash a text that would differ.
   */
  float?(expr: string): string[];
}

/**
 * Builds `Dialect.canonicalParts` (see `CanonicalKind` for what each kind normalises). Every
 * expression below was checked to give the same text on DuckDB and PostgreSQL
 * (tests/row-hash.test.ts); the traps it avoids are in labs/reconciliation/README.md:
 *   - CAST(double AS VARCHAR) gives '1' on Postgres and '1.0' on DuckDB, '-0' vs '-0.0';
 *   - Postgres converts double → NUMERIC through 15 significant digits, DuckDB exactly, so a
 *     double is rounded with IEEE arithmetic (floor(x·1e6 + 0.5)), which both engines share;
 *   - TIMESTAMPTZ prints in the session zone, and DATE in the session DateStyle on Postgres, so
 *     neither is ever handed to a text conversion: both become integers first.
 *
 * The pieces are concatenated with NULL pieces counting as '' (`concat`), which is also how NULL
 * gets its own marker: a NULL text is ':' (a value is length-prefixed, '3:abc', so it starts with
 * a digit) and any other NULL is ';' (a value is never empty and ends with ';'). Every value thus
 * delimits itself, and concatenated columns cannot shift into each other.
 */
export function canonicalPartsWith(spelling: CanonicalSpelling): Dialect['canonicalParts'] {
  return (expr: string, kind: CanonicalKind): string[] => {
    const end = `';'`;
    const text = spelling.text ?? 'VARCHAR';
    const double = spelling.double ?? 'DOUBLE PRECISION';
    switch (kind) {
      case 'text': {
        const t = `CAST(${expr} AS ${text})`;
        return [`length(${t})`, `':'`, t];
      }
      case 'int':
        return [`CAST(${expr} AS BIGINT)`, end];
      case 'decimal':
        return [`CAST(${expr} AS DECIMAL(38,6))`, end];
      case 'double': {
        const dbl = `CAST(${expr} AS ${double})`;
        return [
          `CASE WHEN abs(${dbl}) < 1e12 THEN CAST(CAST(floor(${dbl} * CAST(1000000 AS ${double}) + 0.5) AS BIGINT) AS ${text})` +
            ` WHEN abs(${dbl}) < 9e18 THEN 'u' || CAST(CAST(floor(${dbl} + 0.5) AS BIGINT) AS ${text})` +
            // NaN / ±Infinity / huge: Postgres prints 'Infinity'/'NaN', DuckDB 'inf'/'nan'.
            ` ELSE replace(lower(CAST(${dbl} AS ${text})), 'infinity', 'inf') END`,
          end,
        ];
      }
      case 'float': {
        if (spelling.float) return spelling.float(expr);
        // Both engines print a double's shortest round-trip digits; they differ only in spelling:
        // DuckDB adds '.0' to integers ('1.0' vs '1'), prints [1e15, 1e16) in full where Postgres
        // switches to '1e+15', and says 'inf'/'nan' for 'Infinity'/'NaN'. '+ 0' makes -0.0 be 0.
        // ([.] rather than a backslash: Snowflake string literals treat backslashes as escapes.)
        const dbl = `(CAST(${expr} AS DOUBLE PRECISION) + CAST(0 AS DOUBLE PRECISION))`;
        return [
          // In [1e15, 1e16) a double is a multiple of 1/8: ×8 is an exact integer.
          `CASE WHEN abs(${dbl}) >= 1e15 AND abs(${dbl}) < 1e16 THEN 'b' || CAST(CAST(${dbl} * CAST(8 AS DOUBLE PRECISION) AS BIGINT) AS VARCHAR)` +
            ` ELSE replace(regexp_replace(lower(CAST(${dbl} AS VARCHAR)), '[.]0$', ''), 'infinity', 'inf') END`,
          end,
        ];
      }
      case 'date':
        return [spelling.epochDays ? spelling.epochDays(expr) : `CAST(${expr} AS DATE) - DATE '1970-01-01'`, end];
      case 'timestamp':
        return [spelling.epochMicros(expr), end];
      case 'bool':
        // Both branches named: a NULL matches neither and stays NULL (';'), apart from false.
        return [`CASE WHEN ${expr} THEN 't' WHEN NOT ${expr} THEN 'f' END`, end];
    }
  };
}

/**
 * `concat(…)` of text pieces, a NULL piece counting as '' (PostgreSQL and DuckDB). Postgres takes
 * at most 100 arguments per call, so longer lists are concatenated in nested groups.
 */
export function concatSkippingNulls(parts: readonly string[]): string {
  if (parts.length === 0) throw new Error('concat of no parts');
  if (parts.length === 1) return `COALESCE(CAST(${parts[0]} AS VARCHAR), '')`;
  if (parts.length <= 100) return `concat(${parts.join(', ')})`;
  const groups: string[] = [];
  for (let i = 0; i < parts.length; i += 100) groups.push(concatSkippingNulls(parts.slice(i, i + 100)));
  return concatSkippingNulls(groups);
}

/** The canonical text of one value (see `Dialect.canonicalParts`): never NULL, self-delimiting. */
export function canonicalText(dialect: Dialect, expr: string, kind: CanonicalKind): string {
  return dialect.concatText(dialect.canonicalParts(expr, kind));
}

/**
 * The canonical hash of a row: `hash64` of the concatenated canonical texts of its columns, in
 * the order given. Computed inside the database; identical rows give identical hashes on every
 * engine whatever their physical column types (same `kind` per column on both sides).
 */
export function canonicalRowHash(dialect: Dialect, columns: readonly { expr: string; kind: CanonicalKind }[]): string {
  if (columns.length === 0) throw new Error('canonicalRowHash needs at least one column');
  // One concat() of every column's pieces: the same text as joining each column's canonical text,
  // but built in one step, with no intermediate string per column or per piece (Postgres and
  // DuckDB both spend a visible share of a row hash on such copies; a 1M-row hash pass
  // ran ~10 % faster on Postgres and ~15–20 % on DuckDB than with one `||` chain per column).
  return dialect.hash64(dialect.concatText(columns.flatMap((c) => dialect.canonicalParts(c.expr, c.kind))));
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
