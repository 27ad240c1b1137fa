import type { ChartSpec, Lab, LabContext, TreeNode } from '../contract.ts';
import type { Engines } from '../../pipelines/engines/index.ts';
import {
  bisectDiff,
  bisectingReconciler,
  compareCounts,
  diffReportJson,
  diffRows,
  fullPullDiff,
  identityOf,
  keyDiff,
  partitionDiff,
  renderDiffTable,
  scoreDiffs,
  tableFingerprint,
  type DiffOutcome,
  type Fingerprint,
  type PartitionResult,
  type Reconciler,
  type RowDiff,
  type Score,
  type SegmentNode,
  type TableSide,
} from '../../pipelines/reconciliation/index.ts';
import {
  createSourceOrders,
  createTargetOrders,
  injectDiscrepancies,
  ORDERS_SPEC,
  rowsForScale,
  targetAsParquet,
  type TruthEntry,
} from '../../fixtures/reconciliation.ts';
import { reconciliationPitfalls } from './pitfalls.ts';

type Impl = Reconciler;

interface LevelRow {
  level: string;
  ms: number;
  rows_moved: number;
  finds: string;
}

interface State {
  rows: number;
  source?: TableSide;
  target?: TableSide;
  /** The reconciler on equal data (claim 2). */
  equal?: DiffOutcome;
  equalFingerprints?: { source: Fingerprint; target: Fingerprint };
  equalPartitionsNamed?: number;
  /** One changed value per column → did the table fingerprint change? (claim 4) */
  perturbations?: { change: string; changed: boolean }[];
  truth?: TruthEntry[];
  found?: DiffOutcome;
  score?: Score;
  partitions?: PartitionResult;
  levels?: LevelRow[];
  fullPull?: { score: Score; rowsFetched: number };
  parquet?: { score: Score; outcome: DiffOutcome };
  timings: { count_ms?: number; bisect_ms?: number; bisect_runs?: number; fullpull_ms?: number; partitions_ms?: number };
}

const spec = ORDERS_SPEC;

/** Where the issue sets the speed bar: 1M rows per side. */
const BAR_ROWS = 1_000_000;
const ROWS_PER_SCALE = rowsForScale(1);

type SourceDb = Awaited<ReturnType<Engines['pg']>>;

/**
 * The source of one (seed, rows), loaded once per engine set: every step only reads it (the
 * discrepancies go into the target), so the full run and the check runs of its pitfalls — or
 * every check run of a test file — share it, each with a target of its own. The connection is
 * made read-only once loaded: an implementation under judgement cannot change what the next
 * one is judged on.
 */
const sources = new WeakMap<Engines, Map<string, Promise<SourceDb>>>();

function sharedSource(ctx: LabContext, rows: number): Promise<SourceDb> {
  let cache = sources.get(ctx.engines);
  if (!cache) sources.set(ctx.engines, (cache = new Map()));
  const key = `${ctx.seed}-${rows}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const made = (async () => {
    // Labelled by size: the full run creates two such databases at once, and names must differ.
    const pg = await ctx.engines.pg(undefined, `recon_${rows}`);
    // A session zone far from UTC: the canonical hash must not care how TIMESTAMPTZ prints.
    await pg.exec(`SET TimeZone = 'America/Sao_Paulo'`);
    // Postgres cannot estimate how many segments floor(id / width) makes, assumes one per row
    // and plans a sort; with room to hash it aggregates the ~1 000 real segments directly.
    await pg.exec(`SET work_mem = '256MB'`);
    // The row hash is CPU-bound (a few µs per row on Postgres): let the hash pass use parallel
    // workers. Postgres estimates one segment per row (it cannot count floor(id / width) groups),
    // so gathering the workers' partial sums looks as dear as gathering every row; a smaller
    // tuple cost and no setup cost let it run the 1M-row pass on 3 processes (~2.7 → ~1.5 s).
    // Parallel index scans stay off: a full-pull page (a key-range index scan returning every row)
    // ran 220–240 ms serial and 270–410 ms when its 100k rows came through a Gather.
    await pg.exec(`SET parallel_setup_cost = 0`);
    await pg.exec(`SET parallel_tuple_cost = 0.01`);
    await pg.exec(`SET min_parallel_table_scan_size = '1MB'`);
    await pg.exec(`SET min_parallel_index_scan_size = '8GB'`);
    await createSourceOrders(pg, 'orders', rows, ctx.seed);
    await pg.exec(`SET default_transaction_read_only = on`);
    return pg;
  })();
  cache.set(key, made);
  made.catch(() => cache.get(key) === made && cache.delete(key));
  return made;
}

async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const t0 = performance.now();
  const value = await fn();
  return { value, ms: performance.now() - t0 };
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const pct = (x: number) => Math.round(x * 1e6) / 1e4; // fraction → % with 4 decimals
const describeTruth = (t: TruthEntry) => `key ${t.key} (${t.label}${t.columns ? ': ' + t.columns.join(',') : ''}, ${t.day})`;

function describeDiff(d: RowDiff): string {
  if (d.kind === 'value') return `key ${d.key}: ${(d.columns ?? []).map((c) => `${c.column} ${c.source === null ? 'NULL' : JSON.stringify(c.source)} → ${c.target === null ? 'NULL' : JSON.stringify(c.target)}`).join(', ')}`;
  if (d.kind === 'duplicate') return `key ${d.key}: ${d.sourceCount} row(s) in source, ${d.targetCount} in target`;
  return `key ${d.key}: ${d.kind}`;
}

/** The first missed or invented difference, in words. */
function scoreCounterexample(score: Score, truth: readonly TruthEntry[], found: readonly RowDiff[], where: string): string | undefined {
  const missed = truth.find((t) => score.missed.includes(identityOf(t)));
  const invented = found.find((d) => score.invented.includes(identityOf(d)));
  const missedLine = missed && `${where}: ${describeTruth(missed)} was injected but not reported (recall ${score.matched}/${score.expected})`;
  const inventedLine = invented && `${where}: reported ${describeDiff(invented)} — not an injected difference (precision ${score.matched}/${score.found})`;
  // Lead with the larger failure: a flood of false alarms says more than the misses it causes.
  return score.invented.length > score.missed.length ? (inventedLine ?? missedLine) : (missedLine ?? inventedLine);
}

/** The segment tree for the chart: differing paths in full, runs of equal segments folded into one node. */
function chartTree(node: SegmentNode, label = 'all keys'): TreeNode {
  const kids = node.children ?? [];
  const children: TreeNode[] = [];
  let run: SegmentNode[] = [];
  const flush = () => {
    if (run.length === 0) return;
    children.push({ label: run.length === 1 ? `${run[0]!.lo}–${run[0]!.hi}` : `${run.length} equal segments ${run[0]!.lo}–${run[run.length - 1]!.hi}`, status: 'equal' });
    run = [];
  };
  for (const k of kids) {
    if (k.status === 'equal') run.push(k);
    else {
      flush();
      children.push(chartTree(k, `${k.lo}–${k.hi} (${k.sourceRows}/${k.targetRows} rows)`));
    }
  }
  flush();
  return { label, status: node.status, ...(children.length ? { children } : {}) };
}

function flattenTree(node: SegmentNode, depth = 0, out: Record<string, unknown>[] = []): Record<string, unknown>[] {
  if (depth > 0) out.push({ depth, key_lo: node.lo, key_hi: node.hi, source_rows: node.sourceRows, target_rows: node.targetRows, status: node.status });
  for (const c of node.children ?? []) flattenTree(c, depth + 1, out);
  return out;
}

export const reconciliationLab: Lab<Impl, State> = {
  id: 'reconciliation',
  title: 'Reconciliation: find every difference between source and target, cheaply',
  question: 'How do you prove a migration or a pipeline lost nothing — across two different engines?',
  needs: ['postgres'],
  engines: ['duckdb'],
  reference: bisectingReconciler(),
  pitfalls: reconciliationPitfalls,
  newState: (ctx) => ({ rows: rowsForScale(ctx.scale), timings: {} }),
  // Pitfalls and exercises: 10 000 rows at most — every kind of discrepancy, seconds per check.
  checkScale: (scale) => Math.min(0.1, scale * 0.1),
  steps: [
    {
      title: 'Load orders: source in PostgreSQL (NUMERIC, TIMESTAMPTZ, key order), target in DuckDB (DOUBLE, TIMESTAMP, padded text, load order)',
      async run(ctx, _impl, state) {
        // The full run also loads the source its pitfalls are judged on (check scale), alongside:
        // awaited here, so nothing runs behind the measured steps; a failure is left to the check
        // runs, which then load it themselves.
        const checkRows = rowsForScale(reconciliationLab.checkScale!(ctx.scale));
        const alongside = ctx.mode === 'full' && checkRows !== state.rows ? sharedSource(ctx, checkRows).then(() => undefined, () => undefined) : undefined;
        try {
          const [pg, duck] = await Promise.all([
            sharedSource(ctx, state.rows),
            ctx.engines.duckdb().then(async (duck) => (await createTargetOrders(duck, 'orders', state.rows, ctx.seed), duck)),
          ]);
          state.source = { label: 'source', db: pg, from: 'orders' };
          state.target = { label: 'target', db: duck, from: 'orders' };
        } finally {
          await alongside;
        }
        const duck = state.target.db;
        const [noisy] = await duck.query<{ id: number; amount: number }>(`SELECT id, amount FROM orders WHERE amount <> round(amount, 2) ORDER BY id LIMIT 1`);
        ctx.out.note(`${state.rows} rows each side${noisy ? `; e.g. key ${noisy.id}: target amount ${noisy.amount} (float noise), source NUMERIC ${noisy.amount.toFixed(2)}` : ''}`);
      },
    },
    {
      title: 'Equal data, different types and row order: the reconciler must report nothing',
      async run(ctx, impl, state) {
        const [outcome, fs, ft, parts] = await Promise.all([
          impl.diff(state.source!, state.target!, spec),
          tableFingerprint(state.source!, spec),
          tableFingerprint(state.target!, spec),
          partitionDiff(state.source!, state.target!, spec),
        ]);
        state.equal = outcome;
        state.equalFingerprints = { source: fs, target: ft };
        state.equalPartitionsNamed = parts.namedDays.length;
        ctx.out.table([
          { side: 'source (postgres)', rows: fs.rows, fingerprint: fs.sum },
          { side: 'target (duckdb)', rows: ft.rows, fingerprint: ft.sum },
        ]);
        ctx.out.note(`differences reported: ${outcome.diffs.length}; rows fetched: ${outcome.rowsFetched}; days named: ${parts.namedDays.length}`);
      },
    },
    {
      title: 'Fingerprint sensitivity: change one value per column (and NULL → \'\'), the fingerprint must move',
      async run(ctx, _impl, state) {
        const { db } = state.target!;
        const [victim] = await db.query<{ id: number }>(`SELECT min(id) AS id FROM orders WHERE note IS NULL AND customer IS NOT NULL`);
        const key = Number(victim!.id);
        // Expressions are fixed SQL over the row itself; the key is a bind.
        const changes: { change: string; column: string; expr: string }[] = [
          { change: 'customer + "x"', column: 'customer', expr: `customer || 'x'` },
          { change: 'status upper-cased', column: 'status', expr: `upper(status)` },
          { change: 'amount + 0.01', column: 'amount', expr: `amount + 0.01` },
          { change: 'qty + 1', column: 'qty', expr: `qty + 1` },
          { change: 'note NULL → \'\'', column: 'note', expr: `''` },
          { change: 'created_at + 1 µs', column: 'created_at', expr: `created_at + INTERVAL '1 microsecond'` },
          { change: 'day + 1', column: 'day', expr: `day + 1` },
        ];
        const base = state.equalFingerprints!.target.sum;
        state.perturbations = [];
        for (const c of changes) {
          // Change one value, fingerprint, roll back: the table is left as it was.
          await db.exec('BEGIN TRANSACTION');
          try {
            await db.exec(`UPDATE orders SET ${c.column} = ${c.expr} WHERE id = $1`, [key]);
            const fp = await tableFingerprint(state.target!, spec);
            state.perturbations.push({ change: `key ${key}: ${c.change}`, changed: fp.sum !== base });
          } finally {
            await db.exec('ROLLBACK');
          }
        }
        ctx.out.table(state.perturbations.map((p) => ({ change: p.change, fingerprint_changed: p.changed })));
      },
    },
    {
      title: 'Inject seeded discrepancies of every kind into the target (0.01 % of rows)',
      async run(ctx, _impl, state) {
        state.truth = await injectDiscrepancies(state.target!.db, 'orders', state.rows, ctx.seed);
        const byLabel = new Map<string, number>();
        for (const t of state.truth) byLabel.set(t.label, (byLabel.get(t.label) ?? 0) + 1);
        ctx.out.note([...byLabel].map(([l, n]) => `${l} ×${n}`).join(', '));
      },
    },
    {
      title: 'Reconcile: hash bisection — segment checksums in each database, split what differs, fetch small segments',
      async run(ctx, impl, state) {
        const { value, ms } = await timed(() => impl.diff(state.source!, state.target!, spec));
        state.found = value;
        state.timings.bisect_ms = ms;
        state.score = scoreDiffs(state.truth!, value.diffs);
        for (const line of renderDiffTable(value.diffs, 12).split('\n')) ctx.out.note(line);
        const s = value.stats;
        if (s) ctx.out.note(`${s.levels} levels, ${s.segmentsCompared} segments compared, ${s.segmentsFetched} fetched, ${s.rowsFetched} of ${s.sourceRows + s.targetRows} rows moved, ${s.queries} queries, ${Math.round(ms)} ms`);
        if (s?.phases) ctx.out.note(`where the time went: ${s.phases.map((p) => `${p.phase} ${Math.round(p.ms)} ms${p.segments ? ` (${p.segments} segments)` : ''}`).join(', ')}`);
      },
    },
    {
      title: 'Per-day aggregates (count, distinct keys, sum/min/max, row-hash checksum) in each database',
      async run(ctx, _impl, state) {
        const { value, ms } = await timed(() => partitionDiff(state.source!, state.target!, spec));
        state.partitions = value;
        state.timings.partitions_ms = ms;
        const bad = state.partitions.partitions.filter((p) => p.differing.length > 0);
        ctx.out.table(bad.map((p) => ({ day: p.day, source_rows: p.sourceRows, target_rows: p.targetRows, differing: p.differing.join(' ') })), 8);
        ctx.out.note(`${bad.length} of ${state.partitions.partitions.length} days named; count/sum/min/max/distinct alone name ${state.partitions.classicDays.length}`);
      },
    },
    {
      title: 'The levels side by side: what each finds and what it costs (count(*) is the floor)',
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        const { source, target } = state;
        // Timings on a shared 2-core machine swing 2× run to run, so the speed claim reads repeats:
        // count(*) runs five times and bisection three (the reconcile step's run and two here) and
        // their medians count; the full pull (seconds) runs twice, interleaved with the bisection
        // runs, and its FASTEST time counts — the ratio errs against bisection, never for it.
        const countRuns: number[] = [];
        let counts!: Awaited<ReturnType<typeof timed<Awaited<ReturnType<typeof compareCounts>>>>>;
        for (let i = 0; i < 5; i++) countRuns.push((counts = await timed(() => compareCounts(source!, target!))).ms);
        state.timings.count_ms = median(countRuns);
        const keys = await timed(() => keyDiff(source!, target!, spec));
        const bisectRuns = state.timings.bisect_ms === undefined ? [] : [state.timings.bisect_ms];
        let full!: Awaited<ReturnType<typeof timed<Awaited<ReturnType<typeof fullPullDiff>>>>>;
        let fullMs = Infinity;
        for (let round = 0; round < 2; round++) {
          full = await timed(() => fullPullDiff(source!, target!, spec));
          fullMs = Math.min(fullMs, full.ms);
          bisectRuns.push((await timed(() => impl.diff(source!, target!, spec))).ms);
        }
        state.timings.fullpull_ms = fullMs;
        state.timings.bisect_ms = median(bisectRuns);
        state.timings.bisect_runs = bisectRuns.length;
        state.fullPull = { score: scoreDiffs(state.truth!, full.value.diffs), rowsFetched: full.value.rowsFetched };
        const kinds = (diffs: readonly RowDiff[]) => {
          const n = diffReportJson({ diffs: [...diffs], rowsFetched: 0 }).summary;
          return `missing ${n.missing} extra ${n.extra} dup ${n.duplicate} value ${n.value}`;
        };
        state.levels = [
          { level: 'counts', ms: state.timings.count_ms, rows_moved: 0, finds: `${counts.value.source} vs ${counts.value.target} rows` },
          { level: 'keys', ms: keys.ms, rows_moved: keys.value.keysFetched, finds: `missing ${keys.value.missing.length} extra ${keys.value.extra.length} dup ${keys.value.duplicated.length}` },
          { level: 'partitions', ms: state.timings.partitions_ms ?? NaN, rows_moved: 0, finds: `${state.partitions?.namedDays.length ?? 0} days` },
          { level: 'full pull (values)', ms: fullMs, rows_moved: full.value.rowsFetched, finds: kinds(full.value.diffs) },
          { level: 'bisection', ms: state.timings.bisect_ms ?? NaN, rows_moved: state.found?.rowsFetched ?? 0, finds: kinds(state.found?.diffs ?? []) },
        ];
        ctx.out.table(state.levels.map((l) => ({ ...l, ms: Math.round(l.ms) })));
        const speedup = fullMs / (state.timings.bisect_ms ?? NaN);
        ctx.out.note(`bisection runs ${bisectRuns.map(Math.round).join(', ')} ms (median ${Math.round(state.timings.bisect_ms)}); full pull ${Math.round(fullMs)} ms (fastest of 2)`);
        ctx.out.note(`bisection ${speedup.toFixed(1)}× faster than the full pull, ${((state.timings.bisect_ms ?? 0) / (state.timings.count_ms ?? NaN)).toFixed(1)}× count(*)`);
      },
    },
    {
      title: 'Target as Parquet files read through DuckDB: the same reconciliation',
      benchmarkOnly: true,
      async run(ctx, impl, state) {
        const { db } = state.target!;
        await targetAsParquet(db, 'orders', ctx.workDir, 'orders_parquet');
        const outcome = await impl.diff(state.source!, { label: 'target (parquet)', db, from: 'orders_parquet' }, spec);
        state.parquet = { outcome, score: scoreDiffs(state.truth!, outcome.diffs) };
        ctx.out.note(`Parquet target: ${outcome.diffs.length} differences, precision ${state.parquet.score.precision}, recall ${state.parquet.score.recall}, ${outcome.rowsFetched} rows fetched`);
      },
    },
  ],
  claims: [
    {
      id: 'finds-all-invents-none',
      title: 'Finds all, invents none',
      statement:
        'With seeded discrepancies of every kind injected (missing, extra, duplicated key, changed value, NULL ↔ value, \'\' → NULL, amount beyond tolerance, trailing space and case where significant), the report holds exactly the injected set: precision 1, recall 1 — on a DuckDB table and on Parquet files.',
      check(s) {
        const score = s.score!;
        const parquet = s.parquet?.score;
        const passed = score.precision === 1 && score.recall === 1 && (!parquet || (parquet.precision === 1 && parquet.recall === 1));
        return {
          passed,
          evidence: {
            injected: score.expected,
            found: score.found,
            precision: score.precision,
            recall: score.recall,
            parquet_precision: parquet?.precision ?? null,
            parquet_recall: parquet?.recall ?? null,
          },
          counterexample: passed
            ? undefined
            : (scoreCounterexample(score, s.truth!, s.found!.diffs, 'duckdb target') ?? (s.parquet ? scoreCounterexample(s.parquet.score, s.truth!, s.parquet.outcome.diffs, 'parquet target') : undefined)),
        };
      },
    },
    {
      id: 'no-false-alarms',
      title: 'No false alarms across engines',
      statement:
        'On equal data stored as NUMERIC vs DOUBLE (with float noise), TEXT vs padded VARCHAR (trailing spaces declared insignificant), TIMESTAMPTZ in a non-UTC session vs TIMESTAMP in UTC, and in different row orders, the reconciler reports no difference.',
      check(s) {
        const diffs = s.equal!.diffs;
        return {
          passed: diffs.length === 0,
          evidence: { rows: s.rows, differences_reported: diffs.length, days_named: s.equalPartitionsNamed ?? null },
          counterexample: diffs.length ? `${diffs.length} false alarm(s) on equal data, e.g. ${describeDiff(diffs[0]!)}` : undefined,
        };
      },
    },
    {
      id: 'bisection-fetches-little',
      title: 'Cheap when nearly equal: few rows moved',
      statement:
        'The reconciler moves at most 100 rows out of the databases per differing row: with 0.01 % of rows differing that is at most 1 % of the rows (0.5 %, both sides counted).',
      check(s) {
        const fetched = s.found!.rowsFetched;
        const total = s.rows * 2;
        const differing = s.truth!.length;
        const passed = fetched <= 100 * differing;
        return {
          passed,
          evidence: { rows: s.rows, differing_rows: differing, differing_pct: pct(differing / s.rows), rows_fetched: fetched, fetched_pct: pct(fetched / total) },
          counterexample: passed ? undefined : `moved ${fetched} of ${total} rows (${pct(fetched / total)} %) to find ${differing} differing rows — more than 100 per difference`,
        };
      },
    },
    {
      id: 'bisection-beats-full-pull',
      title: '≥ 5× faster than a full pull',
      statement:
        `At ${BAR_ROWS.toLocaleString('en-US')} rows per side and more (the scale the bar is set at: --scale 10), bisection finds the same differences at least 5× faster than pulling both tables and comparing them, measured in the same run: the median of three bisections against the faster of two full pulls. Smaller runs report the ratio without judging it — fixed costs weigh more there.`,
      benchmark: true,
      check(s) {
        const speedup = (s.timings.fullpull_ms ?? NaN) / (s.timings.bisect_ms ?? NaN);
        const same = s.fullPull ? s.fullPull.score.precision === 1 && s.fullPull.score.recall === 1 : false;
        const evidence = { rows: s.rows, bisect_ms: Math.round(s.timings.bisect_ms ?? NaN), bisect_runs: s.timings.bisect_runs ?? 1, fullpull_ms: Math.round(s.timings.fullpull_ms ?? NaN), speedup: Math.round(speedup * 100) / 100, full_pull_agrees: same };
        // The full pull must find the same set at any size: that part is judged on every run.
        if (s.rows < BAR_ROWS && same) {
          return { passed: false, evidence, notJudged: `the 5× bar is set at ${BAR_ROWS.toLocaleString('en-US')} rows (--scale ${BAR_ROWS / ROWS_PER_SCALE}); this run has ${s.rows.toLocaleString('en-US')}` };
        }
        return {
          passed: speedup >= 5 && same,
          evidence,
          counterexample: !same
            ? 'the full pull did not find exactly the injected set, so the two are not doing the same work'
            : speedup >= 5
              ? undefined
              : `at ${s.rows} rows the full pull took ${Math.round(s.timings.fullpull_ms ?? NaN)} ms and bisection ${Math.round(s.timings.bisect_ms ?? NaN)} ms (${speedup.toFixed(2)}×)`,
        };
      },
    },
    {
      id: 'fingerprint-order-independent-sensitive',
      title: 'Table fingerprint: order-blind, change-sensitive',
      statement:
        'The table fingerprint (exact sum of canonical row hashes) is equal for the same rows stored in another order, with other types, in another engine — and any single changed value (NULL → \'\' included) changes it.',
      check(s) {
        const fp = s.equalFingerprints!;
        const equal = fp.source.sum === fp.target.sum && fp.source.rows === fp.target.rows;
        const unchanged = s.perturbations!.filter((p) => !p.changed);
        return {
          passed: equal && unchanged.length === 0 && s.perturbations!.length > 0,
          evidence: { cross_engine_equal: equal, single_changes: s.perturbations!.length, changed_fingerprint: s.perturbations!.length - unchanged.length },
          counterexample: !equal
            ? `same rows, fingerprints differ: postgres ${fp.source.sum} vs duckdb ${fp.target.sum}`
            : unchanged.length
              ? `${unchanged[0]!.change} left the fingerprint unchanged`
              : undefined,
        };
      },
    },
    {
      id: 'partition-days-named',
      title: 'Partition aggregates name exactly the bad days',
      statement:
        'Per-day aggregates computed in each database (count, distinct keys, sum/min/max of numeric columns within tolerance, row-hash checksum) name exactly the days holding an injected difference — no more, no fewer.',
      check(s) {
        const truthDays = new Set(s.truth!.map((t) => t.day));
        const named = new Set(s.partitions!.namedDays);
        const missed = [...truthDays].filter((d) => !named.has(d));
        const extra = [...named].filter((d) => !truthDays.has(d));
        const passed = missed.length === 0 && extra.length === 0;
        const missedEntry = s.truth!.find((t) => missed.includes(t.day));
        return {
          passed,
          evidence: { days: s.partitions!.partitions.length, days_with_diffs: truthDays.size, days_named: named.size, classic_aggregates_name: s.partitions!.classicDays.length },
          counterexample: passed ? undefined : missedEntry ? `day ${missedEntry.day} holds ${describeTruth(missedEntry)} but was not named` : `day ${extra[0]} named but holds no difference`,
        };
      },
    },
  ],
  metrics(s) {
    const score = s.score;
    const total = s.rows * 2;
    const bisect = s.timings.bisect_ms ?? NaN;
    const full = s.timings.fullpull_ms ?? NaN;
    const count = s.timings.count_ms ?? NaN;
    const round = (x: number, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
    return {
      recon_rows: s.rows,
      recon_diffs_injected: s.truth?.length ?? 0,
      recon_diffs_found: s.found?.diffs.length ?? 0,
      recon_precision: score?.precision ?? 0,
      recon_recall: score?.recall ?? 0,
      recon_rows_fetched_fraction: round((s.found?.rowsFetched ?? 0) / total, 6),
      recon_bisect_ms: Math.round(bisect),
      recon_fullpull_ms: Math.round(full),
      recon_speedup: round(full / bisect),
      recon_count_ms: Math.round(count),
      recon_bisect_over_count: round(bisect / count),
    };
  },
  charts(s) {
    const charts: ChartSpec[] = [];
    if (s.found?.tree) charts.push({ kind: 'tree', id: 'recon-segment-tree', title: 'Bisection segment tree: equal segments folded, differing ones split, small ones fetched', root: chartTree(s.found.tree) });
    if (s.levels)
      charts.push({
        kind: 'bar',
        id: 'recon-levels-cost',
        title: 'Rows moved out of the databases, per level',
        x: 'level',
        y: 'rows moved',
        series: [{ name: 'rows moved', points: s.levels.map((l) => ({ x: l.level, y: l.rows_moved })) }],
      });
    return charts;
  },
  async persist(s, out) {
    await out.table('recon_differences', s.found ? diffRows(s.found.diffs) : []);
    await out.table('recon_ground_truth', (s.truth ?? []).map((t) => ({ key: t.key, kind: t.kind, columns: (t.columns ?? []).join(','), label: t.label, day: t.day })));
    await out.table('recon_partitions', (s.partitions?.partitions ?? []).map((p) => ({ day: p.day, source_rows: p.sourceRows, target_rows: p.targetRows, differing: p.differing.join(' '), classic_differs: p.classicDiffers })));
    await out.table('recon_segments', s.found?.tree ? flattenTree(s.found.tree) : []);
    await out.table('recon_levels', (s.levels ?? []).map((l) => ({ ...l, ms: Math.round(l.ms) })));
  },
  exercise: {
    stub: 'labs/reconciliation/exercise/stub.ts',
    solution: 'pipelines/reconciliation/bisect.ts',
    load(mod) {
      if (typeof mod.bisectDiff !== 'function') throw new Error('export a function bisectDiff(source, target, spec, options)');
      return bisectingReconciler(mod.bisectDiff as typeof bisectDiff);
    },
    hints: [
      'Start from the bounds: keyBounds(side, spec) on both sides gives row counts and min/max keys. The whole key range [min, max] of BOTH sides is the root segment — a key only the target has must fall inside it.',
      'segmentChecksums(side, spec, ranges, origin, width) returns, per segment index i (keys origin + i·width … origin + (i+1)·width − 1), the row count and the exact sum of row hashes — computed inside the database. Call it on both sides with the same arguments and compare (count, sum) per index; a segment missing on one side counts as (0, "0").',
      'Hash every row once: the first level covers the whole key range with no filter (pass ranges = []), with a power-of-two width such that a segment holds about fanout × fetchThreshold / 2 rows (firstWidth(span, rows, options) computes it) — one split then gives children small enough to fetch. Each level divides the width by fanout; power-of-two widths keep every child inside its parent.',
      'A differing segment with at most fetchThreshold rows on each side (or width 1) is a leaf: collect its range. Otherwise split it: the next level hashes only the differing ranges, at width / fanout.',
      'At the end, fetchRows(side, spec, leafRanges) on both sides and compareRowSets(spec, sourceRows, targetRows) gives the exact diffs — missing, extra, duplicate, and the differing columns, NULL-safe and within tolerance. Report stats.rowsFetched honestly: the check counts them.',
    ],
    nudges: {
      'finds-all-invents-none': 'Some injected difference is missing or an equal row is reported: make the root range cover both sides\' keys, treat a segment absent on one side as (0 rows, sum "0"), and compare leaves with compareRowSets.',
      'no-false-alarms': 'Equal data was reported as different: compare segment checksums (count and hash sum), not raw values, and compare fetched rows with compareRowSets (tolerances, trailing spaces).',
      'bisection-fetches-little': 'Too many rows moved: fetch only differing segments with at most fetchThreshold rows per side; split bigger ones and re-hash only those.',
      'fingerprint-order-independent-sensitive': 'This claim uses the shared fingerprint; if it fails, the row hash itself (pipelines/engines) changed.',
      'partition-days-named': 'This claim uses the reference partition level; if it fails, check the fixture and spec, not your bisection.',
    },
  },
};

export type { State as ReconciliationState };
export const _forTests = { chartTree, flattenTree };
