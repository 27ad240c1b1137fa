/**
 * The lab contract: one shape for every lab.
 *
 *   claims   what the interview answer says, in our words, each with a check over the run's evidence
 *   steps    the pipeline, run in order against real engines, filling the run's state
 *   reference the implementation that should pass every claim
 *   pitfalls the common wrong implementations; the same claim checks must reject each one
 *
 * Claims are checked against whichever implementation is passed in (reference, pitfall, or a
 * learner's exercise), so the same checks that guard the reference judge the others.
 */
import type { Engines } from '../pipelines/engines/index.ts';
import type { TargetEngineName } from '../pipelines/engines/types.ts';
import type { Reporter } from './reporter.ts';

export type EvidenceValue = number | string | boolean | null;
export type Evidence = Record<string, EvidenceValue>;

export interface ClaimResult {
  passed: boolean;
  /** The numbers behind the verdict (printed, and in `--json`). */
  evidence: Evidence;
  /** When failed: the smallest concrete input/output that shows it, in a line or a few. */
  counterexample?: string;
  /**
   * Set when this run cannot judge the claim — its bar is set at another scale, say — with why,
   * in a line. Shown as "–" with the evidence and the reason; neither passed nor failed.
   */
  notJudged?: string;
}

export interface Claim<State> {
  /** Stable id, kebab-case: referenced by tests, pitfalls and the JSON report. */
  id: string;
  /** A few words for tables. */
  title: string;
  /** The claim, in our words. */
  statement: string;
  /**
   * Benchmark claims need the benchmark steps; they are not checked when judging a candidate
   * implementation in check mode (pitfalls, exercises).
   */
  benchmark?: boolean;
  check(state: State): ClaimResult;
}

export interface Pitfall<Impl> {
  /** kebab-case id. */
  name: string;
  /** One line: what it does wrong. */
  title: string;
  /** Why people write it, and what it breaks. */
  description: string;
  impl: Impl;
  /**
   * The claim that names its defect, when several reject it: its counterexample is the one shown
   * (default: the first rejecting claim's, in claim order).
   */
  shows?: string;
}

export interface LabContext {
  seed: number;
  scale: number;
  /** Target engine of labs that support several (`--engine`). */
  engine: TargetEngineName;
  engines: Engines;
  out: Reporter;
  /**
   * 'full': every step (the reference run, with benchmarks).
   * 'check': judging a candidate implementation; benchmark-only steps are skipped.
   */
  mode: 'full' | 'check';
  /** A temp dir of this run, removed at the end. */
  workDir: string;
  /** The lab's own options (`Lab.options`), each with its value (the default when not given). */
  options?: Readonly<Record<string, string>>;
  /** Aborted on SIGINT/SIGTERM: long steps should stop early. */
  signal: AbortSignal;
  /** The value of a fixture runs share, made on first use (see `SharedFixture`). */
  shared<V>(fixture: SharedFixture<V>): Promise<V>;
}

/** What a shared fixture is made from: the run's seed, scale and target engine. */
export type FixtureParams = Pick<LabContext, 'seed' | 'scale' | 'engine'>;

/**
 * Data that runs share instead of each making its own (a loaded source, say): the runner makes it
 * once per engine set and key, and its `release` runs when the engines stop, before the
 * connections it used close. Steps only read it — a candidate under judgement must not change
 * what the next one is judged on. A lab lists its fixtures in `shared`: a full run then warms them
 * at check scale alongside its first step, so the pitfalls' check runs find them made.
 */
export interface SharedFixture<V> {
  /** kebab-case; keeps one fixture's values apart from another's. */
  id: string;
  /** Runs whose keys are equal share one value: what the fixture is made from, and nothing else. */
  key(params: FixtureParams): string;
  make(params: FixtureParams & { engines: Engines }): Promise<V>;
  /** What `make` leaves that the engines do not stop themselves. */
  release?(value: V): Promise<void>;
}

export interface Step<Impl, State> {
  title: string;
  /** Only in 'full' mode: measurements and demos, not needed to check claims. */
  benchmarkOnly?: boolean;
  run(ctx: LabContext, impl: Impl, state: State): Promise<void>;
}

export interface Lab<Impl = unknown, State = unknown> {
  id: string;
  title: string;
  /** The interview question the lab answers. */
  question: string;
  /** Servers needed besides DuckDB (the target engine's own server is added by the runner). */
  needs: readonly ('postgres' | 'kafka')[];
  /** Supported `--engine` values; the first is the default. */
  engines: readonly TargetEngineName[];
  /** Options only this lab takes (`--<name> <value>`): the values each accepts, the first its default. */
  options?: Readonly<Record<string, LabOption>>;
  reference: Impl;
  pitfalls: readonly Pitfall<Impl>[];
  claims: readonly Claim<State>[];
  /** Fresh, empty state for one run of the pipeline. */
  newState(ctx: LabContext): State;
  /** Fixtures this lab's runs share (`ctx.shared`): warmed at check scale by a full run. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  shared?: readonly SharedFixture<any>[];
  steps: readonly Step<Impl, State>[];
  /** Named numbers for `--json` (see the lab README for each one's meaning). */
  metrics(state: State): Record<string, number>;
  /**
   * Scale used when running a pitfall or an exercise (check mode). Smaller keeps a lab's default
   * run demo-fast; counterexamples stay meaningful because fixtures are seeded.
   */
  checkScale?(scale: number): number;
  /** Writes the lab's final tables into the `--out` DuckDB file (names in the lab README). */
  persist?(state: State, out: PersistTarget): Promise<void>;
  /** Data for the HTML report's charts. */
  charts?(state: State): ChartSpec[];
  /** Exercise mode: the core step a candidate should be able to write in an interview. */
  exercise?: Exercise<Impl>;
}

export interface LabOption {
  /** Accepted values; the first is the default. */
  values: readonly string[];
  /** One line for `--help`. */
  help: string;
}

export interface Exercise<Impl> {
  /** Repo-relative path of the stub copied to `exercises/<lab>/` (typed, TODOs, throws until done). */
  stub: string;
  /** Repo-relative path of the reference source shown by `--solution`. */
  solution: string;
  /** Builds the lab's implementation from the learner's module exports. */
  load(module: Record<string, unknown>): Impl;
  /** Revealed one at a time by `npm run check -- <lab> --hint`. */
  hints: readonly string[];
  /** One-line nudge per claim id, printed when that claim fails on the learner's code. */
  nudges: Readonly<Record<string, string>>;
}

export interface PersistTarget {
  /** Creates table `name` in the output database from rows (types inferred). */
  table(name: string, rows: readonly Record<string, unknown>[]): Promise<void>;
}

/** A chart for the HTML report; rendered as inline SVG. */
export type ChartSpec =
  | { kind: 'bar'; id: string; title: string; x: string; y: string; series: { name: string; points: { x: string | number; y: number }[] }[] }
  | {
      kind: 'line';
      id: string;
      title: string;
      x: string;
      y: string;
      series: { name: string; points: { x: number; y: number }[] }[];
      /** 'data': the y axis spans the data (a small change on a large base stays visible); default: from zero. */
      yFrom?: 'zero' | 'data';
      /** Vertical markers at x (a knee, a kill, an incident), labelled. */
      marks?: { x: number; label: string }[];
    }
  | { kind: 'timeline'; id: string; title: string; rows: { label: string; spans: { from: string; to: string | null; text: string }[] }[] }
  | { kind: 'tree'; id: string; title: string; root: TreeNode };

export interface TreeNode {
  label: string;
  status: 'equal' | 'differs' | 'fetched';
  children?: TreeNode[];
}

/** Erases the lab's type parameters for the registry. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyLab = Lab<any, any>;

/** One step of the reference run as the terminal showed it: its notes, its tables, the SQL it sent (this process's). */
export interface StepRecord {
  title: string;
  notes: string[];
  tables: Record<string, EvidenceValue>[][];
  /** Distinct statements in the order first sent, at most a dozen, each cut at 4,000 characters. */
  sql: string[];
  /** Statements sent in all (repeats included). */
  statements: number;
}

export interface ClaimOutcome extends ClaimResult {
  id: string;
  title: string;
  statement: string;
  /**
   * true when not judged: a benchmark claim in check mode, or a claim whose check set `notJudged`.
   * `passed` is then false, and readers go by `skipped` first (`claimsHold`, `claimsTally`).
   */
  skipped?: boolean;
}

/** A run's claims hold when every claim it could judge passed. */
export const claimsHold = (claims: readonly ClaimOutcome[]) => claims.every((c) => c.passed || c.skipped);

/** Passed over judged, "5/5", then `suffix`, then ", 1 not judged" when some were not. */
export function claimsTally(claims: readonly ClaimOutcome[], suffix = ''): string {
  const judged = claims.filter((c) => !c.skipped);
  const notJudged = claims.length - judged.length;
  return `${judged.filter((c) => c.passed).length}/${judged.length}${suffix}${notJudged ? `, ${notJudged} not judged` : ''}`;
}

export interface PitfallOutcome {
  name: string;
  title: string;
  /** Claim ids whose check failed on this pitfall. Empty = the claims did not catch it. */
  rejectedBy: string[];
  counterexample?: string;
  error?: string;
}

/** The `--json` report. */
export interface LabReport {
  lab: string;
  title: string;
  seed: number;
  scale: number;
  engine: TargetEngineName;
  provision: string;
  providers: Record<string, string>;
  claims: ClaimOutcome[];
  pitfalls: PitfallOutcome[];
  metrics: Record<string, number>;
  charts?: ChartSpec[];
  /** The reference run's steps: notes, tables and SQL, for the HTML report. */
  steps?: StepRecord[];
  durationMs: number;
  /**
   * Where the run's time went, ms: engine provisioning, each step of the reference run, the
   * pitfalls. Timings vary from run to run; nothing is asserted on them.
   */
  timingsMs?: { phase: string; ms: number }[];
}

/**
 * A claim check over one section of the state that a step fills (`scenario`, say): when the step
 * did not run — it threw, or check mode skipped it — the claim fails with that as its
 * counterexample instead of throwing on a missing field. The check gets the section, and the
 * whole state for what it reads beside it.
 */
export function requires<S, K extends keyof S>(section: K, check: (ev: NonNullable<S[K]>, state: S) => ClaimResult): (state: S) => ClaimResult {
  return (state) => {
    const ev = state[section];
    return ev === undefined || ev === null ? { passed: false, evidence: {}, counterexample: `the step that makes ${String(section)} did not run` } : check(ev as NonNullable<S[K]>, state);
  };
}
