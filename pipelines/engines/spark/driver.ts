/**
 * A Spark Connect client in TypeScript: gRPC (@grpc/grpc-js) with the protocol loaded from the
 * running Spark's own jar (proto.ts), SQL sent as a `SQL` relation in an ExecutePlan request,
 * results decoded from the Arrow IPC batches the server streams back (apache-arrow).
 *
 * Values map as on every engine of the project (engines/types.ts): BIGINT → number when safe,
 * else bigint; DECIMAL/DOUBLE → number; DATE → 'YYYY-MM-DD'; TIMESTAMP → Date (UTC, ms); NULL → null.
 */
import { randomUUID } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { DataType, Type, makeData, Int32, Int64, Float64, Utf8, Bool, RecordBatch, Schema, Field, Table, tableFromIPC, tableToIPC, Struct, vectorFromArray, type Vector } from 'apache-arrow';
import { LabError } from '../../errors.ts';
import type { Row, SqlValue } from '../types.ts';
import { connectJar, type SparkServer } from './provision.ts';
import { sparkConnectService } from './proto.ts';

/** An error Spark reported for a statement: its first line (error class and message), plus the statement's start. */
export class SparkSqlError extends LabError {}

/**
 * A bind parameter as a Spark SQL literal, inlined into the statement's text. Spark Connect has
 * named parameters, but with Delta Lake's SQL extension loaded they arrive unbound
 * ([UNBOUND_SQL_PARAMETER]: Delta's parser drops them), so every value is written out — exactly:
 * integers as BIGINT, doubles through their shortest round-trip text, instants as epoch
 * microseconds, strings with Spark's backslash escapes.
 */
function sqlLiteral(v: unknown): string {
  if (v === null || v === undefined) return 'NULL';
  if (typeof v === 'boolean') return v ? 'TRUE' : 'FALSE';
  if (typeof v === 'bigint') return `CAST(${v.toString()} AS BIGINT)`;
  if (typeof v === 'number') {
    if (Number.isInteger(v) && Math.abs(v) <= Number.MAX_SAFE_INTEGER) return Math.abs(v) <= 2 ** 31 - 1 ? String(v) : `CAST(${v} AS BIGINT)`;
    return Number.isFinite(v) ? `CAST('${String(v)}' AS DOUBLE)` : `CAST('${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'}' AS DOUBLE)`;
  }
  if (v instanceof Date) return `timestamp_micros(${BigInt(v.getTime()) * 1000n})`;
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  throw new SparkSqlError(`Spark: cannot bind a parameter of type ${typeof v}`);
}

const MS_PER_DAY = 86_400_000;

/** Reads an (optionally signed) little-endian integer of 32-bit words: a Decimal128 or Int64 value. */
function words(values: Uint32Array, at: number, n: number): bigint {
  let x = 0n;
  for (let w = n - 1; w >= 0; w--) x = (x << 32n) | BigInt(values[at + w]!);
  const bits = BigInt(32 * n);
  return x >= 1n << (bits - 1n) ? x - (1n << bits) : x;
}

function decimalNumber(unscaled: bigint, scale: number): number {
  if (scale <= 0) return Number(unscaled * 10n ** BigInt(-scale));
  // Through the decimal string: Number("12.34") rounds correctly, unscaled / 10^scale may not.
  const neg = unscaled < 0n;
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  return Number(`${neg ? '-' : ''}${digits.slice(0, -scale)}.${digits.slice(-scale)}`);
}

/** Column `vector` of one record batch as project values. */
function columnValues(vector: Vector, type: DataType): SqlValue[] {
  const n = vector.length;
  const out: SqlValue[] = new Array(n);
  const data = vector.data[0]!;
  switch (type.typeId) {
    case Type.Int: {
      const wide = (type as unknown as { bitWidth: number }).bitWidth === 64;
      for (let i = 0; i < n; i++) {
        if (!vector.isValid(i)) out[i] = null;
        else if (!wide) out[i] = Number(vector.get(i));
        else {
          const b = (data.values as BigInt64Array)[data.offset + i]!;
          out[i] = b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
        }
      }
      return out;
    }
    case Type.Decimal: {
      const { scale, bitWidth } = type as unknown as { scale: number; bitWidth: number };
      const w = bitWidth / 32;
      const values = new Uint32Array((data.values as Uint8Array).buffer, (data.values as Uint8Array).byteOffset, ((data.values as Uint8Array).byteLength / 4) | 0);
      for (let i = 0; i < n; i++) out[i] = vector.isValid(i) ? decimalNumber(words(values, (data.offset + i) * w, w), scale) : null;
      return out;
    }
    case Type.Date: {
      const unit = (type as unknown as { unit: number }).unit; // 0 = DAY (int32 days), 1 = MILLISECOND (int64)
      for (let i = 0; i < n; i++) {
        if (!vector.isValid(i)) out[i] = null;
        else {
          const raw = data.values[data.offset + i] as number | bigint;
          const ms = unit === 0 ? Number(raw) * MS_PER_DAY : Number(raw);
          out[i] = new Date(ms).toISOString().slice(0, 10);
        }
      }
      return out;
    }
    case Type.Timestamp: {
      const unit = (type as unknown as { unit: number }).unit; // 0 s, 1 ms, 2 µs, 3 ns
      const perMs = [0.001, 1, 1000, 1_000_000][unit]!;
      for (let i = 0; i < n; i++) {
        if (!vector.isValid(i)) out[i] = null;
        else out[i] = new Date(Math.floor(Number((data.values as BigInt64Array)[data.offset + i]!) / perMs));
      }
      return out;
    }
    case Type.Float:
    case Type.Utf8:
    case Type.LargeUtf8:
    case Type.Bool:
      for (let i = 0; i < n; i++) out[i] = vector.isValid(i) ? (vector.get(i) as SqlValue) : null;
      return out;
    case Type.Null:
      return out.fill(null);
    default:
      for (let i = 0; i < n; i++) out[i] = vector.isValid(i) ? String(vector.get(i)) : null;
      return out;
  }
}

/** Rows of an Arrow table, with the value mapping above. */
export function arrowRows(table: Table): Row[] {
  const rows: Row[] = [];
  const fields = table.schema.fields;
  for (const batch of table.batches) {
    const cols = fields.map((f, c) => columnValues(batch.getChildAt(c)!, f.type));
    for (let i = 0; i < batch.numRows; i++) {
      const row: Row = {};
      fields.forEach((f, c) => (row[f.name] = cols[c]![i]!));
      rows.push(row);
    }
  }
  return rows;
}

/** Int32 columns (NULL where `nulls` says) as Arrow IPC stream bytes: what a LocalRelation carries. */
export function int32Ipc(columns: Record<string, { values: Int32Array; isNull?: (i: number) => boolean }>): Uint8Array {
  const fields: Field[] = [];
  const children = Object.entries(columns).map(([name, { values, isNull }]) => {
    let nullBitmap: Uint8Array | undefined;
    let nullCount = 0;
    if (isNull) {
      nullBitmap = new Uint8Array(Math.ceil(values.length / 8)).fill(0xff);
      for (let i = 0; i < values.length; i++) {
        if (isNull(i)) {
          nullBitmap[i >> 3]! &= ~(1 << (i & 7));
          nullCount++;
        }
      }
    }
    fields.push(new Field(name, new Int32(), !!isNull));
    return makeData({ type: new Int32(), data: values, length: values.length, nullCount, nullBitmap: nullCount ? nullBitmap : undefined });
  });
  const length = children[0]?.length ?? 0;
  const schema = new Schema(fields);
  const batch = new RecordBatch(schema, makeData({ type: new Struct(fields), length, nullCount: 0, children }));
  return tableToIPC(new Table(schema, [batch]), 'stream');
}

/**
 * Rows of project values (engines/types.ts) as Arrow IPC stream bytes, one column per name, each
 * column typed by its values: all integers → Int64, other numbers → Float64, booleans → Bool, else
 * text (a Date as 'YYYY-MM-DD HH:MM:SS.sss', UTC; an all-NULL column too). The INSERT … SELECT that
 * reads the uploaded view casts each column to its target type (SparkTarget.insertRows): text to
 * DATE or TIMESTAMP_NTZ, Int64 to INT. A bigint outside the 64-bit range is refused.
 */
export function rowsIpc(columns: readonly string[], rows: readonly (readonly unknown[])[]): Uint8Array {
  const vectors: Record<string, Vector> = {};
  columns.forEach((name, c) => {
    const values = rows.map((r) => r[c] ?? null);
    const present = values.filter((v) => v !== null);
    if (present.length > 0 && present.every((v) => typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v))))
      vectors[name] = vectorFromArray(
        values.map((v) => {
          if (v === null) return null;
          const b = BigInt(v as number | bigint);
          if (b !== BigInt.asIntN(64, b)) throw new SparkSqlError(`Spark: ${b} in column ${name} is outside BIGINT`);
          return b;
        }),
        new Int64(),
      );
    else if (present.length > 0 && present.every((v) => typeof v === 'number')) vectors[name] = vectorFromArray(values as (number | null)[], new Float64());
    else if (present.length > 0 && present.every((v) => typeof v === 'boolean')) vectors[name] = vectorFromArray(values as (boolean | null)[], new Bool());
    else vectors[name] = vectorFromArray(values.map((v) => (v === null ? null : v instanceof Date ? v.toISOString().replace('T', ' ').replace('Z', '') : String(v))), new Utf8());
  });
  return tableToIPC(new Table(vectors), 'stream');
}

/** `$n` outside quoted strings and identifiers replaced by the n-th parameter's literal. */
function inlineParams(query: string, params: readonly unknown[]): string {
  let out = '';
  for (let i = 0; i < query.length; i++) {
    const ch = query[i]!;
    if (ch === "'" || ch === '"' || ch === '`') {
      // Copy the quoted run whole (a backslash escapes the next character inside it).
      let j = i + 1;
      while (j < query.length && query[j] !== ch) j += query[j] === '\\' ? 2 : 1;
      out += query.slice(i, j + 1);
      i = j;
    } else if (ch === '$' && /\d/.test(query[i + 1] ?? '')) {
      let j = i + 1;
      while (/\d/.test(query[j] ?? '')) j++;
      const n = Number(query.slice(i + 1, j));
      if (n < 1 || n > params.length) throw new SparkSqlError(`Spark: the statement uses $${n}, ${params.length} parameter(s) given`);
      out += sqlLiteral(params[n - 1]);
      i = j - 1;
    } else out += ch;
  }
  return out;
}

/** The first non-empty line of Spark's error text (some errors, a parse error say, start with a blank one). */
function firstLine(text: string | undefined): string {
  return (text ?? '').split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
}

interface ExecuteResponse {
  arrow_batch?: { row_count: string; data: Buffer };
  response_type?: string;
}

export interface SparkConnectOptions {
  /** gRPC deadline of one statement, ms (default 10 min). */
  timeoutMs?: number;
}

/**
 * One Spark Connect session. Statements run one at a time, in order; the session's temp views
 * and `SET` configuration live as long as it does.
 */
export class SparkSession {
  readonly name = 'spark' as const;
  readonly sessionId = randomUUID();
  private closed = false;

  private constructor(
    private readonly client: grpc.Client & Record<string, (...a: unknown[]) => unknown>,
    readonly server: SparkServer,
    private readonly timeoutMs: number,
  ) {}

  static async connect(server: SparkServer, opts: SparkConnectOptions = {}): Promise<SparkSession> {
    const Service = sparkConnectService(connectJar(server.jarsDir));
    const target = server.remote.replace(/^sc:\/\//, '').replace(/\/.*$/, '');
    const client = new Service(target, grpc.credentials.createInsecure(), {
      // Arrow batches are up to a few MiB; a LocalRelation upload is tens of MiB.
      'grpc.max_receive_message_length': -1,
      'grpc.max_send_message_length': -1,
    }) as unknown as grpc.Client & Record<string, (...a: unknown[]) => unknown>;
    await new Promise<void>((resolve, reject) =>
      client.waitForReady(Date.now() + 30_000, (err?: Error) => (err ? reject(new LabError(`Spark: Connect server ${server.remote} does not answer (${err.message})`)) : resolve())),
    );
    return new SparkSession(client, server, opts.timeoutMs ?? 600_000);
  }

  private execute(plan: Record<string, unknown>, what: string): Promise<Table | null> {
    if (this.closed) return Promise.reject(new SparkSqlError('Spark: session closed'));
    const request = { session_id: this.sessionId, user_context: { user_id: 'de-lab', user_name: 'de-lab' }, operation_id: randomUUID(), plan, client_type: 'de-lab/ts' };
    return new Promise((resolve, reject) => {
      const batches: Buffer[] = [];
      const call = this.client.ExecutePlan!(request, new grpc.Metadata(), { deadline: Date.now() + this.timeoutMs }) as grpc.ClientReadableStream<ExecuteResponse>;
      call.on('data', (r: ExecuteResponse) => {
        if (r.arrow_batch?.data?.length) batches.push(r.arrow_batch.data);
      });
      call.on('error', (err: grpc.ServiceError) => {
        // Spark's message: "[ERROR_CLASS] text. SQLSTATE: …" then the plan; the first line says it.
        const first = firstLine(err.details || err.message) || `gRPC status ${err.code}`;
        const stmt = what.replace(/\s+/g, ' ').trim();
        reject(new SparkSqlError(`Spark: ${first} — in: ${stmt.length > 120 ? stmt.slice(0, 117) + '…' : stmt}`));
      });
      call.on('end', () => {
        if (batches.length === 0) return resolve(null);
        // Each batch is a whole IPC stream (schema + one record batch): decode each, concatenate.
        const tables = batches.map((b) => tableFromIPC(b));
        resolve(tables.length === 1 ? tables[0]! : tables[0]!.concat(...tables.slice(1)));
      });
    });
  }

  /** `$1, $2, …` parameters written out as literals (sqlLiteral), so the same SQL text runs on every engine. */
  private sqlRelation(query: string, params?: readonly unknown[]): Record<string, unknown> {
    if (!params?.length) return { sql: { query } };
    return { sql: { query: inlineParams(query, params) } };
  }

  /** Runs one statement and returns its result as Arrow (null when it returned no batch). */
  arrow(query: string, params?: readonly unknown[]): Promise<Table | null> {
    return this.execute({ root: this.sqlRelation(query, params) }, query);
  }

  async query<T = Row>(query: string, params?: readonly unknown[]): Promise<T[]> {
    const t = await this.arrow(query, params);
    return (t ? arrowRows(t) : []) as T[];
  }

  /** Runs statements (`;`-separated without params) and discards what they return. */
  async exec(sql: string, params?: readonly unknown[]): Promise<void> {
    const statements = params?.length ? [sql] : sql.split(/;(?=\s|$)/).map((s) => s.trim()).filter(Boolean);
    for (const s of statements) await this.execute({ command: { sql_command: { input: this.sqlRelation(s, params) } } }, s);
  }

  /** Sets session configuration (`SET k=v` for several keys, in one Config request). */
  async setConf(conf: Record<string, string>): Promise<void> {
    if (this.closed) throw new SparkSqlError('Spark: session closed');
    const pairs = Object.entries(conf).map(([key, value]) => ({ key, value }));
    await new Promise<void>((resolve, reject) =>
      (this.client.Config as (req: unknown, md: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null) => void) => void).call(
        this.client,
        { session_id: this.sessionId, user_context: { user_id: 'de-lab', user_name: 'de-lab' }, operation: { set: { pairs } } },
        new grpc.Metadata(),
        { deadline: Date.now() + 60_000 },
        (err) => (err ? reject(new SparkSqlError(`Spark: ${firstLine(err.details || err.message) || `gRPC status ${err.code}`} — in: set ${pairs.map((p) => p.key).join(', ')}`)) : resolve()),
      ),
    );
  }

  /** Sends Arrow IPC bytes to the server as a LocalRelation and names it as a temp view of this session. */
  async createView(name: string, ipc: Uint8Array): Promise<void> {
    await this.execute({ command: { create_dataframe_view: { input: { local_relation: { data: Buffer.from(ipc) } }, name, is_global: false, replace: true } } }, `create view ${name} (${ipc.byteLength} bytes)`);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => {
      const release = this.client.ReleaseSession as ((req: unknown, cb: () => void) => void) | undefined;
      if (!release) return resolve();
      const timer = setTimeout(resolve, 2000);
      release.call(this.client, { session_id: this.sessionId, user_context: { user_id: 'de-lab' } }, () => (clearTimeout(timer), resolve()));
    });
    this.client.close();
  }
}
