/**
 * The cross-engine canonical row hash (canonicalText / Dialect.canonicalParts / hash64 / sumExact
 * and canonicalRowHash): the same logical row gives the same hash on PostgreSQL and DuckDB whatever
 * the physical types, and different rows give different hashes. Real engines, no mocks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { testEngines } from './helpers.ts';
import type { PgEngine } from '../pipelines/engines/postgres/driver.ts';
import type { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';
import type { CanonicalKind, SqlEngine } from '../pipelines/engines/types.ts';
import { canonicalRowHash, canonicalText } from '../pipelines/engines/sql-common.ts';

const engines = testEngines();
let pg: PgEngine;
let duck: DuckDbEngine;

/** One logical column, stored with a different physical type on each engine. */
interface Col {
  name: string;
  kind: CanonicalKind;
  pgType: string;
  duckType: string;
}
const COLS: Col[] = [
  { name: 'id', kind: 'int', pgType: 'INTEGER', duckType: 'BIGINT' },
  { name: 'txt', kind: 'text', pgType: 'TEXT', duckType: 'VARCHAR' },
  { name: 'vc', kind: 'text', pgType: 'VARCHAR(40)', duckType: 'VARCHAR' },
  { name: 'amount', kind: 'double', pgType: 'NUMERIC(14,2)', duckType: 'DOUBLE' },
  { name: 'ratio', kind: 'double', pgType: 'DOUBLE PRECISION', duckType: 'DOUBLE' },
  { name: 'price', kind: 'decimal', pgType: 'NUMERIC(12,2)', duckType: 'DECIMAL(18,4)' },
  { name: 'qty', kind: 'int', pgType: 'BIGINT', duckType: 'DOUBLE' },
  { name: 'ts', kind: 'timestamp', pgType: 'TIMESTAMP', duckType: 'TIMESTAMP' },
  // Postgres keeps an instant and prints it in the session zone; DuckDB holds the UTC wall time.
  { name: 'tz', kind: 'timestamp', pgType: 'TIMESTAMPTZ', duckType: 'TIMESTAMP' },
  { name: 'day', kind: 'date', pgType: 'DATE', duckType: 'DATE' },
  { name: 'flag', kind: 'bool', pgType: 'BOOLEAN', duckType: 'BOOLEAN' },
];

/** A row as text literals per column (null = NULL), so both engines parse exactly the same value. */
type LogicalRow = (string | null)[];

beforeAll(async () => {
  pg = await engines.pg(undefined, 'rowhash');
  // A zone far from UTC and a non-ISO DateStyle: canonical text must not depend on either.
  await pg.exec(`SET TimeZone = 'Asia/Kathmandu'`);
  await pg.exec(`SET DateStyle = 'SQL, DMY'`);
  duck = await engines.duckdb();
});
afterAll(() => engines.stopAll());

let tableNo = 0;
/** Creates the table on both engines and loads `rows` (each in its own order). */
async function load(rows: readonly LogicalRow[], duckOrder: readonly number[] = rows.map((_, i) => i)): Promise<string> {
  const table = `rh_${tableNo++}`;
  await pg.exec(`CREATE TABLE ${table} (${COLS.map((c) => `${c.name} ${c.pgType}`).join(', ')})`);
  await duck.exec(`CREATE TABLE ${table} (${COLS.map((c) => `${c.name} ${c.duckType}`).join(', ')})`);
  if (rows.length === 0) return table;
  // Text binds cast to each engine's column type: the engines parse the same literal.
  const values = (db: SqlEngine, ordered: readonly LogicalRow[]) => {
    const params: unknown[] = [];
    const tuples = ordered.map((r) => `(${r.map((v, i) => (params.push(v), `CAST($${params.length} AS ${db === pg ? COLS[i]!.pgType : COLS[i]!.duckType})`)).join(', ')})`);
    return db.exec(`INSERT INTO ${table} VALUES ${tuples.join(', ')}`, params);
  };
  await values(pg, rows);
  await values(duck, duckOrder.map((i) => rows[i]!));
  return table;
}

const rowHash = (db: SqlEngine) => canonicalRowHash(db.dialect, COLS.map((c) => ({ expr: c.name, kind: c.kind })));

async function hashes(db: SqlEngine, table: string): Promise<Map<string, string>> {
  const rows = await db.query<{ id: number; h: unknown }>(`SELECT id, ${rowHash(db)} AS h FROM ${table}`);
  return new Map(rows.map((r) => [String(r.id), String(r.h)]));
}

async function canonicalTexts(db: SqlEngine, table: string): Promise<Map<string, string[]>> {
  const sel = COLS.map((c, i) => `${canonicalText(db.dialect, c.name, c.kind)} AS c${i}`).join(', ');
  const rows = await db.query<Record<string, string>>(`SELECT id, ${sel} FROM ${table}`);
  return new Map(rows.map((r) => [String(r.id), COLS.map((_, i) => r[`c${i}`]!)]));
}

async function fingerprint(db: SqlEngine, table: string): Promise<string> {
  const [row] = await db.query<{ fp: string }>(`SELECT ${db.dialect.sumExact(rowHash(db))} AS fp FROM ${table}`);
  return String(row!.fp);
}

/** Rows chosen to hit each known cross-engine difference. */
const TRICKY: LogicalRow[] = [
  // double 1 prints '1' on Postgres, '1.0' on DuckDB; -0.0 prints '-0' vs '-0.0'
  ['1', 'plain', 'plain', '1.00', '1', '1.50', '3', '2024-01-02 03:04:05', '2024-01-02 03:04:05+00', '2024-01-02', 'true'],
  ['2', '', '', '0.30', '-0', '0.10', '0', '2024-01-02 03:04:05.123456', '2024-01-02 03:04:05.123456+00', '1970-01-01', 'false'],
  // NULL in every column but the key
  ['3', null, null, null, null, null, null, null, null, null, null],
  // text that looks like the NULL marker, a separator, a length prefix; non-ASCII
  ['4', '\\N', '3:abc', '-12.34', '0.30000000000000004', '-0.01', '-7', '1999-12-31 23:59:59.999999', '1999-12-31 23:59:59.999999+00', '1900-03-01', 'true'],
  ['5', 'héllo 😀', 'tab\there', '99999999.99', '123456789.123456', '9999999999.99', '9007199254740991', '2262-04-11 23:47:16.854775', '2262-04-11 23:47:16.854775+00', '2262-04-11', 'false'],
  // trailing spaces and case are significant to the hash (a reconciler normalises them first when configured)
  ['6', 'abc  ', 'ABC', '0.00', '1e-7', '0.00', '1', '1970-01-01 00:00:00', '1970-01-01 00:00:00+00', '1970-01-01', 'true'],
  ['7', 'x', 'y', '0.01', '2.5e15', '1.01', '-9007199254740991', '1969-12-31 23:59:59.5', '1969-12-31 23:59:59.5+00', '1969-12-31', 'false'],
  // either side of the range where Postgres reads epoch microseconds from a double (1907–2033)
  ['8', 'a', 'b', '0.02', '0.5', '0.02', '2', '1906-12-31 23:59:59.999999', '1907-01-01 00:00:00.000001+00', '1907-01-01', 'true'],
  ['9', 'c', 'd', '0.03', '0.25', '0.03', '4', '2033-01-01 00:00:00.000001', '2032-12-31 23:59:59.999999+00', '2033-01-01', 'false'],
];

describe('cross-engine canonical row hash', () => {
  it('gives identical canonical text and row hash on Postgres and DuckDB for tricky rows stored with different types, zones and DateStyle', async () => {
    const table = await load(TRICKY);
    const [pgText, duckText] = await Promise.all([canonicalTexts(pg, table), canonicalTexts(duck, table)]);
    for (const [id, texts] of pgText) {
      texts.forEach((t, i) => expect(duckText.get(id)![i], `row ${id} column ${COLS[i]!.name}`).toBe(t));
    }
    const [pgHash, duckHash] = await Promise.all([hashes(pg, table), hashes(duck, table)]);
    expect(duckHash).toEqual(pgHash);
    expect(new Set(pgHash.values()).size).toBe(TRICKY.length);
    expect(await fingerprint(duck, table)).toBe(await fingerprint(pg, table));
  });

  it('hash64 is the first 15 hex digits of md5 on both engines (the definition Snowflake shares)', async () => {
    const texts = ['', 'de-lab', 'héllo 😀', '3:abc;\\N;1;'];
    for (const db of [pg, duck] as SqlEngine[]) {
      for (const t of texts) {
        const [row] = await db.query<{ h: unknown }>(`SELECT ${db.dialect.hash64('CAST($1 AS VARCHAR)')} AS h`, [t]);
        const expected = BigInt('0x' + createHash('md5').update(t, 'utf8').digest('hex').slice(0, 15));
        expect(BigInt(String(row!.h)), `${db.name} ${JSON.stringify(t)}`).toBe(expected);
      }
    }
  });

  it('keeps NULL, empty string and the text \\N apart, and shifting a separator between columns changes the hash', async () => {
    for (const db of [pg, duck] as SqlEngine[]) {
      const text = (v: string | null) => canonicalText(db.dialect, v === null ? 'CAST(NULL AS VARCHAR)' : `CAST($1 AS VARCHAR)`, 'text');
      const one = async (v: string | null) => String((await db.query<{ t: string }>(`SELECT ${text(v)} AS t`, v === null ? [] : [v]))[0]!.t);
      expect(new Set([await one(null), await one(''), await one('\\N'), await one('N')]).size, db.name).toBe(4);
      const pair = async (a: string, b: string) =>
        String(
          (await db.query<{ h: unknown }>(`SELECT ${canonicalRowHash(db.dialect, [{ expr: 'CAST($1 AS VARCHAR)', kind: 'text' }, { expr: 'CAST($2 AS VARCHAR)', kind: 'text' }])} AS h`, [a, b]))[0]!.h,
        );
      expect(await pair('a|b', 'c'), db.name).not.toBe(await pair('a', 'b|c'));
      expect(await pair('1:a', ''), db.name).not.toBe(await pair('', '1:a'));
      // A NULL boolean is neither true nor false (a CASE with only an ELSE 'f' would merge it with false).
      const bool = async (v: string) => String((await db.query<{ t: string }>(`SELECT ${canonicalText(db.dialect, `CAST(${v} AS BOOLEAN)`, 'bool')} AS t`))[0]!.t);
      expect(new Set([await bool('NULL'), await bool('false'), await bool('true')]).size, db.name).toBe(3);
    }
  });

  it('hashes a row wider than one concat() call takes on Postgres (100 arguments) the same on both engines', async () => {
    // 40 text columns = 120 concatenated pieces: the concat is split into nested groups.
    const cols = Array.from({ length: 40 }, (_, i) => ({ expr: i % 3 === 0 ? 'CAST(NULL AS VARCHAR)' : `'c${i}'`, kind: 'text' as const }));
    const [[p], [d]] = await Promise.all([pg, duck].map((db) => db.query<{ h: unknown; t: string }>(`SELECT ${canonicalRowHash(db.dialect, cols)} AS h`)));
    expect(String(d!.h)).toBe(String(p!.h));
    const expected = cols.map((c) => (c.expr.startsWith('CAST') ? ':' : `${c.expr.length - 2}:${c.expr.slice(1, -1)}`)).join('');
    expect(BigInt(String(p!.h))).toBe(BigInt('0x' + createHash('md5').update(expected, 'utf8').digest('hex').slice(0, 15)));
  });

  it('normalises numeric vs double, DECIMAL scale, and TIMESTAMPTZ in any session zone to the same text', async () => {
    const q = (db: SqlEngine, expr: string, kind: CanonicalKind) => db.query<{ t: string }>(`SELECT ${canonicalText(db.dialect, expr, kind)} AS t`).then((r) => r[0]!.t);
    for (const db of [pg, duck] as SqlEngine[]) {
      expect(await q(db, 'CAST(0.1 AS DOUBLE PRECISION) * 3', 'double'), db.name).toBe(await q(db, 'CAST(0.30 AS DECIMAL(12,2))', 'double'));
      // The branch is chosen on the stored value (NUMERIC or DOUBLE); away from ±1e12 both agree, in either branch.
      expect(await q(db, 'CAST(999999999999.99 AS DOUBLE PRECISION)', 'double'), db.name).toBe(await q(db, 'CAST(999999999999.99 AS DECIMAL(14,2))', 'double'));
      expect(await q(db, 'CAST(12345678901234.5 AS DOUBLE PRECISION)', 'double'), db.name).toBe(await q(db, 'CAST(12345678901234.5 AS DECIMAL(16,1))', 'double'));
      expect(await q(db, 'CAST(12345678901234.5 AS DECIMAL(16,1))', 'double'), db.name).toBe('u12345678901235;');
      expect(await q(db, 'CAST(1.5 AS DECIMAL(12,2))', 'decimal'), db.name).toBe(await q(db, 'CAST(1.5000 AS DECIMAL(18,4))', 'decimal'));
      expect(await q(db, "CAST('2024-05-01 12:00:00+05:45' AS TIMESTAMPTZ)", 'timestamp'), db.name).toBe(await q(db, "CAST('2024-05-01 06:15:00' AS TIMESTAMP)", 'timestamp'));
    }
  });

  it('kind float (a double compared exactly): the same text on both engines for any double, and a 7th-significant-digit change shows', async () => {
    const text = (db: SqlEngine, lit: string) =>
      db.query<{ t: string }>(`SELECT ${canonicalText(db.dialect, 'CAST($1 AS DOUBLE PRECISION)', 'float')} AS t`, [lit]).then((r) => r[0]!.t);
    const tricky = ['0', '-0', '1', '-1', '100', '0.1', '1e14', '1e15', '1234567890123456.5', '9999999999999998', '1e16', '1e21', '1e-4', '1e-5', '5e-324', '1.7976931348623157e308', '0.30000000000000004', 'NaN', 'Infinity', '-Infinity'];
    const seen = new Map<string, string>();
    for (const lit of tricky) {
      const [p, d] = [await text(pg, lit), await text(duck, lit)];
      expect(d, lit).toBe(p);
      seen.set(lit, p);
    }
    expect(seen.get('-0')).toBe(seen.get('0'));
    expect(new Set(tricky.filter((l) => l !== '-0').map((l) => seen.get(l))).size).toBe(tricky.length - 1);
    // The default 'double' kind rounds at 1e-6 absolute and cannot see this change; 'float' does.
    expect(await text(pg, '0.1234567')).not.toBe(await text(pg, '0.1234568'));
    expect(await q6(pg, '0.1234567')).toBe(await q6(pg, '0.1234568'));
    await fc.assert(
      fc.asyncProperty(fc.double(), async (x) => {
        const lit = Number.isNaN(x) ? 'NaN' : x === Infinity ? 'Infinity' : x === -Infinity ? '-Infinity' : String(x);
        expect(await text(duck, lit), lit).toBe(await text(pg, lit));
      }),
      { numRuns: 200, seed: 23 },
    );
  });

  // Arbitrary rows, as text literals both engines parse identically.
  const pad = (n: number, w = 2) => String(n).padStart(w, '0');
  const arbTs = fc
    .record({ y: fc.integer({ min: 1900, max: 2200 }), mo: fc.integer({ min: 1, max: 12 }), d: fc.integer({ min: 1, max: 28 }), s: fc.integer({ min: 0, max: 86399 }), us: fc.integer({ min: 0, max: 999999 }) })
    .map(({ y, mo, d, s, us }) => `${y}-${pad(mo)}-${pad(d)} ${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}.${pad(us, 6)}`);
  const nullable = <T,>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null, freq: 5 });
  const arbRow = (id: number): fc.Arbitrary<LogicalRow> =>
    fc
      .tuple(
        nullable(fc.string({ unit: 'grapheme', maxLength: 12 })),
        nullable(fc.string({ maxLength: 12 })),
        nullable(fc.integer({ min: -99_999_999, max: 99_999_999 }).map((c) => (c / 100).toFixed(2))),
        nullable(fc.double({ min: -1e11, max: 1e11, noNaN: true })),
        nullable(fc.integer({ min: -9_999_999, max: 9_999_999 }).map((c) => (c / 100).toFixed(2))),
        nullable(fc.integer({ min: -(2 ** 31), max: 2 ** 31 })),
        nullable(arbTs),
        nullable(arbTs),
        nullable(arbTs.map((t) => t.slice(0, 10))),
        nullable(fc.boolean()),
      )
      .map(([txt, vc, amount, ratio, price, qty, ts, tz, day, flag]) => [
        String(id),
        txt,
        vc,
        amount,
        ratio === null ? null : String(ratio),
        price,
        qty === null ? null : String(qty),
        ts,
        tz === null ? null : `${tz}+00`,
        day,
        flag === null ? null : String(flag),
      ]);
  const arbTable = fc.integer({ min: 1, max: 12 }).chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => arbRow(i + 1))));

  it('property: any rows hash identically on both engines, and the table fingerprint ignores row order', async () => {
    await fc.assert(
      fc.asyncProperty(arbTable, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (rows, shuffleSeed) => {
        const order = rows.map((_, i) => i).sort((a, b) => ((a * 2654435761 + shuffleSeed) % 97) - ((b * 2654435761 + shuffleSeed) % 97));
        const table = await load(rows, order);
        const [pgHash, duckHash] = await Promise.all([hashes(pg, table), hashes(duck, table)]);
        expect(duckHash).toEqual(pgHash);
        expect(await fingerprint(duck, table)).toBe(await fingerprint(pg, table));
      }),
      { numRuns: 30, seed: 20240507 },
    );
  });

  it('property: changing any single value (or NULL ↔ value) changes the row hash, on both engines', async () => {
    await fc.assert(
      fc.asyncProperty(arbRow(1), arbRow(1), fc.integer({ min: 1, max: COLS.length - 1 }), async (a, other, col) => {
        const b = [...a];
        b[col] = other[col] ?? null;
        fc.pre(!sameLogical(COLS[col]!, a[col]!, b[col]!));
        const [ta, tb] = [await load([a]), await load([b])];
        for (const db of [pg, duck] as SqlEngine[]) {
          const [ha, hb] = [(await hashes(db, ta)).get('1'), (await hashes(db, tb)).get('1')];
          expect(ha, `${db.name}: ${COLS[col]!.name} ${JSON.stringify(a[col])} → ${JSON.stringify(b[col])}`).not.toBe(hb);
        }
      }),
      { numRuns: 25, seed: 7 },
    );
  });
});

/** The 'double' kind's canonical text of a literal (1e-6 absolute). */
function q6(db: SqlEngine, lit: string): Promise<string> {
  return db.query<{ t: string }>(`SELECT ${canonicalText(db.dialect, 'CAST($1 AS DOUBLE PRECISION)', 'double')} AS t`, [lit]).then((r) => r[0]!.t);
}

/** Two different literals that are the same value of the column (e.g. doubles equal after 6-decimal rounding). */
function sameLogical(col: Col, a: string | null, b: string | null): boolean {
  if (a === b) return true;
  if (a === null || b === null) return false;
  if (col.kind === 'double') return Math.floor(Number(a) * 1e6 + 0.5) === Math.floor(Number(b) * 1e6 + 0.5);
  if (col.kind === 'bool') return a === b;
  if (col.kind === 'timestamp') return a.replace(/\+00$/, '') === b.replace(/\+00$/, '');
  return false;
}
