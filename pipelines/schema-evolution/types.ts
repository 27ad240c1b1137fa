/**
 * Column types as the compatibility check sees them: parsed from DuckDB's spelling (DESCRIBE of a
 * file, of a table) into a small tree, so rules are written over kinds and sizes, not strings.
 *
 *   int      TINYINT/SMALLINT/INTEGER/BIGINT (8/16/32/64 bits)
 *   decimal  DECIMAL(precision, scale): exact
 *   double   FLOAT/DOUBLE: binary floating point, not exact for decimal fractions
 *   text     VARCHAR
 *   struct   STRUCT(name type, …): nested fields, matched by name like columns
 *   other    anything else, compared by its spelling only
 */

export type ColumnType =
  | { kind: 'int'; bits: 8 | 16 | 32 | 64 }
  | { kind: 'decimal'; precision: number; scale: number }
  | { kind: 'double' }
  | { kind: 'text' }
  | { kind: 'bool' }
  | { kind: 'date' }
  | { kind: 'struct'; fields: Column[] }
  | { kind: 'other'; sql: string };

export interface Column {
  name: string;
  type: ColumnType;
}

const INT_BITS: Record<string, 8 | 16 | 32 | 64> = { TINYINT: 8, SMALLINT: 16, INTEGER: 32, INT: 32, BIGINT: 64 };
const INT_NAMES: Record<number, string> = { 8: 'TINYINT', 16: 'SMALLINT', 32: 'INTEGER', 64: 'BIGINT' };

/** Parses DuckDB's spelling of a type (`DECIMAL(10,2)`, `STRUCT(city VARCHAR, zip VARCHAR)`, …). */
export function parseType(sql: string): ColumnType {
  const s = sql.trim();
  const upper = s.toUpperCase();
  if (INT_BITS[upper]) return { kind: 'int', bits: INT_BITS[upper]! };
  const dec = /^(?:DECIMAL|NUMERIC)\s*\(\s*(\d+)\s*,\s*(\d+)\s*\)$/i.exec(s);
  if (dec) return { kind: 'decimal', precision: Number(dec[1]), scale: Number(dec[2]) };
  if (upper === 'DOUBLE' || upper === 'FLOAT' || upper === 'DOUBLE PRECISION') return { kind: 'double' };
  if (upper === 'VARCHAR' || upper === 'TEXT' || upper === 'CHARACTER VARYING') return { kind: 'text' };
  if (upper === 'BOOLEAN') return { kind: 'bool' };
  if (upper === 'DATE') return { kind: 'date' };
  if (upper.startsWith('STRUCT(') && s.endsWith(')')) {
    return { kind: 'struct', fields: splitTopLevel(s.slice(7, -1)).map(parseField) };
  }
  return { kind: 'other', sql: upper };
}

function parseField(def: string): Column {
  const m = /^\s*("(?:[^"]|"")+"|[^\s]+)\s+(.+)$/s.exec(def);
  if (!m) throw new Error(`cannot parse struct field ${JSON.stringify(def)}`);
  const raw = m[1]!;
  const name = raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw;
  return { name, type: parseType(m[2]!) };
}

/** Splits on commas outside parentheses and quotes. */
function splitTopLevel(s: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') quoted = !quoted;
    else if (!quoted && c === '(') depth++;
    else if (!quoted && c === ')') depth--;
    else if (!quoted && depth === 0 && c === ',') {
      out.push(s.slice(start, i));
      start = i + 1;
    }
  }
  if (s.slice(start).trim()) out.push(s.slice(start));
  return out;
}

/** DuckDB's spelling of a type: what ALTER TABLE and CAST take, and what error lines print. */
export function typeName(t: ColumnType): string {
  switch (t.kind) {
    case 'int':
      return INT_NAMES[t.bits]!;
    case 'decimal':
      return `DECIMAL(${t.precision},${t.scale})`;
    case 'double':
      return 'DOUBLE';
    case 'text':
      return 'VARCHAR';
    case 'bool':
      return 'BOOLEAN';
    case 'date':
      return 'DATE';
    case 'struct':
      return `STRUCT(${t.fields.map((f) => `${f.name} ${typeName(f.type)}`).join(', ')})`;
    case 'other':
      return t.sql;
  }
}

export const sameType = (a: ColumnType, b: ColumnType) => typeName(a) === typeName(b);

/** A schema as `name TYPE, …` (contract history rows, messages). */
export const schemaText = (cols: readonly Column[]) => cols.map((c) => `${c.name} ${typeName(c.type)}`).join(', ');

/** The inverse of `schemaText`. */
export const parseSchemaText = (text: string): Column[] => (text.trim() ? splitTopLevel(text).map(parseField) : []);
