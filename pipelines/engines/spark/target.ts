/**
 * `engines.target('spark')`: Spark as a `SqlEngine`, its tables Delta Lake tables. Each target is
 * a Spark Connect session of its own whose current database is a fresh one (`<runId>_<label>_<n>`):
 * dropped at stopAll() on a cluster someone else runs (SPARK_REMOTE); a local cluster's goes with
 * its temp dir.
 *
 * What a pipeline must know (the dialect says it, dialect.ts): Delta commits each statement on its
 * own. `transaction(fn)` therefore runs `fn`'s statements as they come — each is atomic, the group
 * is not, and nothing is rolled back when `fn` throws. A write that must be all-or-nothing is one
 * statement here (pipelines check `dialect.atomicity`); the labs' all-or-nothing claims (failure
 * injection after each statement) catch a multi-statement write that is not.
 */
import type { Engines } from '../index.ts';
import type { Row, SqlEngine } from '../types.ts';
import { SparkSession, SparkSqlError, rowsIpc } from './driver.ts';
import { sparkServer } from './index.ts';
import { sparkDialect } from './dialect.ts';

/**
 * On the local two-core cluster, where the labs' tables are thousands of rows: a statement's cost
 * is Delta's and Spark's fixed work, not the data. Together these about halved it in a spike (a
 * day's load of 1,000 keys: 1.8–2.5 s → 0.8–1.2 s per statement, beside another cluster's run).
 * Not for a real cluster, whose tables are not small.
 *   - one shuffle partition and one partition for Delta's log replay (2 by default here);
 *   - no adaptive re-planning (AQE) of queries whose every stage is one small task;
 *   - no per-file column statistics on write (data skipping has nothing to skip at this size).
 */
const LOCAL_TUNING: Record<string, string> = {
  'spark.sql.shuffle.partitions': '1',
  'spark.databricks.delta.snapshotPartitions': '1',
  'spark.sql.adaptive.enabled': 'false',
  'spark.databricks.delta.stats.collect': 'false',
};

/** Rows per upload in `insertRows` (a LocalRelation is one gRPC message; Spark takes up to 128 MiB). */
const UPLOAD_ROWS = 50_000;

export class SparkTarget implements SqlEngine {
  readonly name = 'spark' as const;
  readonly dialect = sparkDialect;
  private uploads = 0;

  private constructor(
    readonly session: SparkSession,
    readonly database: string,
  ) {}

  /** A new session on this engine set's Spark, in a new database, with Delta as the default table format. */
  static async open(engines: Engines, label: string): Promise<SparkTarget> {
    const database = engines.freshName(label);
    const session = await SparkSession.connect(await sparkServer(engines));
    try {
      // UTC: a TIMESTAMP_NTZ compares and hashes as UTC, as on the other engines. Delta: CREATE
      // TABLE without USING makes a Delta table (one commit per statement, MERGE, time travel).
      await session.setConf({
        'spark.sql.session.timeZone': 'UTC',
        'spark.sql.sources.default': 'delta',
        ...(session.server.masterUrl ? LOCAL_TUNING : {}),
      });
      await session.exec(`CREATE DATABASE ${database}`);
      await session.exec(`USE ${database}`).catch(async (err) => {
        await session.exec(`DROP DATABASE IF EXISTS ${database} CASCADE`).catch(() => undefined);
        throw err;
      });
    } catch (err) {
      await session.close();
      throw err;
    }
    return new SparkTarget(session, database);
  }

  query<T = Row>(sql: string, params?: readonly unknown[]): Promise<T[]> {
    return this.session.query<T>(sql, params);
  }

  exec(sql: string, params?: readonly unknown[]): Promise<void> {
    return this.session.exec(sql, params);
  }

  /** No grouping: each statement `fn` runs commits on its own (see the file's comment). */
  transaction<T>(fn: (tx: SqlEngine) => Promise<T>): Promise<T> {
    return fn(this);
  }

  /**
   * Uploads the rows as Arrow (a LocalRelation view), then one INSERT … SELECT per upload, each
   * value cast to its column's type (read with DESCRIBE): one commit per 50,000 rows, so a bigger
   * load is several commits, not one.
   */
  async insertRows(table: string, columns: readonly string[], rows: readonly (readonly unknown[])[]): Promise<void> {
    if (rows.length === 0) return;
    const q = this.dialect.ident;
    const described = await this.session.query<{ col_name: string; data_type: string }>(`DESCRIBE TABLE ${table}`);
    const typeOf = new Map(described.map((r) => [r.col_name.toLowerCase(), r.data_type]));
    const select = columns
      .map((c) => {
        const type = typeOf.get(c.toLowerCase());
        if (!type) throw new SparkSqlError(`Spark: table ${table} has no column ${c}`);
        return `CAST(${q(c)} AS ${type}) AS ${q(c)}`;
      })
      .join(', ');
    for (let start = 0; start < rows.length; start += UPLOAD_ROWS) {
      const view = `de_lab_upload_${this.uploads++}`;
      await this.session.createView(view, rowsIpc(columns, rows.slice(start, start + UPLOAD_ROWS)));
      try {
        await this.session.exec(`INSERT INTO ${table} (${columns.map(q).join(', ')}) SELECT ${select} FROM ${view}`);
      } finally {
        await this.session.exec(`DROP VIEW IF EXISTS ${view}`).catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    // On a cluster someone else runs, leave no database behind; a local one goes with its temp dir.
    if (!this.session.server.masterUrl)
      await this.session.exec(`DROP DATABASE IF EXISTS ${this.database} CASCADE`).catch((err) => process.stderr.write(`de-lab: could not drop Spark database ${this.database}: ${(err as Error).message}\n`));
    await this.session.close();
  }
}
