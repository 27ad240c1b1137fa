import type { Dialect } from '../types.ts';
import { standardDialect } from '../sql-common.ts';

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
  // Same 60 bits as DuckDB's: the first 15 hex digits of md5, read as a positive bigint.
  hash64: (t) => `('x' || lpad(substr(md5(${t}), 1, 15), 16, '0'))::bit(64)::bigint`,
};
