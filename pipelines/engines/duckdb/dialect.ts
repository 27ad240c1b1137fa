import type { Dialect } from '../types.ts';
import { canonicalPartsWith, standardDialect } from '../sql-common.ts';

export const duckdbDialect: Dialect = {
  ...standardDialect,
  name: 'duckdb',
  types: {
    int: 'INTEGER',
    bigint: 'BIGINT',
    double: 'DOUBLE',
    decimal: (p, s) => `DECIMAL(${p},${s})`,
    text: 'VARCHAR',
    bool: 'BOOLEAN',
    date: 'DATE',
    timestamp: 'TIMESTAMP',
  },
  // DuckDB casts '0x…' strings to integers; 15 hex digits = 60 bits, always positive.
  hash64: (t) => `CAST('0x' || substr(md5(${t}), 1, 15) AS BIGINT)`,
  // No index to serve BETWEENs: many key ranges filter as a generated key set (Dialect.keyRangeFilter).
  keyRangeFilter: 'key-set',
  // hash() of NULL is a fixed value unlike any string's, and the columns are combined by position
  // (hash(NULL, 'x') <> hash('x', NULL)): NULL-safe as IS DISTINCT FROM, up to a 2^-64 collision.
  changeDigest: (cols) => [`hash(${cols.join(', ')})`],
  // EXTRACT(EPOCH …) is a DOUBLE on DuckDB (sub-µs error far from 1970); epoch_us is exact.
  canonicalParts: canonicalPartsWith({ epochMicros: (x) => `epoch_us(${x})` }),
};
