/**
 * The cdc lab, wired: Postgres WAL → capture → Kafka → apply → MERGE into the target.
 *
 *   plan.ts          the seeded workload of one run
 *   scenario.ts      the steps; each writes its section of the evidence (evidence.ts)
 *   claims.ts        the claims, pure checks over the evidence
 *   view.ts          the tables each step shows, the metrics, charts and `--out` tables
 *   pitfalls.ts      the wrong applies the claims reject; exercise/ the learner's stub and hints
 *
 * The capture source is chosen here, once: the reference run captures live; judging a candidate
 * apply (a pitfall, an exercise) replays topics captured once per run.
 */
import type { Lab, LabContext, Step } from '../contract.ts';
import type { Reporter } from '../reporter.ts';
import { CAPTURES, captureKind, liveCapture, replayCapture, type CaptureSource } from '../../pipelines/cdc/capture-source.ts';
import type { ApplyImpl } from '../../pipelines/cdc/index.ts';
import type { CdcState } from './evidence.ts';
import { capturePlan } from './plan.ts';
import { auditTopics, captureCrash, compareTargets, drainBacklog, referenceImpl, replayTopics, setUp, streamPhase } from './scenario.ts';
import { cdcClaims } from './claims.ts';
import { cdcCharts, cdcMetrics, persistCdc, stepViews } from './view.ts';
import { cdcPitfalls } from './pitfalls.ts';
import { cdcExercise } from './exercise/hints.ts';

export type CdcImpl = ApplyImpl;
export { referenceImpl };
export { sentinelChange } from './plan.ts';

/** A step: the scenario function writes evidence, then the view shows it. */
function step(
  title: string,
  run: (ctx: LabContext, impl: CdcImpl, s: CdcState) => Promise<void>,
  view: (out: Reporter, s: CdcState) => void,
  opts: { benchmarkOnly?: boolean } = {},
): Step<CdcImpl, CdcState> {
  return {
    title,
    ...opts,
    async run(ctx, impl, s) {
      await run(ctx, impl, s);
      view(ctx.out, s);
    },
  };
}

/**
 * The one place the run's mode and `--capture` matter to cdc: which capture writes the topics
 * (ours or Debezium), and whether it streams live (the reference run) or its topics, captured
 * once, are replayed (judging a pitfall or an exercise).
 */
function newState(ctx: LabContext): CdcState {
  const live = ctx.mode === 'full';
  const plan = capturePlan(ctx.seed, ctx.scale, live);
  const name = ctx.options?.capture ?? CAPTURES[0];
  const capture = captureKind(name, ctx.engines, (m) => ctx.out.note(m));
  const deps = { engines: ctx.engines, plan, signal: ctx.signal, capture };
  const source: CaptureSource = live ? liveCapture(deps) : replayCapture(deps, `${ctx.seed}|${ctx.scale}|${name}`);
  return { source, plan, aBatches: [], lag: [] };
}

export const cdcLab: Lab<CdcImpl, CdcState> = {
  id: 'cdc',
  title: 'CDC: Postgres WAL → Kafka → MERGE, exactly-once in effect',
  question: 'Design CDC from an operational Postgres into the warehouse. What makes it exactly-once, and what breaks it?',
  needs: ['postgres', 'kafka'],
  engines: ['duckdb', 'postgres', 'snowflake'],
  options: {
    capture: {
      values: CAPTURES,
      help: 'the capture that writes the topics: ours, or real Debezium 3.6.1 (then also cdc_capture_over_debezium, both captures timed on one backlog)',
    },
  },
  reference: referenceImpl,
  pitfalls: cdcPitfalls,
  newState,
  checkScale: (scale) => Math.min(scale, 0.1),
  steps: [
    step('Source tables + rows; capture process: publication, slot, snapshot (op=r); apply process joins its group', setUp, stepViews.setUp),
    step('Workload: inserts, updates, deletes, re-inserts, hot rows, schema change — while both processes run', streamPhase, stepViews.streamPhase),
    step('Capture crash: SIGKILL after the Kafka ack, before the slot ack — restart, Postgres re-sends', captureCrash, stepViews.captureCrash),
    step('Throughput: a backlog committed while the capture is stopped, drained end to end', drainBacklog, stepViews.drainBacklog, { benchmarkOnly: true }),
    step('Target equals source? (full NULL-safe compare, every table)', compareTargets, stepViews.compareTargets),
    step('Replay every topic from offset 0 into the converged target (a new consumer group)', replayTopics, stepViews.replayTopics),
    step('What the topics carry: a bare consumer reads them (tombstones, duplicates, same-ts_ms keys; the throughput floor)', auditTopics, stepViews.auditTopics),
  ],
  claims: cdcClaims,
  metrics: cdcMetrics,
  charts: cdcCharts,
  persist: persistCdc,
  exercise: cdcExercise,
};
