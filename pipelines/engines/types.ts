/**
 * What every SQL engine offers a pipeline. Pipelines take a `SqlEngine` and never ask which
 * engine it is: what differs between engines lives in the engine's `Dialect`.
 *
 * Value mapping (same on every engine, so results compare across engines):
 *   BIGINT/INT8  -> number when safe, else bigint     DATE      -> 'YYYY-MM-DD' string
 *   DECIMAL/NUMERIC/DOUBLE -> number                 TIMESTAMP -> Date (UTC, ms precision)
 *   VARCHAR/TEXT -> string,  BOOLEAN -> boolean,     NULL      -> null
 * SQL uses `$1, $2, …` bind parameters everywhere; drivers translate if their engine differs.
 */
export type SqlValue = string | number | bigint | boolean | Date | null;
export type Row = Record<string, SqlValue>;

/**
 * `--engine` values. 'spark' is a `SqlEngine` target whose tables are Delta Lake tables
 * (pipelines/engines/spark/target.ts: no multi-statement transactions, see `Dialect.atomicity`);
 * a lab may also take a Spark Connect session of its own for steps a SqlEngine cannot express.
 */
export type TargetEngineName = 'duckdb' | 'postgres' | 'snowflake' | 'spark';
export const TARGET_ENGINES: readonly TargetEngineName[] = ['duckdb', 'postgres', 'snowflake', 'spark'];

export interface SqlEngine {
  readonly name: TargetEngineName;
  readonly dialect: Dialect;
  /** Runs one statement and returns its rows. */
  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]>;
  /** Runs one statement (or, without params, a script of several `;`-separated statements). */
  exec(sql: string, params?: readonly unknown[]): Promise<void>;
  /**
   * Runs `fn` in one transaction: committed if it resolves, rolled back if it throws.
   * Nested calls join the outer transaction. Not on an engine whose `dialect.atomicity` is
   * 'statement' (Spark/Delta): there it runs `fn` and each statement commits on its own.
   */
  transaction<T>(fn: (tx: SqlEngine) => Promise<T>): Promise<T>;
  /** Bulk-loads rows into an existing table (appender / COPY / multi-row insert). */
  insertRows(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void>;
  close(): Promise<void>;
}

/**
 * Logical kind of a value for the canonical row hash; the same kind must be used on both sides.
 *   text       as stored (VARCHAR, TEXT, CHAR(n) — Postgres drops CHAR(n) padding when cast)
 *   int        any integer type, or a whole-number DECIMAL/DOUBLE: the integer (BIGINT range)
 *   decimal    exact numerics (NUMERIC/DECIMAL of any scale, integers): rounded half away from zero
 *              to 6 decimal places, so NUMERIC(12,2) 1.5 = DECIMAL(18,4) 1.5000
 *   double     when either side is a float: the value as a double, rounded (half up) to 6 decimal
 *              places with IEEE arithmetic both engines share (|x| < 1e12; beyond, to the unit) —
 *              NUMERIC 0.30 = DOUBLE 0.1*3, and -0.0 = 0.0
 *   float      a double compared exactly: its shortest round-trip digits (the text both engines
 *              print), so two doubles hash alike only when they are the same number (-0.0 = 0.0,
 *              NaN = NaN); a 7th-significant-digit change shows, 0.1*3 ≠ 0.3
 *   date       DATE (or a timestamp, truncated): days since 1970-01-01, independent of DateStyle
 *   timestamp  TIMESTAMP / TIMESTAMPTZ: microseconds since the epoch; a TIMESTAMP without zone is
 *              read as UTC, so TIMESTAMPTZ '…+02' = TIMESTAMP of the same instant in UTC
 *   bool       't' / 'f' (NULL apart from both)
 */
export type CanonicalKind = 'text' | 'int' | 'decimal' | 'double' | 'float' | 'date' | 'timestamp' | 'bool';

/**
 * The SQL that differs between engines. Small on purpose: a pipeline writes standard SQL
 * and calls into the dialect only where engines really disagree.
 */
export interface Dialect {
  readonly name: TargetEngineName;
  /** Column types by logical name. */
  readonly types: {
    readonly int: string;
    readonly bigint: string;
    readonly double: string;
    readonly decimal: (precision: number, scale: number) => string;
    readonly text: string;
    readonly bool: string;
    readonly date: string;
    readonly timestamp: string;
  };
  /** `a IS DISTINCT FROM b`, NULL-safe inequality. */
  distinct(a: string, b: string): string;
  /**
   * Change detection within one statement: expressions over `columns` such that two rows differ
   * in some column exactly when (up to a 64-bit collision) some expression differs, NULL-safely.
   * Absent: the columns themselves. DuckDB: one native `hash(…)` (NULL hashes to its own value,
   * each column by position), which makes a 1M × 1M comparison join carry one number instead of
   * the strings. Not stable across engine versions: computed on both sides at compare time,
   * never stored.
   */
  changeDigest?(columns: readonly string[]): string[];
  /**
   * How a filter on many key ranges is cheapest. Absent: `k BETWEEN lo AND hi OR …`, which an
   * index or partition pruning serves range by range (Postgres, Snowflake). 'key-set': a columnar
   * scan with no index would test every BETWEEN on every row, so the ranges' keys are generated
   * and matched as one hashed semi-join instead (DuckDB: 100 ranges over 1M rows, ~175 → ~50 ms).
   */
  readonly keyRangeFilter?: 'key-set';
  /**
   * A signed 60-bit integer hash of a text expression (md5-based), identical on every engine
   * for the same text. Used for row hashes and order-independent fingerprints.
   */
  hash64(textExpr: string): string;
  /**
   * Order-independent fingerprint of a set of row hashes (BIGINT): the exact sum as text
   * (an arbitrary-precision or 128-bit sum, so a million 60-bit hashes cannot overflow) —
   * equal multisets, equal sums.
   */
  sumExact(hashExpr: string): string;
  /**
   * The canonical text of a value for hashing, as SQL pieces to concatenate with `concatText`:
   * identical on every engine for the same logical value whatever the physical type (see
   * `CanonicalKind`). NULL gets its own marker, so NULL and '' differ; every value delimits
   * itself (text is length-prefixed, `3:abc`, a NULL text is `:`; other kinds end with `;`, a NULL
   * is `;`), so concatenating the texts of several columns is unambiguous (`'a|b','c'` never
   * equals `'a','b|c'`). Pieces, not one expression, so a row's columns concatenate in one call.
   * Use `canonicalText` / `canonicalRowHash` (sql-common.ts) rather than calling this directly.
   */
  canonicalParts(expr: string, kind: CanonicalKind): string[];
  /** Concatenates text pieces into one never-NULL string, a NULL piece counting as ''. */
  concatText(parts: readonly string[]): string;
  /** Adds days to a DATE expression. */
  addDays(dateExpr: string, days: string): string;
  /** A DATE literal/param cast: `CAST($1 AS DATE)`. */
  dateParam(param: string): string;
  /** Whether `MERGE … WHEN MATCHED THEN DELETE` is supported (every engine here does). */
  readonly mergeDelete: boolean;
  /**
   * What commits or rolls back as one. Absent: a transaction — `SqlEngine.transaction` groups its
   * statements (DuckDB, Postgres, Snowflake). 'statement': every statement is its own commit and
   * `transaction` groups nothing (Delta Lake on Spark: one statement, one version of the table).
   * There a write that must be all-or-nothing has to be a single statement (a MERGE).
   */
  readonly atomicity?: 'statement';
  /**
   * false: `PRIMARY KEY` is not accepted in CREATE TABLE (Delta Lake): the writer keeps its keys
   * unique. Absent: accepted (enforced on DuckDB and Postgres, informational on Snowflake).
   */
  readonly primaryKeys?: false;
  /**
   * Engines without information_schema (Spark): a statement listing an existing `table`'s columns,
   * one row each, in a column `col_name`. Absent: information_schema.columns is read.
   */
  showColumns?(table: string): string;
  /** Quotes an identifier. */
  ident(name: string): string;
  /**
   * How information_schema spells a name written with `ident(name)`: Snowflake folds plain
   * lower-case names to upper case (`customers` → `CUSTOMERS`). Absent: the name itself.
   */
  catalogName?(name: string): string;
  /**
   * Engines where a writer killed mid-transaction leaves that transaction open, holding its locks
   * (Snowflake: a "detached" transaction lives on until the session expires, hours later): how to
   * name this session and how to end a dead one. Absent: the engine ends a dead client's
   * transaction itself (DuckDB's file lock, Postgres on disconnect).
   */
  readonly sessions?: { current: string; abort(id: string): string };
}
