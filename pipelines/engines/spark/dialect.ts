import type { Dialect } from '../types.ts';
import { canonicalPartsWith, standardDialect } from '../sql-common.ts';

/**
 * Spark SQL on Delta Lake tables (the spark target, target.ts): only what differs from the shared
 * spellings. What Spark shares with the others and so is not here: `IS DISTINCT FROM`,
 * `CAST(x AS DATE)`, MERGE with `WHEN MATCHED AND … THEN UPDATE/DELETE … WHEN NOT MATCHED AND …
 * THEN INSERT`, `||` on strings, `VALUES (…) AS t(c)` derived tables.
 *
 * What Spark and Delta do not have, and the pipelines must do without:
 *   - transactions: every statement is one commit (`atomicity: 'statement'`);
 *   - PRIMARY KEY in CREATE TABLE (`primaryKeys: false`);
 *   - `UPDATE … FROM`, or a subquery in an UPDATE: an update from another table is a MERGE;
 *   - information_schema (`showColumns`); `VARCHAR` without a length (STRING).
 */
export const sparkDialect: Dialect = {
  ...standardDialect,
  name: 'spark',
  types: {
    int: 'INT',
    bigint: 'BIGINT',
    double: 'DOUBLE',
    decimal: (p, s) => `DECIMAL(${p},${s})`,
    text: 'STRING',
    bool: 'BOOLEAN',
    date: 'DATE',
    // Wall-clock time without zone, as TIMESTAMP on DuckDB/Postgres (Spark's TIMESTAMP has a zone).
    timestamp: 'TIMESTAMP_NTZ',
  },
  // The same 60 bits as every other engine: md5's first 15 hex digits, a positive integer.
  hash64: (t) => `CAST(conv(substr(md5(${t}), 1, 15), 16, 10) AS BIGINT)`,
  // SUM of BIGINT is a BIGINT on Spark (it would overflow, or fail under ANSI): DECIMAL(38,0) is exact.
  sumExact: (h) => `CAST(COALESCE(SUM(CAST(${h} AS DECIMAL(38,0))), 0) AS STRING)`,
  canonicalParts: canonicalPartsWith({
    // The session's time zone is UTC (target.ts): a TIMESTAMP_NTZ read as UTC, like the other engines.
    epochMicros: (x) => `unix_micros(CAST(${x} AS TIMESTAMP))`,
    // DATE − DATE is an interval on Spark.
    epochDays: (x) => `datediff(CAST(${x} AS DATE), DATE'1970-01-01')`,
    text: 'STRING',
    // 'double' hashes as every engine's up to 9e18; beyond, Spark prints '1.0E19' where DuckDB prints '1e+19'.
    double: 'DOUBLE',
    float: () => {
      // Spark prints doubles as Java does ('1.0E15', '1.0E-7'), and has no exact shortest-digits format.
      throw new Error("spark: the canonical 'float' kind is not available (Spark spells doubles as Java does); hash the column as 'double'");
    },
  }),
  // concat() is NULL when a piece is; concat_ws('', …) skips NULL pieces, as the others' concat() does.
  concatText: (parts) => `concat_ws('', ${parts.map((p) => (/^'[^']*'$/.test(p) ? p : `CAST(${p} AS STRING)`)).join(', ')})`,
  addDays: (d, n) => `date_add(${d}, CAST(${n} AS INT))`,
  ident: (name) => `\`${name.replace(/`/g, '``')}\``,
  atomicity: 'statement',
  primaryKeys: false,
  showColumns: (table) => `SHOW COLUMNS IN \`${table.replace(/`/g, '``')}\``,
};
