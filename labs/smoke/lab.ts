import type { Lab } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { kafkaRoundTrip, logicalSlotSeesChanges, parquetRoundTrip, type SlotOptions } from '../../pipelines/smoke/index.ts';
import { smokePitfalls } from './pitfalls.ts';

type Impl = SlotOptions;

interface State {
  parquet?: Awaited<ReturnType<typeof parquetRoundTrip>>;
  slot?: Awaited<ReturnType<typeof logicalSlotSeesChanges>>;
  kafka?: Awaited<ReturnType<typeof kafkaRoundTrip>>;
  timings: Record<string, number>;
}

async function timed<T>(state: State, name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = performance.now();
  try {
    return await fn();
  } finally {
    state.timings[name] = performance.now() - t0;
  }
}

export const smokeLab: Lab<Impl, State> = {
  id: 'smoke',
  title: 'Smoke: the three real engines answer',
  question: 'Before any lab: are DuckDB, PostgreSQL logical decoding and a Kafka consumer group really there?',
  needs: ['postgres', 'kafka'],
  engines: ['duckdb'],
  reference: { createSlotBeforeWrites: true },
  pitfalls: smokePitfalls,
  newState: () => ({ timings: {} }),
  steps: [
    {
      title: 'DuckDB: COPY a table to Parquet and read it back',
      async run(ctx, _impl, state) {
        const db = await ctx.engines.duckdb();
        state.parquet = await timed(state, 'duckdb_ms', () => parquetRoundTrip(db, ctx.workDir, Math.round(10000 * ctx.scale), ctx.seed));
        ctx.out.table([{ written: state.parquet.writtenRows, read: state.parquet.readRows, fingerprint_equal: state.parquet.writtenFingerprint === state.parquet.readFingerprint }]);
      },
    },
    {
      title: 'PostgreSQL: a pgoutput logical replication slot sees INSERT, UPDATE, DELETE',
      async run(ctx, impl, state) {
        const db = await ctx.engines.pg(undefined, 'smoke');
        const names = { slot: ctx.engines.name(`smoke_slot_${ctx.mode}`), publication: 'smoke_pub' };
        state.slot = await timed(state, 'postgres_ms', () => logicalSlotSeesChanges(db, names, impl, new Prng(ctx.seed).fork('pg')));
        ctx.out.table([state.slot]);
      },
    },
    {
      title: 'Kafka: produce → consume through a consumer group, offsets committed',
      async run(ctx, _impl, state) {
        const { brokers } = await ctx.engines.kafka();
        const names = { topic: ctx.engines.name(`smoke_${ctx.mode}`), group: ctx.engines.name(`smoke_group_${ctx.mode}`) };
        state.kafka = await timed(state, 'kafka_ms', () => kafkaRoundTrip(brokers, names, Math.max(10, Math.round(100 * ctx.scale)), new Prng(ctx.seed).fork('kafka')));
        ctx.out.table([state.kafka]);
      },
    },
  ],
  claims: [
    {
      id: 'duckdb-parquet',
      title: 'DuckDB Parquet round trip',
      statement: 'Rows written to Parquet by DuckDB read back complete and unchanged (count and order-independent fingerprint).',
      check: ({ parquet }) => ({
        passed: !!parquet && parquet.readRows === parquet.writtenRows && parquet.readFingerprint === parquet.writtenFingerprint,
        evidence: { written: parquet?.writtenRows ?? null, read: parquet?.readRows ?? null, fingerprint_equal: parquet ? parquet.readFingerprint === parquet.writtenFingerprint : null },
      }),
    },
    {
      id: 'pg-logical-slot',
      title: 'Postgres logical decoding',
      statement: 'A pgoutput slot created before the writes delivers the INSERT, the UPDATE and the DELETE.',
      check: ({ slot }) => ({
        passed: !!slot && slot.inserts === 1 && slot.updates === 1 && slot.deletes === 1,
        evidence: { inserts: slot?.inserts ?? null, updates: slot?.updates ?? null, deletes: slot?.deletes ?? null },
        counterexample: slot && slot.messages === 0 ? 'the slot returned 0 messages for 1 INSERT, 1 UPDATE, 1 DELETE: a slot only sees WAL written after it exists' : undefined,
      }),
    },
    {
      id: 'kafka-group',
      title: 'Kafka consumer group',
      statement: 'Every produced message is consumed in order and the group has committed the end offset.',
      check: ({ kafka }) => ({
        passed: !!kafka && kafka.consumed === kafka.produced && kafka.inOrder && kafka.committedOffset === kafka.highWatermark,
        evidence: { produced: kafka?.produced ?? null, consumed: kafka?.consumed ?? null, committed: kafka?.committedOffset ?? null, high_watermark: kafka?.highWatermark ?? null },
      }),
    },
  ],
  metrics: (s) => ({
    smoke_duckdb_ms: Math.round(s.timings.duckdb_ms ?? 0),
    smoke_postgres_ms: Math.round(s.timings.postgres_ms ?? 0),
    smoke_kafka_ms: Math.round(s.timings.kafka_ms ?? 0),
  }),
  checkScale: (scale) => scale,
  charts: (s) => [
    {
      kind: 'bar',
      id: 'smoke-round-trip-ms',
      title: 'Round trip per engine (ms, this run)',
      x: 'engine',
      y: 'ms',
      series: [{ name: 'ms', points: (['duckdb', 'postgres', 'kafka'] as const).map((e) => ({ x: e, y: Math.round(s.timings[`${e}_ms`] ?? 0) })) }],
    },
  ],
  async persist(state, out) {
    await out.table('smoke_checks', [
      { engine: 'duckdb', ...state.parquet, file: undefined },
      { engine: 'postgres', ...state.slot },
      { engine: 'kafka', ...state.kafka },
    ].map((r) => Object.fromEntries(Object.entries(r).filter(([, v]) => v !== undefined))));
  },
};
