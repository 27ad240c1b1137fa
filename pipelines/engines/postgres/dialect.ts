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
  // Same 60 bits as DuckDB's: the first 15 hex digits of md5, as a positive bigint. The whole
  // digest is read as bits (an explicit cast to bit(64) keeps its first 64), to bigint, and shifted
  // down by one hex digit — no substr, no second text copy per row: about a third cheaper than
  // ('x' || substr(md5(t), 1, 15))::bit(60)::bigint, same values (tests/row-hash.test.ts).
  hash64: (t) => `((('x' || md5(${t}))::bit(64)::bigint >> 4) & 1152921504606846975)`,
  canonicalText: canonicalTextWith({
    // EXTRACT(EPOCH …) is an exact NUMERIC, and numeric arithmetic is the costliest part of a row
    // hash. date_part is the same value correctly rounded to a double: ×1e6 stays within 0.5 µs
    // of the exact count while |epoch| < 2e9 s (1906–2033), so rounding recovers it exactly there.
    epochMicros: (x) =>
      `CASE WHEN abs(date_part('epoch', ${x})) < 2e9 THEN CAST(date_part('epoch', ${x}) * 1000000 AS BIGINT) ELSE CAST(EXTRACT(EPOCH FROM ${x}) * 1000000 AS BIGINT) END`,
  }),
};
