import { requires, type ClaimResult, type Lab } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { dailySnapshots, ordersFor, type DailySnapshot, type OrderFact } from '../../fixtures/scd2.ts';
import { validOn } from '../../pipelines/scd2/index.ts';
import { benchmarkApply, createScenarioTables, referenceImpl, runScenario, type BenchEvidence, type Scd2Impl, type ScenarioEvidence } from './scenario.ts';
import { atomicApply, factsJoinRightVersion, idempotent, noSpuriousVersions, oneCurrentRow, pointInTime, type1VersusType2 } from './claims.ts';
import { scd2Pitfalls } from './pitfalls.ts';
import { benchTable, dayTable, oneKeyTable, persistScd2, scd2Charts } from './view.ts';
import { scd2Hints, scd2Nudges } from './exercise/hints.ts';

export interface Scd2State {
  snapshots: DailySnapshot[];
  orders: OrderFact[];
  scenario?: ScenarioEvidence;
  bench?: BenchEvidence;
  /** --engine snowflake: whether the figures were measured on the fakesnow emulator (then they say nothing about Snowflake's speed). */
  sf?: { emulator: boolean };
}

/** Keys in the claims scenario: 1,000 at scale 1; capped so a benchmark scale does not blow it up. */
export const scenarioKeys = (scale: number) => Math.max(8, Math.round(1000 * Math.min(scale, 20)));
/** Rows of the benchmark snapshot: 10,000 at scale 1, so --scale 100 gives 1,000,000. */
export const benchmarkRows = (scale: number) => Math.max(100, Math.round(10_000 * scale));
export const SCENARIO_DAYS = 8;
/**
 * Days of the claims scenario on an engine. Spark: 4 — each statement there is a Delta commit
 * (0.3–2 s on the local cluster, whatever the rows), and a full run replays the scenario once for
 * the reference and once per pitfall. Four days still hold every kind of change: new keys, Type 2
 * and Type 1 edits, NULL ↔ value, deletes, re-appearances, a quiet day, and a re-run of each day.
 */
export const scenarioDays = (engine: string) => (engine === 'spark' ? 4 : SCENARIO_DAYS);

const claim = (fn: (ev: ScenarioEvidence) => ClaimResult) => requires<Scd2State, 'scenario'>('scenario', fn);

export const scd2Lab: Lab<Scd2Impl, Scd2State> = {
  id: 'scd2',
  title: 'SCD Type 2 (and Type 1): a dimension load that keeps correct history',
  question: 'SCD Type 1 vs Type 2 — how do you load a Type 2 dimension, and how do you query it as of a date?',
  needs: [],
  engines: ['duckdb', 'postgres', 'snowflake', 'spark'],
  reference: referenceImpl,
  pitfalls: scd2Pitfalls,
  newState: () => ({ snapshots: [], orders: [] }),
  checkScale: (scale) => Math.min(scale, 0.25),
  steps: [
    {
      title: 'Generate daily full snapshots of a customer table (seeded): new keys, edits, NULL ↔ value, deletes, re-appearances',
      async run(ctx, _impl, state) {
        const rng = new Prng(ctx.seed).fork('scd2');
        const keys = scenarioKeys(ctx.scale);
        state.snapshots = dailySnapshots(rng.fork('snapshots'), { keys, days: scenarioDays(ctx.engine) });
        state.orders = ordersFor(rng.fork('orders'), state.snapshots, Math.max(5, Math.round(keys / 10)));
        ctx.out.note(`${keys} possible keys, ${state.snapshots.length} daily snapshots (each also re-run on its own day), ${state.orders.length} orders`);
        ctx.out.note('segment, city: Type 2 (versioned) · email: Type 1 (overwritten on every version)');
      },
    },
    {
      title: 'Apply each snapshot in date order (and re-run it the same day), then read the dimension back as of every date',
      async run(ctx, impl, state) {
        const db = await ctx.engines.target(ctx.engine, 'scd2');
        await createScenarioTables(db);
        state.scenario = await runScenario(db, impl, state.snapshots, state.orders);
        ctx.out.table(dayTable(state.scenario));
      },
    },
    {
      title: 'One key through time: its versions in the dimension',
      async run(ctx, _impl, state) {
        ctx.out.table(oneKeyTable(state.scenario!));
      },
    },
    {
      title: 'Benchmark: one snapshot (10% changed, 1% new, 0.5% deleted) applied, vs CREATE TABLE AS of it',
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        state.bench = await benchmarkApply(await ctx.engines.target(ctx.engine, 'scd2_bench'), impl, ctx.seed, benchmarkRows(ctx.scale));
        const emulator = await ctx.engines.emulated(ctx.engine);
        if (emulator !== null) state.sf = { emulator };
        ctx.out.table(benchTable(state.bench));
      },
    },
  ],
  claims: [
    {
      id: 'point-in-time',
      title: 'Point-in-time reconstruction',
      statement: 'For every loaded date d, the as-of-d query over the dimension returns exactly the snapshot of d: every key, every Type 2 value.',
      check: claim(pointInTime),
    },
    {
      id: 'one-current-row',
      title: 'One current row, no overlap, no gap',
      statement: 'Each live key has exactly one current row, a deleted key none; a key\'s versions never overlap and leave no gap except while it was deleted; surrogate keys are unique.',
      check: claim(oneCurrentRow),
    },
    {
      id: 'idempotent',
      title: 'Same-day re-run changes nothing',
      statement: 'Applying the same snapshot again on the same day leaves the row count and the order-independent content hash unchanged.',
      check: claim(idempotent),
    },
    {
      id: 'no-spurious-versions',
      title: 'No spurious versions',
      statement: 'A row whose values did not change (NULL = NULL included) never gets a new version, and no key gets two versions on one day.',
      check: claim(noSpuriousVersions),
    },
    {
      id: 'type1-vs-type2',
      title: 'Type 1 overwrites, Type 2 versions',
      statement: 'A Type 1-only edit opens no version and overwrites the value on every version of the key; every Type 2 edit (NULL ↔ value included) opens one.',
      check: claim(type1VersusType2),
    },
    {
      id: 'facts-join-right-version',
      title: 'Facts join the right version',
      statement: 'Each order joined to the dimension as of its date meets exactly one version, carrying the values valid on that date.',
      check: claim(factsJoinRightVersion),
    },
    {
      id: 'atomic-apply',
      title: 'All or nothing',
      statement: 'An apply that fails after any one of its statements leaves the dimension exactly as it was: readers never see half a load.',
      check: claim(atomicApply),
    },
  ],
  metrics: (s) => ({
    scd2_dim_rows: s.bench?.dimRows ?? s.scenario?.dim.length ?? 0,
    scd2_apply_ms: Math.round(s.bench?.applyMs ?? 0),
    scd2_load_ms: Math.round(s.bench?.loadMs ?? 0),
    scd2_apply_over_load: s.bench ? Math.round((s.bench.applyMs / Math.max(s.bench.loadMs, 0.001)) * 100) / 100 : 0,
    // --engine snowflake (issue 8): the apply on Snowflake; sf_emulator 1 = measured on the fakesnow emulator, not Snowflake.
    ...(s.sf ? { sf_scd2_apply_ms: Math.round(s.bench?.applyMs ?? 0), sf_emulator: s.sf.emulator ? 1 : 0 } : {}),
  }),
  charts: (s) => (s.scenario ? scd2Charts(s.scenario) : []),
  persist: async (s, out) => (s.scenario ? persistScd2(s.scenario, out) : undefined),
  exercise: {
    stub: 'labs/scd2/exercise/stub.ts',
    solution: 'pipelines/scd2/apply.ts',
    load(mod) {
      if (typeof mod.applyScd2Snapshot !== 'function') throw new Error('export a function applyScd2Snapshot(db, tables, snapshotDate)');
      return {
        applySnapshot: mod.applyScd2Snapshot as Scd2Impl['applySnapshot'],
        validOn: typeof mod.validOn === 'function' ? (mod.validOn as Scd2Impl['validOn']) : validOn,
      };
    },
    hints: scd2Hints,
    nudges: scd2Nudges,
  },
};
