import type { Dialect } from './types.ts';

/**
 * Dialect pieces that DuckDB and PostgreSQL share (both accept these spellings).
 * Engine dialects spread this and override what differs.
 */
export const standardDialect: Omit<Dialect, 'name' | 'hash64' | 'types'> = {
  sumExact: (h) => `CAST(COALESCE(SUM(CAST(${h} AS DECIMAL(38,0))), 0) AS VARCHAR)`,
  distinct: (a, b) => `(${a} IS DISTINCT FROM ${b})`,
  canonicalText: (expr, kind) => {
    // '\N' marks NULL (as COPY does) so NULL never collides with the empty string.
    const text =
      kind === 'double'
        ? // Round to 12 significant-ish digits so double noise across engines does not change the hash.
          `CAST(ROUND(CAST(${expr} AS NUMERIC(38,9)), 6) AS VARCHAR)`
        : kind === 'timestamp'
          ? `CAST(${expr} AS VARCHAR)`
          : kind === 'bool'
            ? `CASE WHEN ${expr} THEN 't' ELSE 'f' END`
            : `CAST(${expr} AS VARCHAR)`;
    return `COALESCE(${text}, '\\N')`;
  },
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
