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
  // Same 60 bits as DuckDB's: the first 15 hex digits of md5, read as a positive bigint
  // (bit(60) straight to bigint: a third cheaper per row than lpad to bit(64)).
  hash64: (t) => `('x' || substr(md5(${t}), 1, 15))::bit(60)::bigint`,
};
