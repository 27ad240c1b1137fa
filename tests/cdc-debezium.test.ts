import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { testEngines } from './helpers.ts';
import { CdcWorkload, SOURCE_TABLES } from '../fixtures/cdc.ts';
import { createSourceTables, runWorkload } from '../pipelines/cdc/source.ts';
import { compareCaptureStreams, runSideBySide, type SideBySide } from '../pipelines/cdc/side-by-side.ts';
import { decodeChangeEvent, debeziumTimestamp } from '../pipelines/cdc/debezium.ts';
import { jsonValue, parseEventJson, quoteLongIntegers } from '../pipelines/cdc/envelope.ts';
import { TargetSchema, applyBatch, batchSchema } from '../pipelines/cdc/apply.ts';
import { compareTable, diffIsEmpty } from '../pipelines/cdc/index.ts';
import { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';
import type { ReadMessage } from '../pipelines/engines/kafka/admin.ts';

/**
 * Issue 21: real Debezium (PostgreSQL connector 3.6.1 on Kafka Connect 3.9.1) beside our capture,
 * on one source and one workload — plus the envelope's value bugs found against it: a double NaN,
 * jsonb, a bigint past 2^53.
 */
const engines = testEngines();
afterAll(() => engines.stopAll());

/** The values each capture once got wrong, in a table of their own: snapshot rows and streamed ones. */
const EDGE_DDL = [
  `CREATE TABLE edge (id INTEGER PRIMARY KEY, d DOUBLE PRECISION, j JSONB, big BIGINT, t TEXT)`,
  `ALTER TABLE edge REPLICA IDENTITY FULL`,
  `INSERT INTO edge VALUES (1, 'NaN', '{"a": [1, 2], "b": {"c": null}}', 9007199254740993, 'snapshot'), (2, 'Infinity', '[]', 9223372036854775807, NULL)`,
];
const EDGE_STREAM = [
  `INSERT INTO edge VALUES (3, '-Infinity', '"s"', -9223372036854775808, 'streamed'), (4, 0.1, 'null', -9007199254740993, '')`,
  `UPDATE edge SET d = 'NaN', big = big + 1 WHERE id IN (1, 3)`,
  `DELETE FROM edge WHERE id = 2`,
];

describe('real Debezium beside our capture, same source, same workload', () => {
  let run: SideBySide;
  let sourceUrl: string;

  beforeAll(async () => {
    sourceUrl = await engines.freshPgDatabase('dbz');
    const source = await engines.pg(sourceUrl);
    const workload = new CdcWorkload(21);
    await createSourceTables(source, workload.initialRows(0.5));
    for (const sql of EDGE_DDL) await source.exec(sql);
    run = await runSideBySide({
      engines,
      source,
      sourceUrl,
      tables: [...SOURCE_TABLES, 'public.edge'],
      workload: async () => {
        await runWorkload(source, workload.phase(3000, { schemaChangeAt: 0.5 }));
        for (const sql of EDGE_STREAM) await source.exec(sql);
      },
    });
  }, 240_000);

  it('both streams carry the same rows, each row in the same partition, with the same op sequence (tombstones included)', () => {
    const d = compareCaptureStreams(run);
    expect(d.rows).toBeGreaterThan(100);
    expect(d.keysOnlyIn).toEqual({ ours: [], debezium: [] });
    expect(d.partitionMismatch).toEqual([]);
    expect(d.opSequenceMismatch).toEqual([]);
  });

  it('every event has the same before/after values after conversion, and the same WAL position', () => {
    const d = compareCaptureStreams(run);
    expect(d.events).toBeGreaterThan(3000);
    expect(d.valueMismatch.slice(0, 5)).toEqual([]);
    expect(d.positionMismatch.slice(0, 5)).toEqual([]);
  });

  it('the edge values survive both captures: NaN and ±Infinity as strings, jsonb as its text, bigints past 2^53 exact', () => {
    for (const [msgs, prefix] of [[run.ours, run.prefixes.ours], [run.debezium, run.prefixes.debezium]] as const) {
      const last = new Map<number, Record<string, unknown> | null>();
      for (const m of msgs.filter((x) => x.topic === `${prefix}.public.edge` && x.value)) {
        const e = decodeChangeEvent(m.key, m.value!);
        last.set(Number(JSON.parse(m.key!).id), e.after);
      }
      expect(last.get(1), prefix).toMatchObject({ d: 'NaN', j: '{"a": [1, 2], "b": {"c": null}}', big: '9007199254740994', t: 'snapshot' });
      expect(last.get(2), prefix).toBeNull();
      expect(last.get(3), prefix).toMatchObject({ d: 'NaN', j: '"s"', big: '-9223372036854775807', t: 'streamed' });
      expect(last.get(4), prefix).toMatchObject({ d: 0.1, j: 'null', big: '-9007199254740993', t: '' });
    }
  });

  it('the apply, fed real Debezium events, converges to the source (every table, NULL-safe compare)', async () => {
    const source = await engines.pg(sourceUrl);
    const db = await DuckDbEngine.open(':memory:');
    try {
      const schema = new TargetSchema(db);
      await schema.ensureWatermarkTable();
      const byPartition = new Map<string, ReadMessage[]>();
      for (const m of run.debezium) byPartition.set(`${m.topic}/${m.partition}`, [...(byPartition.get(`${m.topic}/${m.partition}`) ?? []), m]);
      for (const [id, msgs] of byPartition) {
        const events = msgs.filter((m) => m.value !== null).map((m) => decodeChangeEvent(m.key, m.value!));
        // Batches of 50, each delivered twice (a redelivery after a crash before the offset commit).
        for (let i = 0; i < events.length; i += 50) {
          const batch = events.slice(i, i + 50);
          const table = batchSchema(batch);
          await schema.ensureTable(table);
          for (let twice = 0; twice < 2; twice++) await applyBatch(db, { topic: id.split('/')[0]!, partition: Number(id.split('/')[1]), table, events: batch });
        }
      }
      for (const [table, key] of [['customers', ['id']], ['orders', ['order_id']], ['edge', ['id']]] as const) {
        const diff = await compareTable(source, db, table, [...key]);
        expect(diffIsEmpty(diff), `${table}: ${JSON.stringify(diff).slice(0, 400)}`).toBe(true);
      }
    } finally {
      await db.close();
    }
  });

  it('reports each capture\'s rate on the same workload (cdc_capture_over_debezium is their ratio)', () => {
    const { ours, debezium } = run.timing;
    expect(ours.events).toBe(debezium.events);
    expect(ours.eventsPerS).toBeGreaterThan(0);
    expect(debezium.eventsPerS).toBeGreaterThan(0);
    process.stderr.write(`[cdc-debezium] ${ours.events} events: ours ${ours.eventsPerS}/s (first event ${ours.firstEventMs} ms), Debezium ${debezium.eventsPerS}/s (first event ${debezium.firstEventMs} ms), ratio ${(ours.eventsPerS / debezium.eventsPerS).toFixed(2)}\n`);
  });
});

describe('envelope values (the bugs found against Debezium)', () => {
  it('a double that is not finite travels as Postgres spells it, not as null', () => {
    expect(JSON.stringify({ d: jsonValue('double', 'NaN') })).toBe('{"d":"NaN"}');
    expect([jsonValue('double', 'Infinity'), jsonValue('double', '-Infinity'), jsonValue('double', '1.5')]).toEqual(['Infinity', '-Infinity', 1.5]);
  });

  it('parseEventJson reads integers past 2^53 exactly (as their digits), and everything else as JSON.parse does', () => {
    expect(parseEventJson('{"a":9007199254740993,"b":-9223372036854775808,"c":"9007199254740993x","d":1.2345678901234567,"e":12345678901234567e2}')).toEqual({
      a: '9007199254740993',
      b: '-9223372036854775808',
      c: '9007199254740993x',
      d: 1.2345678901234567,
      e: 12345678901234567e2,
    });
    // Any JSON: what JSON.parse gives, but an integer outside ±(2^53 − 1) written as bare digits comes as those digits.
    const expected = (v: unknown): unknown =>
      typeof v === 'number' && Number.isInteger(v) && !Number.isSafeInteger(v) && !/e/i.test(JSON.stringify(v))
        ? JSON.stringify(v)
        : Array.isArray(v)
          ? v.map(expected)
          : v && typeof v === 'object'
            ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expected(x)]))
            : v;
    fc.assert(
      fc.property(fc.jsonValue().map((v) => JSON.stringify(v)), (text) => {
        expect(parseEventJson(text)).toEqual(expected(JSON.parse(text)));
      }),
      { numRuns: 300, seed: 21 },
    );
    fc.assert(
      fc.property(fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }), fc.string(), (n, s) => {
        const parsed = parseEventJson<{ n: unknown; s: string }>(`{"s":${JSON.stringify(s)},"n":${n}}`);
        expect(parsed.s).toBe(s);
        expect(BigInt(parsed.n as string | number)).toBe(n);
      }),
      { numRuns: 300, seed: 21 },
    );
    expect(quoteLongIntegers('{"x":1}')).toBe('{"x":1}');
  });

  it('Debezium\'s MicroTimestamp reads back as Postgres prints the timestamp', () => {
    expect(debeziumTimestamp(1709251198500000n)).toBe('2024-02-29 23:59:58.5');
    expect(debeziumTimestamp(0n)).toBe('1970-01-01 00:00:00');
    expect(debeziumTimestamp(-1n)).toBe('1969-12-31 23:59:59.999999');
  });
});
