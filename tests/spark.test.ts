/**
 * The spark engine: a real Spark (local standalone cluster: 1 master + 2 one-core workers, or
 * SPARK_REMOTE) driven over Spark Connect from TypeScript. One cluster for the whole file.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { Engines } from '../pipelines/engines/index.ts';
import { parseProvisionMode } from '../pipelines/engines/provision-mode.ts';
import { SparkSqlError, int32Ipc, sparkServer, sparkSession, type SparkServer, type SparkSession } from '../pipelines/engines/spark/index.ts';
import { installedSparkHome } from '../pipelines/engines/spark/provision.ts';
import { running } from './helpers.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import { skewLab, SKEW_PARAMS } from '../labs/skew/lab.ts';
import { SPARK_BASIS } from '../labs/skew/spark.ts';
import { sparkHash, spreadSalts } from '../pipelines/skew/spark.ts';
import type { LabReport } from '../labs/contract.ts';
import { checkImplementation } from '../labs/runner.ts';
import { scd2Lab } from '../labs/scd2/lab.ts';
import { scd2Pitfalls } from '../labs/scd2/pitfalls.ts';
import { compactionLab } from '../labs/compaction/lab.ts';
import { compactionPitfalls } from '../labs/compaction/pitfalls.ts';
import type { Compactor } from '../pipelines/compaction/index.ts';
import { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';
import { canonicalRowHash } from '../pipelines/engines/sql-common.ts';
import type { SqlEngine } from '../pipelines/engines/types.ts';

const engines = new Engines({ mode: parseProvisionMode(process.env.LAB_PROVISION), log: () => undefined });
let server: SparkServer;
let db: SparkSession;

/**
 * Spark's jars come from PyPI's pyspark (~520 MB, once). CI installs them (scripts/ci.d/spark.sh)
 * and runs this file (`npm run test:spark`, its own run: a four-JVM cluster beside the other
 * files starved them); on a machine without them it skips with that line rather
 * than downloading half a gigabyte in the middle of a test run. SPARK_REMOTE uses a cluster instead.
 */
const noSpark = !process.env.SPARK_REMOTE && !installedSparkHome() && process.env.CI !== 'true';
if (noSpark) process.stderr.write('spark.test.ts skipped: Spark is not installed — bash scripts/ci.d/spark.sh (PyPI pyspark, ~520 MB, once), or set SPARK_REMOTE\n');

beforeAll(async () => {
  if (noSpark) return;
  server = await sparkServer(engines);
  db = await sparkSession(engines);
}, 240_000);
afterAll(() => engines.stopAll());

describe.skipIf(noSpark)('spark engine: Spark Connect from TypeScript', () => {
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
    await db.setConf({ 'spark.sql.shuffle.partitions': '5', 'spark.sql.session.timeZone': 'UTC' });
    expect(await db.query('SET spark.sql.shuffle.partitions')).toEqual([{ key: 'spark.sql.shuffle.partitions', value: '5' }]);
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

describe.skipIf(noSpark)('Delta Lake on the cluster (delta-spark 4.4.0 beside Spark 4.2.1)', () => {
  const t = `delta_${process.pid}`;
  afterAll(async () => {
    if (db) await db.exec(`DROP TABLE IF EXISTS ${t}`).catch(() => undefined);
  });
  const fingerprint = async (version?: number) =>
    (await db.query<{ n: number; fp: number }>(`SELECT count(*) AS n, sum(hash(k, v)) AS fp FROM ${t}${version === undefined ? '' : ` VERSION AS OF ${version}`}`))[0]!;

  it('parameters are written into the statement as exact literals (Delta’s parser leaves named ones unbound): quotes, backslashes, a $1 inside a string', async () => {
    const tricky = "it's a \\path\\ and a $1";
    const [r] = await db.query<{ s: string; inside: string; big: bigint; d: number; ts: Date }>(
      `SELECT $1 AS s, 'kept: $1' AS inside, $2 AS big, $3 AS d, $4 AS ts`,
      [tricky, 9007199254740993n, 0.1 + 0.2, new Date('2024-02-29T12:34:56.789Z')],
    );
    expect(r).toEqual({ s: tricky, inside: 'kept: $1', big: 9007199254740993n, d: 0.30000000000000004, ts: new Date('2024-02-29T12:34:56.789Z') });
  });

  it('OPTIMIZE rewrites three small inserts as one file, same rows; the version before it still reads the same; MERGE upserts; one commit each', async () => {
    // Few statements: each costs 0.5–7 s on this two-core cluster (Delta replays its log in a job).
    await db.exec(`CREATE TABLE ${t} (k INT, v STRING) USING delta`);
    for (let i = 0; i < 3; i++) await db.exec(`INSERT INTO ${t} SELECT CAST(id AS INT) AS k, concat('v', id) AS v FROM range($1, $2)`, [i * 100, i * 100 + 100]);
    const before = (await db.query<{ numFiles: number; format: string }>(`DESCRIBE DETAIL ${t}`))[0]!;
    expect(before.format).toBe('delta');
    expect(before.numFiles).toBeGreaterThanOrEqual(3); // one commit per INSERT, a file per task at least
    const rows = await fingerprint();
    expect(rows.n).toBe(300);

    const [optimized] = await db.query<{ metrics: string }>(`OPTIMIZE ${t}`);
    expect(JSON.parse(optimized!.metrics)).toMatchObject({ numFilesAdded: 1, numFilesRemoved: before.numFiles });
    expect(await fingerprint()).toEqual(rows);
    expect(await fingerprint(3)).toEqual(rows); // the last INSERT's version: old files stay until VACUUM, its readers are not broken

    const [merged] = await db.query(`MERGE INTO ${t} AS d USING (SELECT CAST(id AS INT) AS k, 'new' AS v FROM range(250, 350)) AS s ON d.k = s.k
                   WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT (k, v) VALUES (s.k, s.v)`);
    expect(merged).toMatchObject({ num_updated_rows: 50, num_inserted_rows: 50, num_deleted_rows: 0 });
    const history = (await db.query<{ version: number; operation: string }>(`DESCRIBE HISTORY ${t}`)).map(({ version, operation }) => ({ version, operation })).sort((x, y) => x.version - y.version);
    expect(history).toEqual(['CREATE TABLE', 'WRITE', 'WRITE', 'WRITE', 'OPTIMIZE', 'MERGE'].map((operation, version) => ({ version, operation })));
  });
});

describe.skipIf(noSpark)('skew --engine spark: the strategies on the cluster, judged by the lab’s own claims', () => {
  let report: LabReport;
  const claim = (id: string) => report.claims.find((c) => c.id === id)!;
  beforeAll(async () => {
    // 100k payments: the claims below are row-based and the answer exact; timings only reported.
    report = await runLab(skewLab, { seed: 42, scale: 0.05, engine: 'spark', provision: 'auto', out: Reporter.silent(), engines, skipPitfalls: true });
  }, 240_000);

  it('the JS model of Spark’s partitioner is Spark’s: hash() agrees, and each hot key’s K salt values land on K distinct reducers', async () => {
    const cases = [[1], [-7], [2147483647], [57056, 0], [57056, 13], [null, 5], [123, null, 9]] as (number | null)[][];
    const sql = cases.map((c, i) => `hash(${c.map((v) => (v === null ? 'CAST(NULL AS INT)' : `CAST(${v} AS INT)`)).join(', ')}) AS h${i}`).join(', ');
    const [row] = await db.query(`SELECT ${sql}`);
    expect(Object.values(row!)).toEqual(cases.map((c) => sparkHash(...c)));
    const values = spreadSalts(57056, 16, 16);
    const [spread] = await db.query<{ n: number }>(`SELECT count(DISTINCT pmod(hash(57056, v), 16)) AS n FROM VALUES ${values.map((v) => `(${v})`).join(', ')} AS t(v)`);
    expect(spread!.n).toBe(16);
  });

  it('claim same-answer on Spark: all five strategies, inner and left, return DuckDB’s rows (count and fingerprint)', () => {
    const c = claim('same-answer');
    expect(c.passed, c.counterexample).toBe(true);
    expect(c.evidence).toMatchObject({ comparisons: 10, equal: 10, plain_matches_duckdb: true, duckdb_left_rows: 100_000 });
  });

  it('claim balance on Spark, from records read per task (REST API): plain ≥ 6× the average on one reducer, salted ≤ 1.5×', () => {
    const c = claim('balance');
    expect(c.passed, c.counterexample).toBe(true);
    expect(c.evidence.ratio_before as number).toBeGreaterThanOrEqual(SKEW_PARAMS.minRatioBefore);
    expect(c.evidence.ratio_after as number).toBeLessThanOrEqual(SKEW_PARAMS.maxRatioAfter);
    const bar = report.charts!.find((ch) => ch.id === 'skew-partition-rows');
    // 16 reducers each, and every joined input row accounted for by some task.
    expect(bar?.kind === 'bar' && bar.series.map((s) => s.points.length)).toEqual([16, 16]);
  });

  it('claim makespan on Spark: scheduled from the tasks’ real CPU times (benchmark: reported, asserted on rows only)', () => {
    const c = claim('makespan');
    expect(c.evidence.basis).toBe(SPARK_BASIS);
    // At 100k payments Spark's fixed per-task cost sets the makespan: the bar is judged at scale ≥ 1.
    expect(c.skipped).toBe(true);
    expect(c.notJudged).toMatch(/scale 1/);
    expect(c.evidence.makespan_plain_ms as number).toBeGreaterThan(0);
    expect(c.evidence.speedup_by_rows as number).toBeGreaterThanOrEqual(SKEW_PARAMS.minSpeedup);
    expect(report.metrics.skew_spark_startup_ms).toBeGreaterThanOrEqual(0);
    expect(report.metrics.skew_spark_stage_ms_plain).toBeGreaterThan(0);
    expect(report.providers.spark).toMatch(/Spark 4\./);
  });

  it('the retry trap on the cluster: an executor SIGKILLed during the salted join — Spark still returns DuckDB’s answer, with the rand() salt and the identity salt', () => {
    if (report.providers.spark?.startsWith('external')) return;
    expect(report.metrics.skew_spark_retry_rand_equal).toBe(1);
    expect(report.metrics.skew_spark_retry_identity_equal).toBe(1);
  });
});

describe.skipIf(noSpark)('spark as a SqlEngine target: Delta Lake tables, one commit per statement', () => {
  let target: SqlEngine;
  beforeAll(async () => {
    target = await engines.target('spark', 'target_test');
  }, 120_000);

  it('the canonical row hash is DuckDB’s, value for value (text with NULL and separators, int, decimal, double, date, timestamp, bool)', async () => {
    const duck = await DuckDbEngine.open(':memory:');
    try {
      const cols = [
        { expr: 't', kind: 'text' },
        { expr: 'i', kind: 'int' },
        { expr: 'n', kind: 'decimal' },
        { expr: 'x', kind: 'double' },
        { expr: 'd', kind: 'date' },
        { expr: 'ts', kind: 'timestamp' },
        { expr: 'b', kind: 'bool' },
      ] as const;
      const values = (e: SqlEngine) => {
        const t = e.dialect.types;
        return `SELECT CAST(t AS ${t.text}) AS t, CAST(i AS ${t.bigint}) AS i, CAST(n AS ${t.decimal(12, 2)}) AS n, CAST(x AS ${t.double}) AS x,
                       CAST(d AS ${t.date}) AS d, CAST(ts AS ${t.timestamp}) AS ts, CAST(b AS ${t.bool}) AS b
                FROM (VALUES ('a|b:3', 9007199254740993, 12.5, 0.1, '2024-02-29', '2024-02-29 12:34:56.789', true),
                             (NULL, -1, -0.05, -2.5e11, '1969-12-31', '1970-01-01 00:00:00', false),
                             ('', 0, 0, 0, '9999-12-31', '2000-01-01 00:00:00.000001', NULL)) AS v(t, i, n, x, d, ts, b)`;
      };
      const hashes = async (e: SqlEngine) => (await e.query<{ h: unknown }>(`SELECT ${canonicalRowHash(e.dialect, cols)} AS h FROM (${values(e)}) AS r ORDER BY i`)).map((r) => String(r.h));
      const [spark, duckdb] = [await hashes(target), await hashes(duck)];
      expect(spark).toHaveLength(3);
      expect(spark).toEqual(duckdb);
    } finally {
      await duck.close();
    }
  });

  it('transaction() groups nothing on Delta: a body that fails after its first write leaves that write committed', async () => {
    await target.exec('CREATE TABLE tx_probe (k BIGINT NOT NULL, v STRING)');
    await target.insertRows('tx_probe', ['k', 'v'], [[1, 'a'], [2, null]]);
    await expect(
      target.transaction(async (tx) => {
        await tx.exec(`UPDATE tx_probe SET v = 'changed' WHERE k = 1`);
        throw new Error('fails after the first statement');
      }),
    ).rejects.toThrow(/fails after/);
    expect(await target.query('SELECT k, v FROM tx_probe ORDER BY k')).toEqual([{ k: 1, v: 'changed' }, { k: 2, v: null }]);
    expect(target.dialect.atomicity).toBe('statement');
  });
});

describe.skipIf(noSpark)('scd2 --engine spark: the dimension on Delta Lake, one MERGE per load, judged by the lab’s own claims', () => {
  // The lab's check mode (no benchmark): 4 days of 50 keys; each statement costs Delta a commit.
  const judge = (impl: Parameters<typeof checkImplementation>[2]) =>
    checkImplementation(scd2Lab, { seed: 42, scale: 0.05, engine: 'spark', engines, workDir: engines.tempDir('scd2-spark'), signal: new AbortController().signal }, impl);

  it('the reference passes claims 1–7 on Delta: point in time, one current row, idempotent re-runs, no spurious versions, Type 1 vs 2, fact joins, all or nothing', async () => {
    const { claims, error } = await judge(scd2Lab.reference);
    expect(error).toBeUndefined();
    expect(claims.filter((c) => !c.passed || c.skipped).map((c) => `${c.id}: ${c.counterexample}`)).toEqual([]);
    expect(claims).toHaveLength(7);
    // All or nothing on an engine without transactions: the load is one read, then one MERGE.
    expect(claims.find((c) => c.id === 'atomic-apply')!.evidence).toMatchObject({ failure_points: 2, partial_applies: 0 });
    expect(claims.find((c) => c.id === 'point-in-time')!.evidence).toMatchObject({ dates: 4, mismatches: 0 });
  }, 300_000);

  it('pitfall no-transaction — the three statements that are one transaction elsewhere — is rejected on Delta by atomic-apply, with the torn key', async () => {
    const { claims, error } = await judge(scd2Pitfalls.find((p) => p.name === 'no-transaction')!.impl);
    expect(error).toBeUndefined();
    const atomic = claims.find((c) => c.id === 'atomic-apply')!;
    expect(atomic.passed).toBe(false);
    expect(atomic.counterexample).toMatch(/customer \d+/);
    expect(atomic.counterexample).toMatch(/each statement on its own \(Delta Lake\).*one MERGE/); // not "wrap it in a transaction"
    expect(atomic.evidence).toMatchObject({ partial_applies: 1 });
  }, 300_000);
});

describe.skipIf(noSpark)('compaction --engine spark: the small-file table on Delta Lake, OPTIMIZE, the driver SIGKILLed mid-commit', () => {
  const check = (impl: Compactor) =>
    checkImplementation(compactionLab, { seed: 42, scale: 1, engine: 'spark', engines, workDir: engines.tempDir('compaction-spark'), signal: new AbortController().signal }, impl);
  const byId = (claims: { id: string }[]) => new Map(claims.map((c) => [c.id, c as (typeof claims)[number] & { passed: boolean; skipped?: boolean; evidence: Record<string, unknown>; counterexample?: string }]));

  it('OPTIMIZE (the reference) passes every claim check mode judges: fewer files of the target size, same data, atomic, crash-safe, idempotent', async () => {
    const { claims, error } = await check(compactionLab.reference);
    expect(error).toBeUndefined();
    const c = byId(claims);
    for (const id of ['fewer-files', 'same-data', 'atomic', 'crash-safe', 'idempotent']) expect(c.get(id), id).toMatchObject({ passed: true });
    // The check-scale table: 171 sink files in 3 partitions, each one file after OPTIMIZE.
    expect(c.get('fewer-files')!.evidence).toMatchObject({ files_before: 171, files_after: 3 });
    // Same data by the md5-based checksum DuckDB computed from the sink's files, partition for partition.
    expect(c.get('same-data')!.evidence).toMatchObject({ partitions: 3, partitions_equal: 3, faulty_rewrites_refused: 'not injectable (the engine rewrites)' });
    // The driver died with OPTIMIZE's files on disk and no commit: version 0 still, orphans left for VACUUM.
    const crash = c.get('crash-safe')!.evidence;
    expect(crash).toMatchObject({ killed: 'Spark driver', unchanged_after_kill: true, rerun_ok: true, unreferenced_after: 0 });
    expect(crash.files_written_before_kill as number).toBeGreaterThan(0);
    expect(crash.orphans as number).toBeGreaterThan(0);
    expect(c.get('idempotent')!.evidence).toMatchObject({ files_written: 0 });
  }, 420_000);

  it('rejects the Delta versions of the three pitfalls: DELETE-then-INSERT by atomic and crash-safe, the unchecked and the count-only REPLACE WHERE jobs by same-data', async () => {
    const expected: Record<string, { by: string[]; text: RegExp }> = {
      'rewrite-in-place': { by: ['atomic', 'crash-safe'], text: /read of version \d+ saw \d+ rows, expected 2400: dt=2024-03-10\/hour=00 had 0 of its 165 rows/ },
      'commit-without-verification': { by: ['same-data'], text: /a rewrite that drops a row was committed: .*rows \d+ → \d+; event \d+ .* is gone/ },
      'verify-row-count-only': { by: ['same-data'], text: /a rewrite that changes one value was committed: .*checksum differs; event \d+: amount_cents \d+ → \d+/ },
    };
    for (const p of compactionPitfalls) {
      const { claims, error } = await check(p.impl);
      expect(error, p.name).toBeUndefined();
      const c = byId(claims);
      for (const id of expected[p.name]!.by) expect(c.get(id)?.passed, `${p.name}: ${id}`).toBe(false);
      const shown = c.get(p.shows ?? expected[p.name]!.by[0]!)!;
      expect(shown.counterexample, p.name).toMatch(expected[p.name]!.text);
    }
    // The two REPLACE WHERE jobs are atomic and crash-safe: only their missing check is wrong.
  }, 900_000);
});
