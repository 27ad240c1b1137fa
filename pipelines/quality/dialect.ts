/**
 * The SQL the quality checks need beyond the shared `Dialect`: a regular-expression match. DuckDB
 * spells it `regexp_matches(x, p)`, PostgreSQL `x ~ p`. Both return NULL for a NULL input, which
 * the compiler handles before (NULL is its own outcome). An engine added later registers here.
 */
import type { TargetEngineName } from '../engines/types.ts';

export interface QualityDialect {
  /** TRUE when `expr` matches the pattern (a bind parameter); NULL when `expr` is NULL. */
  regexMatch(expr: string, pattern: string): string;
  /** The same test, negated as the common answer writes it (`x !~ p`): NULL, not TRUE, for a NULL `x`. */
  regexNoMatch(expr: string, pattern: string): string;
}

const dialects = new Map<TargetEngineName, QualityDialect>([
  ['duckdb', { regexMatch: (x, p) => `regexp_matches(${x}, ${p})`, regexNoMatch: (x, p) => `NOT regexp_matches(${x}, ${p})` }],
  ['postgres', { regexMatch: (x, p) => `(${x} ~ ${p})`, regexNoMatch: (x, p) => `(${x} !~ ${p})` }],
  ['snowflake', { regexMatch: (x, p) => `REGEXP_LIKE(${x}, ${p})`, regexNoMatch: (x, p) => `NOT REGEXP_LIKE(${x}, ${p})` }],
]);

export function qualityDialect(engine: TargetEngineName): QualityDialect {
  const d = dialects.get(engine);
  if (!d) throw new Error(`quality: no regex SQL for engine ${engine} (register one in pipelines/quality/dialect.ts)`);
  return d;
}
