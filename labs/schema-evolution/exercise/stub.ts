/**
 * Exercise: write the compatibility check between a table's contract and an incoming file's
 * schema — the rule that decides whether a drifted file evolves the table, loads as is, or is
 * stopped before a row lands.
 *
 * Both arguments are column lists ({ name, type }), the types parsed from DuckDB's spelling:
 *   { kind: 'int', bits: 8 | 16 | 32 | 64 }              TINYINT … BIGINT
 *   { kind: 'decimal', precision, scale }                DECIMAL(p,s)
 *   { kind: 'double' } · { kind: 'text' } · { kind: 'bool' } · { kind: 'date' }
 *   { kind: 'struct', fields: Column[] }                 STRUCT(city VARCHAR, zip VARCHAR)
 * (JSON/CSV numbers have already been read at the contract's type where every value fits.)
 *
 * Rules the checks hold you to (npm run check -- schema-evolution):
 *   - match columns and struct fields by NAME, never by position;
 *   - a column only in the file is additive: append it to the contract;
 *   - a column only in the contract is breaking (removed, or renamed if a new one has its type);
 *   - a column in both loads at the smallest type that holds every value of both (INTEGER +
 *     BIGINT → BIGINT, DECIMAL(10,2) + DECIMAL(12,4) → DECIMAL(12,4)); none (INTEGER + VARCHAR,
 *     DECIMAL + DOUBLE) is breaking;
 *   - `changes` is non-empty exactly when the contract grows or widens (each becomes a version).
 * `typeName(t)` spells a type for messages ('DECIMAL(12,2)'); `sameType(a, b)` compares two.
 */
import type { Compatibility } from '../../../pipelines/schema-evolution/compat.ts';
import { sameType, typeName, type Column } from '../../../pipelines/schema-evolution/types.ts';

export function checkCompatibility(contract: readonly Column[], incoming: readonly Column[]): Compatibility {
  // TODO 1: index `incoming` by name; for each contract column, find its incoming twin.
  // TODO 2: missing → breaking { column, from: typeName(type), to: 'missing', reason: 'removed' | 'renamed', detail }.
  // TODO 3: present → the lossless supertype (structs: recurse on fields), or breaking 'incompatible'.
  // TODO 4: append the incoming columns the contract lacks; return { compatible: true, contract, changes }.
  void sameType;
  void typeName;
  throw new Error(`TODO: checkCompatibility(${contract.length} contract columns, ${incoming.length} incoming) is not written yet`);
}
