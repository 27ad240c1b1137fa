import type { Lab } from '../contract.ts';
import type { TargetEngineName } from '../../pipelines/engines/types.ts';
import { skewFixture } from '../../fixtures/skew.ts';
import { FIXED_STRATEGIES, saltHotKeys, type SkewImpl } from '../../pipelines/skew/index.ts';
import { detect, nativeJoins, newSkewState, retryTrap, SKEW_PARAMS, type SkewState, type StrategyExecutor } from './scenario.ts';
import { findRun, kSweep, onJsExecutor } from './strategies.ts';
import { balance, costOfK, detectHotKeysClaim, fmt, makespanSpeedup, retryDeterminism, round, sameAnswer } from './claims.ts';
import { skewPitfalls } from './pitfalls.ts';
import * as view from './view.ts';
import { skewHints, skewNudges } from './exercise/hints.ts';

export { SKEW_PARAMS, type SkewState };
export type { StrategyRun, SweepPoint } from './scenario.ts';
export { sweepKnee } from './strategies.ts';

// spark: the strategies run on a Spark cluster (labs/skew/spark.ts); DuckDB still gives the answer.
const ENGINES = ['duckdb', 'spark'] as const satisfies readonly TargetEngineName[];

/**
 * Where a reference run executes the strategies, per `--engine`: the JS partitioned executor, or
 * Spark SQL on a cluster (labs/skew/spark.ts, loaded on first use — DuckDB runs never load the
 * client; DuckDB still gives the answer). A check run judges a JS map function: always the JS executor.
 */
const EXECUTORS: Record<(typeof ENGINES)[number], StrategyExecutor> = {
  duckdb: onJsExecutor,
  spark: async (ctx, _impl, state) => (await import('./spark.ts')).strategiesOnSpark(ctx, state, SKEW_PARAMS),
};

export const skewLab: Lab<SkewImpl, SkewState> = {
  id: 'skew',
  title: 'Skewed join: detect hot keys, salt them, keep the answer',
  question: 'Your join is slow and one task runs forever — what do you do?',
  needs: [],
  engines: ENGINES,
  reference: { saltHotKeys },
  pitfalls: skewPitfalls,
  // Chosen once: a reference run measures every strategy on its engine; a check run judges the candidate's salted map side beside plain, by rows.
  newState: (ctx) =>
    newSkewState(
      ctx.mode === 'full'
        ? { measured: true, fixed: FIXED_STRATEGIES, executor: EXECUTORS[ctx.engine as (typeof ENGINES)[number]] }
        : { measured: false, fixed: FIXED_STRATEGIES.filter((s) => s.name === 'plain'), executor: onJsExecutor },
    ),
  // Pitfalls and exercises run on 100k payments: same distribution, same counterexamples, a second each.
  checkScale: (scale) => scale / 20,
  steps: [
    {
      title: 'Generate payments ⋈ merchants: one merchant ~40%, a Zipf tail, NULL keys, hot keys missing from merchants',
      async run(ctx, _impl, state) {
        state.fixture = skewFixture(ctx.seed, ctx.scale);
        ctx.out.table(view.fixtureTable(state.fixture));
      },
    },
    {
      title: `Detect hot keys from a ${SKEW_PARAMS.sampleRate * 100}% sample, ≥ ${fmt(SKEW_PARAMS.minSampleRows)} rows (estimated vs exact counts)`,
      async run(ctx, _impl, state) {
        Object.assign(state, detect(state.fixture!, ctx.seed));
        ctx.out.note(view.detectionNote(state.detection!));
        ctx.out.table(view.detectionTable(state.detection!, state.fixture!), 6);
      },
    },
    {
      title: 'DuckDB joins the same tables natively: the answer to match, and the floor',
      async run(ctx, _impl, state) {
        const { loadMs, native } = await nativeJoins(await ctx.engines.duckdb(), state.fixture!);
        state.loadMs = loadMs;
        state.native.push(...native);
        ctx.out.table(view.nativeTable(state));
      },
    },
    {
      title: `Five strategies on the partitioned executor — JS, or Spark with --engine spark (P = ${SKEW_PARAMS.partitions} reducers, makespan scheduled from measured task times on E = ${SKEW_PARAMS.executors} executors)`,
      async run(ctx, impl, state) {
        await state.plan.executor(ctx, impl, state);
        if (state.spark) ctx.out.note(view.sparkNote(state.spark));
        ctx.out.table(view.strategiesTable(state));
      },
    },
    {
      title: `K sweep: the salted join for K = ${SKEW_PARAMS.kSweep.join(', ')}`,
      async run(ctx, impl, state) {
        Object.assign(state, kSweep(state.fixture!, impl, ctx.seed, state.detection!, state.hotDimRows, state.plan.measured));
        ctx.out.table(view.sweepTable(state), 20);
      },
    },
    {
      title: 'Retry one map task (rows arrive in another order): does every row go to the same reducer?',
      async run(ctx, impl, state) {
        Object.assign(state, retryTrap(state.fixture!, impl, ctx.seed, state.detection!));
        ctx.out.table(view.retryTable(state.retry!, state.retryRand!));
        if (state.spark?.retry.length) {
          ctx.out.note('On the Spark cluster: one executor SIGKILLed while the salted join’s reducers ran (README: what Spark does about rand())');
          ctx.out.table(view.sparkRetryTable(state.spark.retry));
        }
      },
    },
  ],
  claims: [
    {
      id: 'detect-hot-keys',
      title: 'Detection by sampling',
      statement: `A ${SKEW_PARAMS.sampleRate * 100}% sample (never fewer than ${fmt(SKEW_PARAMS.minSampleRows)} rows) finds every key holding at least twice the hot threshold (${2 * SKEW_PARAMS.hotShare * 100}% of rows): recall 1.0; the error of each estimated count is reported.`,
      check: detectHotKeysClaim,
    },
    {
      id: 'same-answer',
      title: 'Same answer',
      statement:
        'Every strategy returns exactly the plain join’s multiset of rows, for inner and left joins — hot merchants missing from the small side and NULL merchant keys included — and the plain join matches DuckDB’s own join.',
      check: sameAnswer,
    },
    {
      id: 'balance',
      title: 'Balance',
      statement: `Max/avg input rows per partition falls from ≥ ${SKEW_PARAMS.minRatioBefore} with plain hash partitioning to ≤ ${SKEW_PARAMS.maxRatioAfter} with the hot keys salted (K = ${SKEW_PARAMS.saltFactor}, P = ${SKEW_PARAMS.partitions}).`,
      check: balance,
    },
    {
      id: 'makespan',
      title: 'Speed (simulated)',
      benchmark: true,
      statement: `With E = P = ${SKEW_PARAMS.executors} executors, the makespan simulated from measured task times improves ≥ ${SKEW_PARAMS.minSpeedup}× with salting.`,
      check: makespanSpeedup,
    },
    {
      id: 'cost-of-k',
      title: 'Cost is visible',
      statement:
        'Rows shuffled grow with K — by K−1 extra copies of each hot merchant’s row, no more — and the K sweep shows where a larger K stops paying (the knee: no larger K cuts the makespan by another 5%).',
      check: costOfK,
    },
    {
      id: 'retry-determinism',
      title: 'Determinism under retry',
      statement:
        'A salt derived from a hash of the row’s identity sends every row of a re-run map task to the reducer it went to the first time; a rand() salt does not — rows land on other reducers, lost or counted twice by an engine that re-runs only the lost map task. (Spark 4 re-ran the lost map stages and the whole join stage and gave the exact answer with either salt: --engine spark kills an executor to show it.)',
      check: retryDeterminism,
    },
  ],
  metrics: (s) => {
    const plain = findRun(s, 'plain');
    const salted = findRun(s, 'salted');
    const native = s.native.find((n) => n.joinType === 'inner');
    return {
      skew_ratio_before: round(plain?.ratio ?? 0),
      skew_ratio_after: round(salted?.ratio ?? 0),
      skew_makespan_speedup: round(plain && salted && salted.makespanMs > 0 ? plain.makespanMs / salted.makespanMs : 0),
      skew_rows_joined: salted?.outputRows ?? 0,
      skew_native_join_ms: round(native?.ms ?? 0, 1),
      skew_salted_wall_ms: round(salted?.wallMs ?? 0, 1),
      skew_salted_over_native: round(salted && native && native.ms > 0 ? salted.wallMs / native.ms : 0),
      // --engine spark: the cluster's start, the load, and the real stage times on its 2 cores.
      ...(s.spark
        ? {
            skew_spark_startup_ms: Math.round(s.spark.startupMs),
            skew_spark_load_ms: Math.round(s.spark.loadMs),
            skew_spark_stage_ms_plain: Math.round(plain?.stageMs ?? 0),
            skew_spark_stage_ms_salted: Math.round(salted?.stageMs ?? 0),
            ...Object.fromEntries(
              s.spark.retry.flatMap((r) => [
                [`skew_spark_retry_${r.salt}_equal`, r.equal ? 1 : 0],
                [`skew_spark_retry_${r.salt}_fetch_failures`, r.fetchFailures],
                [`skew_spark_retry_${r.salt}_stage_retries`, r.stageRetries],
              ]),
            ),
          }
        : {}),
    };
  },
  charts: view.skewCharts,
  persist: view.persistSkew,
  exercise: {
    stub: 'labs/skew/exercise/stub.ts',
    solution: 'pipelines/skew/salt.ts',
    load: (mod) => {
      if (typeof mod.saltHotKeys !== 'function') throw new Error('export a function named saltHotKeys');
      return { saltHotKeys: mod.saltHotKeys as SkewImpl['saltHotKeys'] };
    },
    hints: skewHints,
    nudges: skewNudges,
  },
};
