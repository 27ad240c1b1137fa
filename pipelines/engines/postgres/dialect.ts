import type { Dialect } from '../types.ts';
import { canonicalTextWith, standardDialect } from '../sql-common.ts';

export const postgresDialect: Dialect = {
  ...standardDialect,
  name: 'postgres',
  types: {
    int: 'INTEGER',
    bigint: 'BIGINT',
    double: 'DOUBLE PRECISION',
    decimal: (p, s) => `NUMERIC(${p},${s})`,
    text: 'TEXT',
    bool: 'BOOLEAN',
    date: 'DATE',
    timestamp: 'TIMESTAMP',
  },
  // Same 60 bits as DuckDB's: the first 15 hex digits of md5, read as a positive bigint
  // (bit(60) straight to bigint: a third cheaper per row than lpad to bit(64)).
  hash64: (t) => `('x' || substr(md5(${t}), 1, 15))::bit(60)::bigint`,
  canonicalText: canonicalTextWith({
    // EXTRACT(EPOCH …) is an exact NUMERIC, and numeric arithmetic is the costliest part of a row
    // hash. date_part is the same value correctly rounded to a double: ×1e6 stays within 0.5 µs
    // of the exact count while |epoch| < 2e9 s (1906–2033), so rounding recovers it exactly there.
    epochMicros: (x) =>
      `CASE WHEN abs(date_part('epoch', ${x})) < 2e9 THEN CAST(date_part('epoch', ${x}) * 1000000 AS BIGINT) ELSE CAST(EXTRACT(EPOCH FROM ${x}) * 1000000 AS BIGINT) END`,
  }),
};
