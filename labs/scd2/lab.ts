import { requires, type ChartSpec, type ClaimResult, type Lab, type LabContext } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { dailySnapshots, generateBenchmarkSnapshots, ordersFor, type ChangeKind, type DailySnapshot, type OrderFact } from '../../fixtures/scd2.ts';
import { createDimension, createSnapshotTable, OPEN_END, validOn } from '../../pipelines/scd2/index.ts';
import { createScenarioTables, referenceImpl, runScenario, type Scd2Impl, type ScenarioEvidence } from './scenario.ts';
import { atomicApply, factsJoinRightVersion, idempotent, noSpuriousVersions, oneCurrentRow, pointInTime, type1VersusType2 } from './claims.ts';
import { scd2Pitfalls } from './pitfalls.ts';

export interface Scd2State {
  snapshots: DailySnapshot[];
  orders: OrderFact[];
  scenario?: ScenarioEvidence;
  bench?: { snapshotRows: number; applyMs: number; loadMs: number; dimRows: number };
  /** --engine snowflake: whether the figures were measured on the fakesnow emulator (then they say nothing about Snowflake's speed). */
  sf?: { emulator: boolean };
}

/** Keys in the claims scenario: 1,000 at scale 1; capped so a benchmark scale does not blow it up. */
export const scenarioKeys = (scale: number) => Math.max(8, Math.round(1000 * Math.min(scale, 20)));
/** Rows of the benchmark snapshot: 10,000 at scale 1, so --scale 100 gives 1,000,000. */
export const benchmarkRows = (scale: number) => Math.max(100, Math.round(10_000 * scale));
export const SCENARIO_DAYS = 8;

const claim = (fn: (ev: ScenarioEvidence) => ClaimResult) => requires<Scd2State, 'scenario'>('scenario', fn);

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}


/**
 * Measures one snapshot apply against the floor (CREATE TABLE AS of the same snapshot). Three
 * rounds, each on a fresh copy of the loaded dimension, floor and apply interleaved so both see
 * the same machine; the fastest of each is reported (noise from other work only adds time).
 */
async function benchmark(ctx: LabContext, impl: Scd2Impl, state: Scd2State): Promise<void> {
  const db = await ctx.engines.target(ctx.engine, 'scd2_bench');
  const { ident } = db.dialect;
  for (const t of ['bench_base', 'bench_next']) await createSnapshotTable(db, t);
  await createDimension(db, 'bench_dim');
  await generateBenchmarkSnapshots(db, { base: 'bench_base', next: 'bench_next' }, ctx.seed, benchmarkRows(ctx.scale));
  await impl.applySnapshot(db, { dim: 'bench_dim', stage: 'bench_base' }, '2024-01-01');
  const floors: number[] = [];
  const applies: number[] = [];
  let dimRows = 0;
  for (let round = 0; round < 3; round++) {
    const copy = `bench_dim_${round}`;
    await createDimension(db, copy);
    await db.exec(`INSERT INTO ${ident(copy)} SELECT * FROM bench_dim`);
    floors.push(await timed(() => db.exec('CREATE TABLE bench_floor AS SELECT * FROM bench_next')));
    await db.exec('DROP TABLE bench_floor');
    applies.push(await timed(() => impl.applySnapshot(db, { dim: copy, stage: 'bench_next' }, '2024-01-02')));
    const [n] = await db.query<{ n: number }>(`SELECT COUNT(*) AS n FROM ${ident(copy)}`);
    dimRows = Number(n!.n);
    await db.exec(`DROP TABLE ${ident(copy)}`);
  }
  const [snap] = await db.query<{ n: number }>('SELECT COUNT(*) AS n FROM bench_next');
  state.bench = { snapshotRows: Number(snap!.n), applyMs: Math.min(...applies), loadMs: Math.min(...floors), dimRows };
  const emulator = await ctx.engines.emulated(ctx.engine);
  if (emulator !== null) state.sf = { emulator };
}

/** Per-day summary of what the source did and what the load did. */
function dayTable(ev: ScenarioEvidence) {
  return ev.snapshots.map((s) => {
    const count = (k: ChangeKind) => ev.changes.filter((c) => c.date === s.date && c.kind === k).length;
    const rerun = ev.reruns.find((r) => r.date === s.date);
    return {
      date: s.date,
      keys: s.rows.length,
      new: count('new') + count('reappeared'),
      type2: count('type2'),
      type1_only: count('type1-only'),
      deleted: count('deleted'),
      opened: ev.dim.filter((r) => r.valid_from === s.date).length,
      closed: ev.dim.filter((r) => r.valid_to === s.date).length,
      rerun_same: rerun ? rerun.before.hash === rerun.after.hash && rerun.before.rows === rerun.after.rows : null,
    };
  });
}

/** A few keys worth looking at: one that came back after a delete, one with a NULL transition, the busiest. */
function showcaseKeys(ev: ScenarioEvidence, n: number): number[] {
  const picked: number[] = [];
  const add = (id: number | undefined) => id !== undefined && !picked.includes(id) && picked.length < n && picked.push(id);
  add(ev.changes.find((c) => c.kind === 'reappeared')?.customer_id);
  const versions = new Map<number, number>();
  for (const r of ev.dim) versions.set(r.customer_id, (versions.get(r.customer_id) ?? 0) + 1);
  add(ev.dim.find((r) => r.segment === null && (versions.get(r.customer_id) ?? 0) > 1)?.customer_id);
  for (const [id] of [...versions.entries()].sort((a, b) => b[1] - a[1] || a[0] - b[0])) add(id);
  return picked;
}

export const scd2Lab: Lab<Scd2Impl, Scd2State> = {
  id: 'scd2',
  title: 'SCD Type 2 (and Type 1): a dimension load that keeps correct history',
  question: 'SCD Type 1 vs Type 2 — how do you load a Type 2 dimension, and how do you query it as of a date?',
  needs: [],
  engines: ['duckdb', 'postgres', 'snowflake'],
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
        state.snapshots = dailySnapshots(rng.fork('snapshots'), { keys, days: SCENARIO_DAYS });
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
        const ev = state.scenario!;
        const id = showcaseKeys(ev, 1)[0];
        if (id === undefined) return;
        ctx.out.table(
          ev.dim
            .filter((r) => r.customer_id === id)
            .map((r) => ({ sk: r.customer_sk, customer: r.customer_id, segment: r.segment, city: r.city, email: r.email, valid_from: r.valid_from, valid_to: r.valid_to === OPEN_END ? `${OPEN_END} (open)` : r.valid_to, current: r.is_current, deleted: r.is_deleted })),
        );
      },
    },
    {
      title: 'Benchmark: one snapshot (10% changed, 1% new, 0.5% deleted) applied, vs CREATE TABLE AS of it',
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        await benchmark(ctx, impl, state);
        const b = state.bench!;
        ctx.out.table([{ snapshot_rows: b.snapshotRows, dim_rows: b.dimRows, apply_ms: Math.round(b.applyMs), create_table_as_ms: Math.round(b.loadMs), ratio: b.applyMs / b.loadMs }]);
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
  charts(s) {
    const ev = s.scenario;
    if (!ev) return [];
    const chart: ChartSpec = {
      kind: 'timeline',
      id: 'scd2-versions',
      title: 'Versions per customer: [valid_from, valid_to), segment / city',
      rows: showcaseKeys(ev, 6).map((id) => ({
        label: `customer ${id}`,
        spans: ev.dim
          .filter((r) => r.customer_id === id)
          .map((r) => ({ from: r.valid_from, to: r.valid_to === OPEN_END ? null : r.valid_to, text: `${r.segment ?? '∅'} / ${r.city ?? '∅'}${r.is_deleted ? ' (deleted after)' : ''}` })),
      })),
    };
    return [chart];
  },
  async persist(s, out) {
    const ev = s.scenario;
    if (!ev) return;
    await out.table('scd2_dim_customer', ev.dim.map((r) => ({ ...r })));
    const skOf = new Map<number, number | null>();
    for (const r of ev.factJoin) if (!skOf.has(r.order_id)) skOf.set(r.order_id, r.customer_sk);
    await out.table('scd2_fact_orders', ev.orders.map((o) => ({ ...o, customer_sk: skOf.get(o.order_id) ?? null })));
    await out.table('scd2_source_snapshots', ev.snapshots.flatMap((snap) => snap.rows.map((r) => ({ snapshot_date: snap.date, ...r }))));
  },
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
    hints: [
      'Work out each key\'s action first (the change set): FULL OUTER JOIN the snapshot with the current versions (is_current) on customer_id. No current row → open; no snapshot row → close as deleted; a Type 2 value differs → close and open; only email differs → Type 1 overwrite; otherwise nothing.',
      'Compare with IS DISTINCT FROM (db.dialect.distinct(a, b)), never <> : NULL <> \'gold\' is NULL, so a NULL → value change would look like "no change".',
      'One MERGE can close and open: feed it each changed key twice — once with merge_key = customer_id (matches the current row → UPDATE valid_to = d, is_current = FALSE) and once with merge_key = NULL (never matches → INSERT the new version from d to 9999-12-31).',
      'Decide everything from the state before the load, in one statement: then a second run of the same snapshot finds nothing changed. Rules of the form "insert where valid_to = today" are true again on a re-run.',
      'New surrogate keys: (SELECT COALESCE(MAX(customer_sk), 0) FROM dim) + ROW_NUMBER() OVER (ORDER BY customer_id). Type 1 (email): UPDATE every version of the key whose email IS DISTINCT FROM the snapshot\'s. Wrap it all in db.transaction.',
    ],
    nudges: {
      'point-in-time': 'The as-of query disagrees with the snapshot: a change was missed, a version was closed on the wrong date, or a new/re-appearing key got no version.',
      'one-current-row': 'Close the current version (valid_to = d, is_current = FALSE) in the same transaction that opens the next one, and close it for keys missing from the snapshot.',
      idempotent: 'A second run of the same snapshot must find nothing to do: decide from the current versions, not from "rows closed today".',
      'no-spurious-versions': 'Only a Type 2 difference (IS DISTINCT FROM) opens a version — not every row of the snapshot.',
      'type1-vs-type2': 'email is Type 1: UPDATE it on every version of the key; segment/city are Type 2: compare them NULL-safely.',
      'facts-join-right-version': 'Windows are half-open: valid_from <= d AND d < valid_to, and the version closed on d must end exactly where the next begins.',
      'atomic-apply': 'Run every statement of the apply inside one db.transaction(async (tx) => …) and use tx, not db, in it: a failure then rolls all of it back.',
    },
  },
};
