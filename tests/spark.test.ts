/**
 * The spark engine: a real Spark (local standalone cluster: 1 master + 2 one-core workers, or
 * SPARK_REMOTE) driven over Spark Connect from TypeScript. One cluster for the whole file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Engines } from '../pipelines/engines/index.ts';
import { parseProvisionMode } from '../pipelines/engines/provision-mode.ts';
import { SparkSqlError, int32Ipc, sparkServer, sparkSession, type SparkServer, type SparkSession } from '../pipelines/engines/spark/index.ts';
import { running } from './helpers.ts';

const engines = new Engines({ mode: parseProvisionMode(process.env.LAB_PROVISION), log: () => undefined });
let server: SparkServer;
let db: SparkSession;

beforeAll(async () => {
  server = await sparkServer(engines);
  db = await sparkSession(engines);
}, 150_000);
afterAll(() => engines.stopAll());

describe('spark engine: Spark Connect from TypeScript', () => {
  it('round-trips SQL types through Arrow: int, bigint > 2^53, decimal, double, string, date, timestamp, NULL', async () => {
    const [r] = await db.query(
      `SELECT CAST(7 AS INT) AS i, 9007199254740993 AS big, CAST(-42 AS BIGINT) AS small_big, CAST(12345.67 AS DECIMAL(12,2)) AS d,
              CAST(-0.05 AS DECIMAL(5,2)) AS dneg, 0.1D * 3 AS dbl, 'héllo, wörld' AS s, DATE'2024-02-29' AS dt,
              TIMESTAMP'2024-02-29 12:34:56.789' AS ts, CAST(NULL AS INT) AS n_int, CAST(NULL AS STRING) AS n_str, true AS b`,
    );
    expect(r).toEqual({
      i: 7,
      big: 9007199254740993n,
      small_big: -42,
      d: 12345.67,
      dneg: -0.05,
      dbl: 0.30000000000000004,
      s: 'héllo, wörld',
      dt: '2024-02-29',
      ts: new Date('2024-02-29T12:34:56.789Z'),
      n_int: null,
      n_str: null,
      b: true,
    });
  });

  it('binds $1, $2 parameters and keeps a session’s temp views and SET conf across statements', async () => {
    await db.exec('SET spark.sql.shuffle.partitions=3; CREATE OR REPLACE TEMP VIEW t AS SELECT id, id % 3 AS g FROM range(30)');
    const rows = await db.query<{ g: number; n: number }>('SELECT g, count(*) AS n FROM t WHERE id >= $1 AND $2 = $2 GROUP BY g ORDER BY g', [3, 'x']);
    expect(rows).toEqual([
      { g: 0, n: 9 },
      { g: 1, n: 9 },
      { g: 2, n: 9 },
    ]);
    expect(await db.query('SELECT $1 AS big, $2 AS ts', [2 ** 40, new Date('2020-01-01T00:00:00Z')])).toEqual([{ big: 2 ** 40, ts: new Date('2020-01-01T00:00:00Z') }]);
  });

  it('uploads Arrow columns (NULLs included) as a LocalRelation view', async () => {
    const n = 50_000;
    await db.createView('up', int32Ipc({ a: { values: Int32Array.from({ length: n }, (_, i) => i + 1) }, b: { values: Int32Array.from({ length: n }, (_, i) => i % 7), isNull: (i) => i % 10 === 0 } }));
    expect(await db.query('SELECT count(*) AS n, count(b) AS nb, sum(a) AS s FROM up')).toEqual([{ n, nb: n - n / 10, s: (n * (n + 1)) / 2 }]);
  });

  it('an error surfaces as one clear line: Spark’s error class and message, and the statement', async () => {
    const err = await db.query('SELECT * FROM no_such_table').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SparkSqlError);
    const msg = (err as Error).message;
    expect(msg).not.toContain('\n');
    expect(msg).toMatch(/^Spark: \[TABLE_OR_VIEW_NOT_FOUND\] .*no_such_table.* — in: SELECT \* FROM no_such_table$/);
  });

  it('the local cluster: 2 workers registered with the master, the Spark UI serves the REST API', async () => {
    if (server.provider !== 'local') return;
    const master = (await (await fetch(`${server.masterUiUrl}/json/`)).json()) as { aliveworkers: number; cores: number };
    expect(master).toMatchObject({ aliveworkers: 2, cores: 2 });
    const apps = (await (await fetch(`${server.uiUrl}/api/v1/applications`)).json()) as { id: string }[];
    expect(apps).toHaveLength(1);
    expect(server.workers.every((w) => w.pid !== null && running(w.pid))).toBe(true);
    expect(existsSync(server.dir!)).toBe(true);
  });
});
