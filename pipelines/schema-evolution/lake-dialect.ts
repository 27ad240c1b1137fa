/**
 * What the lake loader needs from a target engine beyond `Dialect`: how a contract type is
 * spelled in its DDL, how a struct field is read, and whether it reads the dropped files itself.
 * One entry per engine, so the loader never asks which engine it runs on.
 *
 *   DuckDB      reads Parquet/JSON/CSV itself; structs are STRUCT(…), a new field is ALTER TYPE
 *   PostgreSQL  the files are read by DuckDB and the rows inserted through the engine layer;
 *               a struct is JSONB (a new field needs no DDL: the contract still records it)
 */
import type { SqlEngine, TargetEngineName } from '../engines/types.ts';
import { typeName, type ColumnType } from './types.ts';

export interface LakeDialect {
  /** The target runs `read_parquet(…)` / `read_json(…)` / `read_csv(…)` itself. */
  readsFiles: boolean;
  /** The column type for a contract type. */
  sqlType(t: ColumnType): string;
  /** A struct field of `expr`, as an expression. */
  structField(expr: string, field: string): string;
  /** The reader's (DuckDB's) expression that turns a struct value into what the target stores. */
  structValue(expr: string): string;
}

const literal = (s: string) => `'${s.replace(/'/g, "''")}'`;

const DIALECTS: Partial<Record<TargetEngineName, LakeDialect>> = {
  duckdb: {
    readsFiles: true,
    sqlType: typeName,
    structField: (expr, field) => `struct_extract(${expr}, ${literal(field)})`,
    structValue: (expr) => expr,
  },
  postgres: {
    readsFiles: false,
    sqlType(t) {
      switch (t.kind) {
        case 'decimal':
          return `NUMERIC(${t.precision},${t.scale})`;
        case 'double':
          return 'DOUBLE PRECISION';
        case 'text':
          return 'TEXT';
        case 'struct':
          return 'JSONB';
        case 'int':
          return t.bits === 64 ? 'BIGINT' : t.bits === 32 ? 'INTEGER' : 'SMALLINT';
        default:
          return typeName(t);
      }
    },
    structField: (expr, field) => `(${expr} ->> ${literal(field)})`,
    structValue: (expr) => `CAST(to_json(${expr}) AS VARCHAR)`,
  },
};

export function lakeDialect(db: SqlEngine): LakeDialect {
  const d = DIALECTS[db.dialect.name];
  if (!d) throw new Error(`the schema-evolution loader has no lake dialect for ${db.dialect.name}`);
  return d;
}
