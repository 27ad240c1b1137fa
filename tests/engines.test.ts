import { afterAll, describe, expect, it } from 'vitest';
import { testEngines } from './helpers.ts';
import type { SqlEngine } from '../pipelines/engines/types.ts';

const engines = testEngines();
afterAll(() => engines.stopAll());

/** The SqlEngine contract every pipeline relies on, checked on each real engine. */
describe.each(['duckdb', 'postgres'] as const)('SqlEngine contract on %s', (name) => {
  const open = (): Promise<SqlEngine> => engines.target(name, `contract_${name}`);

  it('maps values the same way on every engine (bigint, numeric, date, timestamp, NULL)', async () => {
    const db = await open();
    const t = db.dialect.types;
    await db.exec(`CREATE TABLE v (i ${t.int}, b ${t.bigint}, big ${t.bigint}, d ${t.decimal(12, 2)}, f ${t.double}, s ${t.text}, dt ${t.date}, ts ${t.timestamp}, ok ${t.bool}, n ${t.text})`);
    await db.insertRows('v', ['i', 'b', 'big', 'd', 'f', 's', 'dt', 'ts', 'ok', 'n'], [
      [1, 2, 9007199254740993n, 3.25, 0.5, 'x', '2024-02-29', '2024-02-29 23:59:58.5', true, null],
    ]);
    const [row] = await db.query('SELECT * FROM v');
    expect(row).toEqual({
      i: 1,
      b: 2,
      big: 9007199254740993n,
      d: 3.25,
      f: 0.5,
      s: 'x',
      dt: '2024-02-29',
      ts: new Date('2024-02-29T23:59:58.500Z'),
      ok: true,
      n: null,
    });
  });

  it('binds parameters ($1…) instead of splicing values into SQL', async () => {
    const db = await open();
    const evil = "x'); DROP TABLE t; --";
    await db.exec(`CREATE TABLE t (s ${db.dialect.types.text})`);
    await db.exec('INSERT INTO t VALUES ($1)', [evil]);
    expect(await db.query('SELECT s FROM t WHERE s = $1', [evil])).toEqual([{ s: evil }]);
  });

  it('a failure inside transaction() rolls back every statement of it', async () => {
    const db = await open();
    await db.exec(`CREATE TABLE acc (id ${db.dialect.types.int} PRIMARY KEY, bal ${db.dialect.types.int})`);
    await db.exec('INSERT INTO acc VALUES (1, 100), (2, 0)');
    await expect(
      db.transaction(async (tx) => {
        await tx.exec('UPDATE acc SET bal = bal - 50 WHERE id = 1');
        await tx.exec('INSERT INTO acc VALUES (1, 0)'); // duplicate key: fails mid-transfer
      }),
    ).rejects.toThrow();
    expect(await db.query('SELECT id, bal FROM acc ORDER BY id')).toEqual([
      { id: 1, bal: 100 },
      { id: 2, bal: 0 },
    ]);
    await db.transaction(async (tx) => {
      await tx.exec('UPDATE acc SET bal = bal - 50 WHERE id = 1');
      await tx.exec('UPDATE acc SET bal = bal + 50 WHERE id = 2');
    });
    expect(await db.query('SELECT sum(bal) AS s FROM acc')).toEqual([{ s: 100 }]);
  });

  it('MERGE with update, delete and insert branches works (every lab relies on it)', async () => {
    const db = await open();
    const t = db.dialect.types;
    await db.exec(`CREATE TABLE tgt (id ${t.int} PRIMARY KEY, v ${t.text})`);
    await db.exec(`CREATE TABLE src (id ${t.int}, v ${t.text}, op ${t.text})`);
    await db.exec(`INSERT INTO tgt VALUES (1, 'a'), (2, 'b')`);
    await db.exec(`INSERT INTO src VALUES (1, 'A', 'u'), (2, NULL, 'd'), (3, 'c', 'c')`);
    await db.exec(`
      MERGE INTO tgt USING src ON tgt.id = src.id
      WHEN MATCHED AND src.op = 'd' THEN DELETE
      WHEN MATCHED THEN UPDATE SET v = src.v
      WHEN NOT MATCHED AND src.op <> 'd' THEN INSERT (id, v) VALUES (src.id, src.v)`);
    expect(await db.query('SELECT id, v FROM tgt ORDER BY id')).toEqual([
      { id: 1, v: 'A' },
      { id: 3, v: 'c' },
    ]);
  });
});

describe('DuckDB insertRows (one JSON bind per chunk)', () => {
  it('stores every value exactly: non-finite doubles, bigints past 2^53, dates, timestamps, NULLs, more rows than one chunk; nested types take the VALUES path', async () => {
    const { DuckDbEngine } = await import('../pipelines/engines/duckdb/driver.ts');
    const db = await DuckDbEngine.open(':memory:');
    try {
      await db.exec(`CREATE TABLE v ("odd name" DOUBLE, b BIGINT, d DECIMAL(12,2), dt DATE, ts TIMESTAMP, s VARCHAR, ok BOOLEAN)`);
      await db.insertRows('v', ['odd name', 'b', 'd', 'dt', 'ts', 's', 'ok'], [
        [Number.NaN, 9007199254740993n, 12.34, '2024-02-29', new Date('2024-02-29T23:59:58.500Z'), "it's", true],
        [Number.POSITIVE_INFINITY, -9223372036854775808n, null, null, null, null, null],
        [Number.NEGATIVE_INFINITY, 1, -0.01, '1970-01-01', '1970-01-01 00:00:00', '', false],
      ]);
      const rows = await db.query<Record<string, unknown>>('SELECT * FROM v ORDER BY b');
      expect(rows[0]).toMatchObject({ 'odd name': Number.POSITIVE_INFINITY, b: -9223372036854775808n, d: null, s: null });
      expect(rows[1]).toMatchObject({ 'odd name': Number.NEGATIVE_INFINITY, b: 1, d: -0.01, dt: '1970-01-01', s: '', ok: false });
      expect(rows[2]).toMatchObject({ b: 9007199254740993n, d: 12.34, dt: '2024-02-29', ts: new Date('2024-02-29T23:59:58.500Z'), s: "it's", ok: true });
      expect(Number.isNaN(rows[2]!['odd name'])).toBe(true);
      // 120k rows: three chunks, in order.
      await db.exec('CREATE TABLE many (i INTEGER)');
      await db.insertRows('many', ['i'], Array.from({ length: 120_000 }, (_, i) => [i]));
      expect(await db.query('SELECT COUNT(*) AS n, SUM(i) AS s FROM many')).toEqual([{ n: 120000, s: 7199940000 }]);
      await db.exec('CREATE TABLE nested (id INTEGER, st STRUCT(a INTEGER, b VARCHAR))');
      await db.insertRows('nested', ['id'], [[1]]);
      expect(await db.query('SELECT id, st FROM nested')).toEqual([{ id: 1, st: null }]);
    } finally {
      await db.close();
    }
  });
});
