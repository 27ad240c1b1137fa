import { requires, type ClaimResult, type Lab, type LabContext } from '../contract.ts';
import { Prng } from '../../fixtures/prng.ts';
import { generateWorkload, type Workload } from '../../fixtures/incremental.ts';
import { backfillRange, createSourceTable, createTargetTables, extractWith, restoreState, snapshotState, type PlanExtraction } from '../../pipelines/incremental/index.ts';
import { referenceImpl, runScenario, type IncrementalImpl, type ScenarioEvidence } from './scenario.ts';
import { backfillExact, deletes, idempotentRerun, lateCommits, naiveLosses, nothingLostNothingDoubled, rowStory, tiesKept } from './claims.ts';
import { incrementalPitfalls } from './pitfalls.ts';

export interface IncrementalState {
  workload?: Workload;
  scenario?: ScenarioEvidence;
  bench?: { rows: number; changed: number; scanned: number; read: number; runMs: number; copyMs: number };
}

/** Orders in the source before the workload: 1,000 at scale 1 (capped: the workload itself does not grow). */
export const initialRows = (scale: number) => Math.max(50, Math.round(1000 * Math.min(scale, 20)));
/** Rows of the benchmark table: 10,000 at scale 1, so --scale 100 gives 1,000,000. */
export const benchmarkRows = (scale: number) => Math.max(1000, Math.round(10_000 * scale));
/** The scale where the run/copy bar of the issue is set. */
export const BAR_ROWS = 1_000_000;

const claim = (fn: (ev: ScenarioEvidence) => ClaimResult) => requires<IncrementalState, 'scenario'>('scenario', fn);

const round2 = (x: number) => Math.round(x * 100) / 100;
const round3 = (x: number) => Math.round(x * 1000) / 1000;
const hms = (iso: string | null) => (iso ? iso.slice(11, 23) : '—');

/**
 * One incremental run of 1 % changed rows against the floor, a full copy: the same extractor's
 * first run from an empty state, which reads and loads every row. The incremental run is replayed
 * three times (its state restored each time) and the fastest is kept.
 */
async function benchmark(ctx: LabContext, impl: IncrementalImpl, state: IncrementalState): Promise<void> {
  const rows = benchmarkRows(ctx.scale);
  const src = await ctx.engines.pg(undefined, 'incremental_bench');
  await createSourceTable(src, 'bench_orders');
  // Loaded with yesterday's timestamps (trigger off), so only the changes below carry today's.
  await src.exec('ALTER TABLE bench_orders DISABLE TRIGGER bench_orders_stamp');
  await src.exec(
    `INSERT INTO bench_orders (id, customer_id, order_date, amount, discount, status, updated_at, deleted)
     SELECT g, 1 + g % 200, DATE '2024-06-01' + CAST(g % 30 AS INTEGER), 5 + (g % 50000) / 100.0, 0, 'new', now() - interval '1 day', FALSE
     FROM generate_series(1, CAST($1 AS BIGINT)) AS g`,
    [rows],
  );
  await src.exec('ALTER TABLE bench_orders ENABLE TRIGGER bench_orders_stamp');
  await src.exec('ANALYZE bench_orders');
  const target = await ctx.engines.target(ctx.engine, 'incremental_bench');
  await createTargetTables(target);
  const opts = { table: 'bench_orders', pipeline: 'bench' };
  const full = await impl.extract(src, target, opts);
  const saved = await snapshotState(target);
  await src.exec('UPDATE bench_orders SET status = $1 WHERE id % 100 = 0', ['paid']);
  let best = { ms: Infinity, scanned: 0, read: 0 };
  for (let i = 0; i < 3; i++) {
    await restoreState(target, saved);
    const r = await impl.extract(src, target, opts);
    if (r.ms < best.ms) best = { ms: r.ms, scanned: r.rowsScanned, read: r.rowsRead };
  }
  state.bench = { rows, changed: Math.floor(rows / 100), scanned: best.scanned, read: best.read, runMs: best.ms, copyMs: full.ms };
}

export const incrementalLab: Lab<IncrementalImpl, IncrementalState> = {
  id: 'incremental',
  title: 'Incremental extraction: a watermark that loses no late commit, reruns that change nothing, exact backfills',
  question: 'How do you load only what changed, and how do you make the pipeline safe to retry and to backfill?',
  needs: ['postgres'],
  engines: ['duckdb', 'postgres'],
  reference: referenceImpl,
  pitfalls: incrementalPitfalls,
  newState: () => ({}),
  checkScale: (scale) => Math.min(scale, 0.25),
  steps: [
    {
      title: 'Generate the workload schedule (seeded): 4 writers, short and long transactions, tied pairs, 8 extractions in between',
      async run(ctx, _impl, state) {
        state.workload = generateWorkload(new Prng(ctx.seed).fork('incremental'), { initialRows: initialRows(ctx.scale) });
        const w = state.workload;
        const roles = (r: string) => w.txs.filter((t) => t.role === r).length;
        ctx.out.note(`${w.initial.length} initial orders; ${w.txs.length} transactions (${roles('long')} long, ${roles('tie-early')} tied pairs); ${w.events.filter((e) => e.kind === 'extract').length} scheduled extractions + a final one`);
        ctx.out.note('updated_at is stamped by a trigger with now(): the transaction START, at millisecond precision');
      },
    },
    {
      title: 'Run it on PostgreSQL, extracting on schedule into the target (and, beside it, with a plain max(updated_at) extractor)',
      async run(ctx, impl, state) {
        state.scenario = await runScenario({ engines: ctx.engines, engine: ctx.engine, workDir: ctx.workDir }, impl, state.workload!);
        const ev = state.scenario;
        ctx.out.table(
          ev.extractions.map((e) => {
            const open = ev.txs.filter((t) => t.extractionsAtBegin < e.run && t.extractionsAtCommit >= e.run).length;
            return { run: e.run, open_txs: open, read_from: hms(e.impl.from), next_watermark: hms(e.impl.next), rows_read: e.impl.rowsRead, naive_from_max: hms(e.naive.from), naive_rows_read: e.naive.rowsRead };
          }),
        );
      },
    },
    {
      title: 'What the plain max(updated_at) extractor lost, and why',
      async run(ctx, _impl, state) {
        const ev = state.scenario!;
        const lost = naiveLosses(ev);
        ctx.out.note(`${lost.length} rows wrong in its target (${lost.filter((l) => l.kind === 'late').length} late commits, ${lost.filter((l) => l.kind === 'tie').length} ties at the boundary)`);
        for (const l of lost.slice(0, 4)) ctx.out.note(`${l.kind}: ${rowStory(ev, l.id)}`);
        ctx.out.note(`this extractor: crash test ${ev.crash.killed ? `SIGKILLed (${ev.crash.signal}) at data-written` : 'did not kill'}; backfill ${ev.backfill.range.from}..${ev.backfill.range.to} watched ${ev.backfill.readerSaw.length} times; ${ev.deletes.stillInTarget.length} hard-deleted keys still in the target`);
      },
    },
    {
      title: 'Benchmark: one run after 1 % of the table changed, vs a full copy (the first run); rows the source scanned',
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        await benchmark(ctx, impl, state);
        const b = state.bench!;
        ctx.out.table([{ table_rows: b.rows, changed: b.changed, rows_read: b.read, rows_scanned: b.scanned, run_ms: Math.round(b.runMs), full_copy_ms: Math.round(b.copyMs), run_over_copy: round3(b.runMs / b.copyMs) }]);
      },
    },
  ],
  claims: [
    { id: 'nothing-lost-nothing-doubled', title: 'Nothing lost, nothing doubled', statement: 'After the workload and a final run, the target holds every source row exactly once with its content (key by key, and the same content fingerprint).', check: claim(nothingLostNothingDoubled) },
    { id: 'late-commits', title: 'Late commits kept', statement: 'Rows committed after an extraction with an updated_at below the max already loaded — which a plain `updated_at > max(updated_at)` extractor loses, named with their transaction timings — are all in the target.', check: claim(lateCommits) },
    { id: 'ties-kept', title: 'Ties at the boundary kept', statement: 'Rows carrying the very timestamp the watermark stood at, committed after the extraction that read it, are in the target.', check: claim(tiesKept) },
    { id: 'idempotent-rerun', title: 'Reruns change nothing', statement: 'A second run, a replay of windows already loaded (run 1\'s saved state restored), and a run SIGKILLed after its MERGE but before its state was saved, then rerun, all leave the target one clean run gives.', check: claim(idempotentRerun) },
    { id: 'backfill-exact', title: 'Backfill replaces exactly R', statement: 'A backfill of order_date range R changes only rows in R, to exactly what a rebuild of R gives; a concurrent reader sees the old R or the new R, never a mix.', check: claim(backfillExact) },
    { id: 'deletes', title: 'Soft deletes propagate; hard deletes counted', statement: 'Soft deletes reach the target; hard DELETEs leave no timestamp, so exactly the hard-deleted keys stay in the target (counted: the remedy is CDC or a periodic key diff).', check: claim(deletes) },
    {
      id: 'scans-changes-only',
      title: 'Reads what changed',
      statement: 'An incremental run makes the source read about as many rows as changed (index on updated_at): rows scanned / rows changed ≤ 1.5.',
      benchmark: true,
      check: (s): ClaimResult => {
        if (!s.bench) return { passed: false, evidence: {}, counterexample: 'the benchmark did not run' };
        const ratio = s.bench.scanned / Math.max(1, s.bench.changed);
        return { passed: ratio <= 1.5, evidence: { table_rows: s.bench.rows, changed: s.bench.changed, scanned: s.bench.scanned, ratio: round2(ratio) }, ...(ratio <= 1.5 ? {} : { counterexample: `the source scanned ${s.bench.scanned} rows for ${s.bench.changed} changed ones` }) };
      },
    },
    {
      id: 'cheaper-than-copy',
      title: 'Cheaper than a full copy',
      statement: 'At 1M rows, an incremental run of 1 % changes takes ≤ 0.1 of a full copy of the table.',
      benchmark: true,
      check: (s): ClaimResult => {
        if (!s.bench) return { passed: false, evidence: {}, counterexample: 'the benchmark did not run' };
        const ratio = s.bench.runMs / Math.max(0.001, s.bench.copyMs);
        const evidence = { table_rows: s.bench.rows, run_ms: Math.round(s.bench.runMs), full_copy_ms: Math.round(s.bench.copyMs), ratio: round3(ratio) };
        if (s.bench.rows < BAR_ROWS) return { passed: false, evidence, notJudged: `the 0.1 bar is set at ${BAR_ROWS.toLocaleString('en-US')} rows (--scale 100); this run has ${s.bench.rows.toLocaleString('en-US')}` };
        return { passed: ratio <= 0.1, evidence, ...(ratio <= 0.1 ? {} : { counterexample: `a run of ${s.bench.changed} changes took ${Math.round(s.bench.runMs)} ms, the full copy ${Math.round(s.bench.copyMs)} ms` }) };
      },
    },
  ],
  metrics: (s) => ({
    incremental_rows_scanned_over_changed: s.bench ? round2(s.bench.scanned / Math.max(1, s.bench.changed)) : 0,
    incremental_lost_by_naive: s.scenario ? naiveLosses(s.scenario).length : 0,
    incremental_run_over_copy: s.bench ? round3(s.bench.runMs / Math.max(0.001, s.bench.copyMs)) : 0,
    incremental_run_ms: Math.round(s.bench?.runMs ?? 0),
    incremental_copy_ms: Math.round(s.bench?.copyMs ?? 0),
    incremental_bench_rows: s.bench?.rows ?? 0,
  }),
  charts(s) {
    const ev = s.scenario;
    if (!ev) return [];
    const t0 = ev.txs[0]?.began.getTime() ?? 0;
    const ms = (t: number) => String(t - t0);
    const held = ev.txs.filter((t) => t.extractionsAtCommit > t.extractionsAtBegin);
    const lost = new Map<number, number>();
    for (const l of naiveLosses(ev)) lost.set(ev.lastWriter.get(l.id) ?? -1, (lost.get(ev.lastWriter.get(l.id) ?? -1) ?? 0) + 1);
    return [
      {
        kind: 'timeline',
        id: 'incremental-open-transactions',
        title: 'Transactions held open across extractions (ms since the initial load began)',
        rows: [
          { label: 'extractions', spans: ev.extractions.map((e) => ({ from: ms(e.at), to: ms(Math.max(e.done, e.at + 1)), text: `run ${e.run}` })) },
          ...held.map((t) => ({ label: `tx ${t.tx} (${t.role})`, spans: [{ from: ms(t.began.getTime()), to: ms(t.committed.getTime()), text: `writer ${t.writer}${lost.get(t.tx) ? `, ${lost.get(t.tx)} rows lost by max(updated_at)` : ''}` }] })),
        ],
      },
      {
        kind: 'bar',
        id: 'incremental-rows-read',
        title: 'Rows read per run: held-back watermark (>=, re-reads the margin) vs max(updated_at)',
        x: 'run',
        y: 'rows read',
        series: [
          { name: 'reference', points: ev.extractions.map((e) => ({ x: e.run, y: e.impl.rowsRead })) },
          { name: 'max(updated_at)', points: ev.extractions.map((e) => ({ x: e.run, y: e.naive.rowsRead })) },
        ],
      },
    ];
  },
  async persist(s, out) {
    const ev = s.scenario;
    if (!ev) return;
    await out.table('incremental_transactions', ev.txs.map((t) => ({ ...t, keys: t.keys.join(' '), began: t.began.toISOString(), committed: t.committed.toISOString() })));
    await out.table('incremental_extractions', ev.extractions.map((e) => ({ run: e.run, read_from: e.impl.from, next_watermark: e.impl.next, rows_read: e.impl.rowsRead, naive_from_max: e.naive.from, naive_rows_read: e.naive.rowsRead })));
    await out.table('incremental_naive_losses', naiveLosses(ev).map((l) => ({ ...l, story: rowStory(ev, l.id) })));
  },
  exercise: {
    stub: 'labs/incremental/exercise/stub.ts',
    solution: 'pipelines/incremental/extract.ts',
    load(mod) {
      if (typeof mod.planExtraction !== 'function') throw new Error('export a function planExtraction(src, saved, opts)');
      if (typeof mod.moduleUrl !== 'string') throw new Error('export moduleUrl is missing (keep `export const moduleUrl = import.meta.url;`)');
      return { extract: extractWith(mod.planExtraction as PlanExtraction), source: { module: mod.moduleUrl, exportName: 'planExtraction', kind: 'plan' }, backfill: backfillRange };
    },
    hints: [
      'updated_at is now() of the writing transaction: its START. A transaction open while you extract will commit rows stamped before anything you read after it began — your next watermark must not pass its start.',
      'pg_stat_activity lists every open transaction with xact_start (WHERE datname = current_database() AND pid <> pg_backend_pid()). The next watermark is the earliest of those starts and your own statement_timestamp().',
      'Compute the next watermark in a statement that runs BEFORE the extraction query: a transaction that commits between the two is then either in pg_stat_activity or began after your statement.',
      'Read with updated_at >= watermark, not >: rows stamped with exactly the watermark\'s millisecond may commit after you read. The MERGE makes re-reading them harmless.',
      'Floor the watermark to the millisecond (date_trunc) — the column keeps milliseconds — and subtract opts.safetyMarginMs for the instant a backend has received BEGIN but not yet published it.',
    ],
    nudges: {
      'nothing-lost-nothing-doubled': 'A row the source has is missing or old in the target: which transaction wrote it, and where was your watermark when it committed?',
      'late-commits': 'Your watermark passed the start of a transaction that was still open: hold it back to min(xact_start) of the open transactions.',
      'ties-kept': 'A row with exactly the watermark\'s timestamp committed after you read: use >=, not >.',
      'idempotent-rerun': 'The plan must not change the target itself: return the watermark, and let the run save it with the data.',
      'backfill-exact': 'The backfill is the reference\'s; if this fails, the rows your extraction loaded differ from the source.',
      deletes: 'Soft deletes are updates: if they are missing, your query does not read every changed row.',
    },
  },
};
