import type { Dialect } from '../types.ts';
import { canonicalPartsWith, standardDialect } from '../sql-common.ts';

/**
 * Snowflake: only what differs from the shared spellings (both the real service and the fakesnow
 * emulator accept everything here; tests/snowflake-engine.test.ts runs each piece).
 *
 * What Snowflake shares with DuckDB/Postgres and so is *not* here: MERGE with
 * `WHEN MATCHED AND … THEN DELETE/UPDATE … WHEN NOT MATCHED THEN INSERT`, `QUALIFY`,
 * `IS DISTINCT FROM`, `CAST(x AS DATE)`, DECIMAL(38,0) sums.
 */

/** md5 → its first 15 hex digits as an integer, by Horner's rule over the digits. */
function hex15(md5Expr: string): string {
  // Snowflake spells this TO_NUMBER(SUBSTR(MD5(t), 1, 15), 'XXXXXXXXXXXXXXX'), but fakesnow
  // rejects TO_NUMBER with a format ("… with format argument not implemented") and has no
  // MD5_NUMBER_UPPER64; plain arithmetic gives the same exact NUMBER(38,0) on both.
  let acc = '0';
  for (let i = 1; i <= 15; i++) acc = `(${acc} * 16 + (POSITION(SUBSTR(${md5Expr}, ${i}, 1) IN '0123456789abcdef') - 1))`;
  return acc;
}

const sharedCanonical = canonicalPartsWith({
  // Exact integer microseconds; a TIMESTAMP_NTZ is read as UTC, like the other engines.
  epochMicros: (x) => `DATEDIFF(microsecond, CAST('1970-01-01 00:00:00' AS TIMESTAMP_NTZ), ${x})`,
});

export const snowflakeDialect: Dialect = {
  ...standardDialect,
  name: 'snowflake',
  types: {
    int: 'INTEGER', // NUMBER(38,0)
    bigint: 'BIGINT', // NUMBER(38,0)
    double: 'DOUBLE',
    decimal: (p, s) => `NUMBER(${p},${s})`,
    text: 'VARCHAR',
    bool: 'BOOLEAN',
    date: 'DATE',
    // Wall-clock time without zone, the same semantics as TIMESTAMP on DuckDB/Postgres.
    timestamp: 'TIMESTAMP_NTZ',
  },
  // Same 60 bits as DuckDB's and Postgres's: the first 15 hex digits of md5, a positive integer.
  hash64: (t) => `CAST(${hex15(`MD5(${t})`)} AS BIGINT)`,
  // Exact sum as text through NUMBER(38,0): the shared SUM(bigint) comes back from fakesnow as a
  // double's text ('2.305843009213694e+18'), so each hash is cast to NUMBER(38,0) first (exact on both).
  sumExact: (h) => `CAST(COALESCE(SUM(CAST(${h} AS NUMBER(38,0))), 0) AS VARCHAR)`,
  canonicalParts: sharedCanonical,
  // CONCAT and || return NULL when any piece is NULL on Snowflake (concat() skips NULLs on DuckDB
  // and Postgres): each piece that can be NULL is made '' first, so the text is the same.
  concatText: (parts) => parts.map((p) => (/^'[^']*'$/.test(p) ? p : `COALESCE(CAST(${p} AS VARCHAR), '')`)).join(' || '),
  // Unquoted names fold to UPPER case in Snowflake (lower case in DuckDB/Postgres). A lower-case
  // name our pipelines write unquoted (`valid_from`) is the column "VALID_FROM", so quote it upper.
  // DATE + n adds days on Snowflake. Not DATEADD(day, n, d) nor d + CAST(n AS INTEGER): with a
  // bound or typed n, fakesnow fails on both (README "Snowflake engine", known limits).
  addDays: (d, n) => `(${d} + ${n})`,
  ident: (name) => `"${(/^[a-z_][a-z0-9_$]*$/.test(name) ? name.toUpperCase() : name).replace(/"/g, '""')}"`,
  // information_schema holds the folded name: compare `table_name = catalogName('customers')`.
  catalogName: (name) => (/^[a-z_][a-z0-9_$]*$/.test(name) ? name.toUpperCase() : name),
  sessions: {
    current: 'SELECT CURRENT_SESSION() AS "ID"',
    abort: (id) => {
      if (!/^\d+$/.test(id)) throw new Error(`snowflake: not a session id: ${id}`);
      return `SELECT SYSTEM$ABORT_SESSION(${id}) AS "RESULT"`;
    },
  },
};
