/**
 * The compatibility check between a table's contract and an incoming file's schema: the rule that
 * decides whether a drifted file evolves the table, loads as it is, or is stopped.
 *
 *   a column the contract lacks          additive: the contract grows a nullable column (old rows NULL)
 *   a column whose type the contract's   loads as it is (INTEGER into BIGINT); the contract is never narrowed
 *     type holds every value of
 *   a wider type with a lossless         widening: the contract takes the supertype (INTEGER → BIGINT,
 *     supertype                            DECIMAL(10,2) → DECIMAL(12,2), a struct gaining a field)
 *   a column the file lacks              breaking: removed (or renamed, when a new column of the same
 *                                          type appears): its rows would be NULL in a column that had values
 *   no lossless supertype                breaking: INTEGER ↔ VARCHAR, DECIMAL ↔ DOUBLE (a float cannot hold
 *                                          every decimal, nor a decimal every float)
 *
 * Columns and struct fields are matched by name, never by position.
 */
import { sameType, typeName, type Column, type ColumnType } from './types.ts';

/** The decimal digits an integer type needs left of the point. */
const INT_DIGITS = { 8: 3, 16: 5, 32: 10, 64: 19 } as const;
const MAX_PRECISION = 38;

export interface BreakingChange {
  /** Column (a struct field as `ship.zip`). */
  column: string;
  /** Type in the contract. */
  from: string;
  /** Type in the file, or `missing`. */
  to: string;
  reason: 'removed' | 'renamed' | 'incompatible';
  /** A few words: why it cannot load without changing values. */
  detail: string;
}

export type Compatibility =
  | {
      compatible: true;
      /** The contract the file loads under: the old one, or the old one grown / widened (same order, new columns last). */
      contract: Column[];
      /** What changed, one line each (`add discount DECIMAL(10,2)`, `widen amount DECIMAL(10,2) → DECIMAL(12,2)`); empty: none. */
      changes: string[];
    }
  | { compatible: false; breaking: BreakingChange[] };

/**
 * The smallest type that holds every value of both `a` and `b` exactly, or null when there is none
 * (a float and a decimal, a number and a string). Structs are handled by `checkCompatibility`.
 */
export function losslessSupertype(a: ColumnType, b: ColumnType): ColumnType | null {
  if (sameType(a, b)) return a;
  if (a.kind === 'int' && b.kind === 'int') return { kind: 'int', bits: Math.max(a.bits, b.bits) as 8 | 16 | 32 | 64 };
  const asDecimal = (t: ColumnType) =>
    t.kind === 'decimal' ? { int: t.precision - t.scale, scale: t.scale } : t.kind === 'int' ? { int: INT_DIGITS[t.bits], scale: 0 } : null;
  const da = asDecimal(a);
  const db = asDecimal(b);
  if (da && db && (a.kind === 'decimal' || b.kind === 'decimal')) {
    const scale = Math.max(da.scale, db.scale);
    const precision = Math.max(da.int, db.int) + scale;
    return precision <= MAX_PRECISION ? { kind: 'decimal', precision, scale } : null;
  }
  // A double holds every 32-bit integer exactly (53-bit mantissa), not every 64-bit one.
  if (a.kind === 'double' && b.kind === 'int' && b.bits <= 32) return a;
  if (b.kind === 'double' && a.kind === 'int' && a.bits <= 32) return b;
  return null;
}

/**
 * Compares the contract with an incoming schema, by name. Compatible: the contract to load under
 * (unchanged, grown or widened). Not: every breaking change, first one first.
 */
export function checkCompatibility(contract: readonly Column[], incoming: readonly Column[]): Compatibility {
  const changes: string[] = [];
  const breaking: BreakingChange[] = [];
  const evolved = compareFields(contract, incoming, '', changes, breaking);
  return breaking.length > 0 ? { compatible: false, breaking } : { compatible: true, contract: evolved, changes };
}

function compareFields(contract: readonly Column[], incoming: readonly Column[], prefix: string, changes: string[], breaking: BreakingChange[]): Column[] {
  const byName = new Map(incoming.map((c) => [c.name, c]));
  const known = new Set(contract.map((c) => c.name));
  const added = incoming.filter((c) => !known.has(c.name));
  const out: Column[] = [];
  for (const col of contract) {
    const path = prefix + col.name;
    const got = byName.get(col.name);
    if (!got) {
      // A new column of the same type where one went missing is most likely the same data, renamed.
      const twin = added.find((a) => sameType(a.type, col.type));
      breaking.push(
        twin
          ? { column: path, from: typeName(col.type), to: 'missing', reason: 'renamed', detail: `${prefix}${twin.name} ${typeName(twin.type)} came in instead` }
          : { column: path, from: typeName(col.type), to: 'missing', reason: 'removed', detail: 'its rows would be NULL in a column that had values' },
      );
      out.push(col);
      continue;
    }
    if (col.type.kind === 'struct' && got.type.kind === 'struct') {
      const fields = compareFields(col.type.fields, got.type.fields, `${path}.`, changes, breaking);
      const type: ColumnType = { kind: 'struct', fields };
      out.push({ name: col.name, type });
      continue;
    }
    const sup = losslessSupertype(col.type, got.type);
    if (!sup) {
      breaking.push({ column: path, from: typeName(col.type), to: typeName(got.type), reason: 'incompatible', detail: 'no type holds both without changing values' });
      out.push(col);
    } else {
      if (!sameType(sup, col.type)) changes.push(`widen ${path} ${typeName(col.type)} → ${typeName(sup)}`);
      out.push({ name: col.name, type: sup });
    }
  }
  for (const a of added) {
    changes.push(`add ${prefix}${a.name} ${typeName(a.type)}`);
    out.push(a);
  }
  return out;
}

/** The one line a quarantined file gets: file, column, old and new type, why (and how many more). */
export function quarantineLine(file: string, breaking: readonly BreakingChange[]): string {
  const [b, ...rest] = breaking;
  if (!b) return `${file}: quarantined`;
  return `${file}: column ${b.column} ${b.from} → ${b.to} (${b.reason}: ${b.detail})${rest.length ? ` (+${rest.length} more: ${rest.map((r) => r.column).join(', ')})` : ''}`;
}
