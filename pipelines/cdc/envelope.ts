/**
 * The change event, in Debezium's envelope shape (JSON value of a Kafka message):
 *
 *   { op: 'c' | 'u' | 'd' | 'r', before, after, ts_ms, source: { lsn, commit_lsn, txId, table, ts_ms, snapshot }, schema }
 *
 * Key of the Kafka message = the row's primary key as JSON (`{"id":17}`), so every change of one
 * row lands in one partition, in order. After a delete the capture sends a tombstone (same key,
 * null value) so a compacted topic can forget the row.
 *
 * Positions. `source.lsn` is the WAL position of the change record itself; `source.commit_lsn` is
 * the position of its transaction's commit. pgoutput sends whole transactions in commit order, so
 * along a partition (commit_lsn, lsn) only grows: that pair is the event's position, used to keep
 * the latest change per key and as the applied watermark. `ts_ms` (commit time, ms) is NOT an
 * order: every change of one transaction has the same ts_ms.
 */

export type Op = 'c' | 'u' | 'd' | 'r';

/** Column types the pipeline carries across engines (the target picks its dialect's type). */
export type LogicalType = 'int' | 'bigint' | 'double' | 'text' | 'bool' | 'timestamp' | 'date';

export type JsonValue = string | number | boolean | null;
export type RowImage = Record<string, JsonValue>;

export interface ColumnSpec {
  name: string;
  type: LogicalType;
}

/** What the apply side needs to create and evolve the target table: travels with every event. */
export interface TableSchema {
  /** Target table name (the source table's name, without schema). */
  name: string;
  key: string[];
  columns: ColumnSpec[];
}

export interface ChangeEvent {
  op: Op;
  before: RowImage | null;
  after: RowImage | null;
  /** When the capture built the event (ms); Debezium's top-level ts_ms. */
  ts_ms: number;
  source: {
    /** Change record LSN as a decimal string (64-bit; strings keep JSON exact). For `r`: the slot's consistent point. */
    lsn: string;
    /** Commit LSN of the transaction, decimal string. For `r`: the slot's consistent point. */
    commit_lsn: string;
    txId: number | null;
    /** `schema.table` at the source. */
    table: string;
    /** Commit time at the source (ms since epoch). For `r`: snapshot time. */
    ts_ms: number;
    snapshot: boolean;
  };
  schema: TableSchema;
}

/** One consumed message: the event plus where it came from. */
export interface ConsumedEvent {
  event: ChangeEvent;
  offset: string;
}

/** '16/B374D848' → 0x16B374D848n */
export function parseLsn(text: string): bigint {
  const [hi, lo] = text.split('/');
  if (hi === undefined || lo === undefined) throw new Error(`not an LSN: ${text}`);
  return (BigInt(`0x${hi}`) << 32n) | BigInt(`0x${lo}`);
}

export function formatLsn(lsn: bigint): string {
  return `${(lsn >> 32n).toString(16).toUpperCase()}/${(lsn & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Position of an event: (commit_lsn, lsn). Compare with `comparePosition`. */
export interface Position {
  commitLsn: bigint;
  lsn: bigint;
}

export function positionOf(e: ChangeEvent): Position {
  return { commitLsn: BigInt(e.source.commit_lsn), lsn: BigInt(e.source.lsn) };
}

export function comparePosition(a: Position, b: Position): number {
  if (a.commitLsn !== b.commitLsn) return a.commitLsn < b.commitLsn ? -1 : 1;
  if (a.lsn !== b.lsn) return a.lsn < b.lsn ? -1 : 1;
  return 0;
}

/** Postgres type OIDs we map; anything else travels as text. */
const PG_TYPES: Record<number, LogicalType> = {
  16: 'bool',
  20: 'bigint',
  21: 'int',
  23: 'int',
  700: 'double',
  701: 'double',
  1082: 'date',
  1114: 'timestamp',
};

export function logicalTypeOfOid(oid: number): LogicalType {
  return PG_TYPES[oid] ?? 'text';
}

/**
 * Text form of a Postgres value (as pgoutput and a text-mode query send it) → JSON value.
 * BIGINT stays a number while it is exact, a string beyond 2^53 (a JSON number that large is
 * rounded by every JavaScript reader). A double that is not finite travels as Postgres spells it,
 * `"NaN"`, `"Infinity"`, `"-Infinity"` (as Debezium's JSON does): JSON has no such numbers, and
 * JSON.stringify would write NaN as null — a value turned into a NULL. Every engine's double cast
 * reads those strings back.
 */
export function jsonValue(type: LogicalType, text: string | null): JsonValue {
  if (text === null) return null;
  switch (type) {
    case 'int':
      return Number(text);
    case 'double': {
      const n = Number(text);
      return Number.isFinite(n) ? n : text;
    }
    case 'bigint': {
      const n = Number(text);
      return Number.isSafeInteger(n) ? n : text;
    }
    case 'bool':
      return text === 't' || text === 'true';
    default:
      return text;
  }
}

/**
 * JSON.parse for change events, exact for integers beyond 2^53: such a literal (outside strings)
 * is read as its decimal string, as the capture itself writes them. Events written by another
 * producer (Debezium writes int64 columns and LSNs as JSON numbers) keep their digits.
 */
export function parseEventJson<T = unknown>(text: string): T {
  return JSON.parse(quoteLongIntegers(text)) as T;
}

/** Wraps integer literals outside ±(2^53 − 1) in quotes (the capture's rule for bigints); strings are left alone. */
export function quoteLongIntegers(text: string): string {
  if (!/\d{16}/.test(text)) return text; // the common case: nothing that long, nothing to scan
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (ch === 34 /* " */) {
      for (i++; i < text.length && text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92 /* \ */) i++;
      continue;
    }
    if ((ch >= 48 && ch <= 57) || ch === 45 /* - */) {
      // The whole number token (fraction and exponent included): only a bare integer is rewritten.
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j]!)) j++;
      const literal = text.slice(i, j);
      if (/^-?\d{16,}$/.test(literal) && !Number.isSafeInteger(Number(literal))) {
        out += `${text.slice(from, i)}"${literal}"`;
        from = j;
      }
      i = j - 1;
    }
  }
  return out + text.slice(from);
}

/** Kafka key of a row: its primary key as JSON, columns in key order. */
export function keyOf(key: readonly string[], row: RowImage): string {
  return JSON.stringify(Object.fromEntries(key.map((k) => [k, row[k] ?? null])));
}
