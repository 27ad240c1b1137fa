/**
 * Real Debezium events → the pipeline's ChangeEvent. The apply reads either capture: a message
 * with Debezium's JSON-converter shape (`{schema, payload}`) is converted here, anything else is
 * our capture's envelope already.
 *
 * What differs, and how it is mapped (Debezium PostgreSQL connector 3.6, JSON converter, values with
 * their Connect schema, `decimal.handling.mode=string`):
 *  - Position. `source.lsn` is the change's WAL position; `source.sequence` is
 *    `["<commit lsn of the transaction>", "<lsn>"]` (the first is null until the connector has seen
 *    a commit, and for snapshot rows). Our order is (commit_lsn, lsn): a missing commit LSN is taken
 *    as the change's own LSN, which keeps the stream's order (a transaction's changes all precede
 *    its commit, and the next transaction's commit follows it).
 *  - `snapshot` is a string ("true", "first", "last", "first_in_data_collection", …, "false").
 *  - Column types come from the Connect schema: int16/int32 → int, int64 → bigint, float/double →
 *    double, boolean → bool, string → text; `io.debezium.time.Date` (days since epoch) → date,
 *    `io.debezium.time.MicroTimestamp` / `Timestamp` / `NanoTimestamp` (since epoch) → timestamp,
 *    written as Postgres writes a timestamp (our capture's text form).
 *  - Numbers: int64 values are JSON numbers, read exactly by `parseEventJson` (a string past 2^53);
 *    a double that is NaN or ±Infinity is the string Postgres spells, as in our envelope.
 *  - The Kafka key (`{"id":17}`, its converter without schemas) names the key columns.
 */
import { parseEventJson, type ChangeEvent, type ColumnSpec, type JsonValue, type LogicalType, type Op, type RowImage, type TableSchema } from './envelope.ts';

interface ConnectField {
  field: string;
  type: string;
  name?: string;
  optional?: boolean;
  fields?: ConnectField[];
}

export interface DebeziumMessage {
  schema: ConnectField;
  payload: {
    op: Op;
    before: Record<string, JsonValue> | null;
    after: Record<string, JsonValue> | null;
    ts_ms: number;
    source: { lsn: number | string; sequence?: string | null; txId: number | null; schema: string; table: string; ts_ms: number; snapshot: string | boolean };
  };
}

export function isDebeziumMessage(v: unknown): v is DebeziumMessage {
  const m = v as DebeziumMessage | null;
  return typeof m === 'object' && m !== null && typeof m.schema === 'object' && typeof m.payload === 'object' && m.payload !== null && 'source' in m.payload;
}

const TIME_UNITS: Record<string, bigint> = {
  'io.debezium.time.Timestamp': 1000n, // ms → µs
  'io.debezium.time.MicroTimestamp': 1n,
  'io.debezium.time.NanoTimestamp': -1000n, // ns → µs (divide)
};

function logicalType(f: ConnectField): LogicalType {
  if (f.name === 'io.debezium.time.Date') return 'date';
  if (f.name && f.name in TIME_UNITS) return 'timestamp';
  switch (f.type) {
    case 'int8':
    case 'int16':
    case 'int32':
      return 'int';
    case 'int64':
      return 'bigint';
    case 'float32':
    case 'float64':
    case 'double':
    case 'float':
      return 'double';
    case 'boolean':
      return 'bool';
    default:
      return 'text';
  }
}

/** Days since 1970-01-01 → 'YYYY-MM-DD'. */
export function debeziumDate(days: number): string {
  return new Date(days * 86_400_000).toISOString().slice(0, 10);
}

/** µs since epoch → Postgres's text form of a timestamp: 'YYYY-MM-DD HH:MM:SS[.fraction without trailing zeros]'. */
export function debeziumTimestamp(micros: bigint): string {
  let secs = micros / 1_000_000n;
  let frac = micros % 1_000_000n;
  if (frac < 0n) {
    frac += 1_000_000n;
    secs -= 1n;
  }
  const base = new Date(Number(secs) * 1000).toISOString().slice(0, 19).replace('T', ' ');
  return frac === 0n ? base : `${base}.${frac.toString().padStart(6, '0').replace(/0+$/, '')}`;
}

function convertValue(f: ConnectField, v: JsonValue): JsonValue {
  if (v === null) return null;
  if (f.name === 'io.debezium.time.Date') return debeziumDate(Number(v));
  const unit = f.name ? TIME_UNITS[f.name] : undefined;
  if (unit !== undefined) {
    const n = BigInt(v as number | string);
    return debeziumTimestamp(unit < 0n ? n / -unit : n * unit);
  }
  return v;
}

function rowFields(schema: ConnectField): ConnectField[] {
  const image = schema.fields?.find((f) => f.field === 'after' || f.field === 'before');
  return image?.fields ?? [];
}

function image(fields: readonly ConnectField[], row: Record<string, JsonValue> | null): RowImage | null {
  if (!row) return null;
  const out: RowImage = {};
  for (const f of fields) if (f.field in row) out[f.field] = convertValue(f, row[f.field]!);
  return out;
}

/** One Debezium message (value parsed with `parseEventJson`, key as the Kafka key's JSON text) → ChangeEvent. */
export function fromDebezium(msg: DebeziumMessage, keyJson: string): ChangeEvent {
  const p = msg.payload;
  const fields = rowFields(msg.schema);
  const columns: ColumnSpec[] = fields.map((f) => ({ name: f.field, type: logicalType(f) }));
  const key = Object.keys(JSON.parse(keyJson) as Record<string, unknown>);
  const schema: TableSchema = { name: p.source.table, key, columns };
  const lsn = String(p.source.lsn);
  const sequence = p.source.sequence ? (JSON.parse(p.source.sequence) as (string | null)[]) : [];
  const snapshot = typeof p.source.snapshot === 'boolean' ? p.source.snapshot : p.source.snapshot !== 'false';
  return {
    op: p.op,
    before: image(fields, p.before),
    after: image(fields, p.after),
    ts_ms: p.ts_ms,
    source: {
      lsn,
      commit_lsn: sequence[0] ?? lsn,
      txId: p.source.txId,
      table: `${p.source.schema}.${p.source.table}`,
      ts_ms: p.source.ts_ms,
      snapshot,
    },
    schema,
  };
}

/** A Kafka message's value (key beside it) → ChangeEvent, whichever capture wrote it. */
export function decodeChangeEvent(key: Buffer | string | null, value: Buffer | string): ChangeEvent {
  const parsed = parseEventJson<unknown>(value.toString());
  return isDebeziumMessage(parsed) ? fromDebezium(parsed, key?.toString() ?? '{}') : (parsed as ChangeEvent);
}
