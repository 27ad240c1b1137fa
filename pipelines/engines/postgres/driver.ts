import pg from 'pg';
import type { Row } from '../types.ts';
import { SerialSqlEngine, valuesInserts } from '../base.ts';
import { postgresDialectFor } from './dialect.ts';
import type { Dialect } from '../types.ts';
import { EngineUnavailableError } from '../../errors.ts';

// Map Postgres types onto the shared value mapping in ../types.ts.
const parsers: Record<number, (s: string) => unknown> = {
  20: (s) => (Number.isSafeInteger(Number(s)) ? Number(s) : BigInt(s)), // int8
  1700: (s) => Number(s), // numeric
  1082: (s) => s, // date stays 'YYYY-MM-DD'
  1114: (s) => new Date(s.replace(' ', 'T') + 'Z'), // timestamp without time zone, read as UTC
};
const types = {
  getTypeParser: (oid: number, format?: string) =>
    (parsers[oid] as ((s: string) => unknown) | undefined) ?? pg.types.getTypeParser(oid, format as 'text'),
};

/** One PostgreSQL connection (a `pg.Client`), so transactions are real and ordered. */
export class PgEngine extends SerialSqlEngine {
  readonly name = 'postgres' as const;
  protected override readonly beginStatement = 'BEGIN';

  private constructor(
    readonly client: pg.Client,
    readonly url: string,
    /** Chosen for the server's version (PostgreSQL 18 hashes rows more cheaply). */
    readonly dialect: Dialect,
  ) {
    super();
  }

  static async connect(url: string, options: { applicationName?: string } = {}): Promise<PgEngine> {
    const client = new pg.Client({ connectionString: url, types, application_name: options.applicationName ?? 'de-lab' });
    client.on('error', () => undefined); // a server stop while idle is reported on the next query
    try {
      await client.connect();
    } catch (err) {
      throw new EngineUnavailableError(`PostgreSQL at ${redact(url)} does not answer: ${(err as Error).message}`);
    }
    try {
      const res = await client.query<{ server_version_num: string }>('SHOW server_version_num');
      return new PgEngine(client, url, postgresDialectFor(Number(res.rows[0]!.server_version_num)));
    } catch (err) {
      await client.end().catch(() => undefined);
      throw err;
    }
  }

  async query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.serial(async () => {
      const res = await this.client.query(sql, params as unknown[] | undefined);
      // A multi-statement script returns an array of results; the last one carries the rows.
      const last = Array.isArray(res) ? res[res.length - 1] : res;
      return (last?.rows ?? []) as T[];
    });
  }

  async exec(sql: string, params?: readonly unknown[]): Promise<void> {
    await this.query(sql, params && params.length > 0 ? params : undefined);
  }

  async insertRows(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void> {
    const cols = columns.map((c) => this.dialect.ident(c)).join(', ');
    // The protocol allows 65,535 binds per statement.
    for (const { sql, params } of valuesInserts(table, cols, columns.length, rows, { maxBinds: 60000, placeholder: (i) => `$${i + 1}` })) {
      await this.exec(sql, params);
    }
  }

  async close(): Promise<void> {
    await this.drain();
    await this.client.end().catch(() => undefined);
  }
}

/** A URL with its password hidden, for messages. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}
