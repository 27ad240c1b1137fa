import { rmSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { claimsTally, type AnyLab, type ClaimOutcome, type FixtureParams, type LabContext, type LabReport, type PitfallOutcome, type SharedFixture, type StepRecord } from './contract.ts';
import { Reporter } from './reporter.ts';
import { Engines } from '../pipelines/engines/index.ts';
import type { ProvisionMode } from '../pipelines/engines/provision-mode.ts';
import type { TargetEngineName } from '../pipelines/engines/types.ts';
import { InterruptedError, UsageError, errorLine } from '../pipelines/errors.ts';
import { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';

export interface RunOptions {
  seed: number;
  scale: number;
  engine?: TargetEngineName;
  provision: ProvisionMode;
  out: Reporter;
  /** Use this engine set (tests share one); otherwise the run makes and stops its own. */
  engines?: Engines;
  /** `--step`: resolves when the user wants the next step. */
  pause?: (nextTitle: string) => Promise<void>;
  /** `--out DIR`. */
  outDir?: string;
  signal?: AbortSignal;
  /** Skip running pitfalls (faster, e.g. benchmarks). */
  skipPitfalls?: boolean;
  /** The lab's own options given on the command line (`--capture debezium`), by name. */
  options?: Readonly<Record<string, string>>;
}

export function resolveEngine(lab: AnyLab, engine: TargetEngineName | undefined): TargetEngineName {
  const name = engine ?? lab.engines[0]!;
  if (!lab.engines.includes(name)) {
    throw new UsageError(`lab ${lab.id} does not run on --engine ${name} (supported: ${lab.engines.join(', ')})`);
  }
  return name;
}

/**
 * Every option of `lab` with its value: the given one, else the default. An option the lab does
 * not take, or a value it does not accept, is a UsageError (one line, exit 2) before any engine starts.
 */
export function resolveOptions(lab: AnyLab, given: Readonly<Record<string, string>> = {}): Record<string, string> {
  const own = lab.options ?? {};
  for (const [name, value] of Object.entries(given)) {
    const o = own[name];
    if (!o) throw new UsageError(`lab ${lab.id} takes no --${name}${Object.keys(own).length ? ` (its options: ${Object.keys(own).map((n) => `--${n}`).join(', ')})` : ''}`);
    if (!o.values.includes(value)) throw new UsageError(`--${name} must be one of ${o.values.join('|')}, got "${value}"`);
  }
  return Object.fromEntries(Object.entries(own).map(([name, o]) => [name, given[name] ?? o.values[0]!]));
}

/** Shared fixtures' values: per engine set, per fixture id and key (`SharedFixture`). */
const sharedValues = new WeakMap<Engines, Map<string, Promise<unknown>>>();

/** The value of `fixture` for `params` in this engine set: made on first use, then the same promise. A failed make is forgotten (the next use tries again). */
export function sharedFixture<V>(engines: Engines, fixture: SharedFixture<V>, params: FixtureParams): Promise<V> {
  let values = sharedValues.get(engines);
  if (!values) sharedValues.set(engines, (values = new Map()));
  const key = `${fixture.id}\u0000${fixture.key(params)}`;
  const hit = values.get(key);
  if (hit) return hit as Promise<V>;
  const made = fixture.make({ seed: params.seed, scale: params.scale, engine: params.engine, engines });
  values.set(key, made);
  made.then(
    // Registered once made: stopAll() runs closers last-registered first, so the release runs before the connections `make` opened close.
    (value) => fixture.release && engines.onStop(() => fixture.release!(value)),
    () => values.get(key) === made && values.delete(key),
  );
  return made;
}

/** `ctx` with `shared` bound to its own engine set, seed, scale and engine. */
export function withShared(ctx: Omit<LabContext, 'shared'>): LabContext {
  return { ...ctx, shared: (fixture) => sharedFixture(ctx.engines, fixture, ctx) };
}

/**
 * Runs every step of `lab` with `impl` and returns the state the claims are checked on.
 * `alongsideFirstStep` (the warm-up of shared fixtures) is awaited when the first step ends:
 * nothing runs behind the steps after it, which may be measured.
 */
export async function runPipeline<I, S>(
  lab: AnyLab,
  ctx: LabContext,
  impl: I,
  pause?: RunOptions['pause'],
  timings?: { phase: string; ms: number }[],
  alongsideFirstStep?: Promise<unknown>,
): Promise<S> {
  const state = lab.newState(ctx) as S;
  let alongside = alongsideFirstStep;
  try {
    for (const step of lab.steps) {
      if (step.benchmarkOnly && ctx.mode === 'check') continue;
      if (ctx.signal.aborted) throw new InterruptedError('interrupted');
      if (pause) await pause(step.title);
      ctx.out.step(step.title);
      const t0 = performance.now();
      await ctx.out.progress(step.title, () => step.run(ctx, impl, state));
      timings?.push({ phase: step.title, ms: Math.round(performance.now() - t0) });
      await alongside;
      alongside = undefined;
    }
  } finally {
    await alongside;
  }
  return state;
}

/** A full run's warm-up: the lab's shared fixtures at check scale, for the pitfalls to come. A failure is left to the check runs, which then make them themselves. */
function warmForChecks(lab: AnyLab, params: FixtureParams, engines: Engines): Promise<unknown> | undefined {
  if (!lab.shared?.length) return undefined;
  const scale = lab.checkScale ? lab.checkScale(params.scale) : params.scale;
  return Promise.all(lab.shared.map((f) => sharedFixture(engines, f, { ...params, scale }))).catch(() => undefined);
}

export function checkClaims<S>(lab: AnyLab, state: S, mode: 'full' | 'check'): ClaimOutcome[] {
  return lab.claims.map((claim) => {
    const base = { id: claim.id, title: claim.title, statement: claim.statement };
    // Not judged: `skipped` is what counts, and `passed` is false either way (never read as a pass).
    if (claim.benchmark && mode === 'check') return { ...base, passed: false, evidence: {}, skipped: true };
    try {
      const result = claim.check(state);
      return { ...base, ...result, ...(result.notJudged ? { passed: false, skipped: true } : {}) };
    } catch (err) {
      return { ...base, passed: false, evidence: {}, counterexample: `check failed: ${errorLine(err)}` };
    }
  });
}

/**
 * Judges one implementation (a pitfall, a learner's exercise) with the lab's claim checks, in
 * check mode. An implementation that throws fails every claim, with the error as counterexample.
 */
export async function checkImplementation<I>(
  lab: AnyLab,
  base: Omit<LabContext, 'mode' | 'out' | 'shared'> & { out?: Reporter },
  impl: I,
): Promise<{ claims: ClaimOutcome[]; error?: string }> {
  const ctx = withShared({
    ...base,
    scale: lab.checkScale ? lab.checkScale(base.scale) : base.scale,
    mode: 'check',
    out: base.out ?? Reporter.silent(),
  });
  try {
    const state = await runPipeline(lab, ctx, impl);
    return { claims: checkClaims(lab, state, 'check') };
  } catch (err) {
    if (err instanceof InterruptedError) throw err;
    const error = errorLine(err);
    return {
      error,
      claims: lab.claims.map((c) => ({ id: c.id, title: c.title, statement: c.statement, passed: false, evidence: {}, counterexample: `implementation threw: ${error}` })),
    };
  }
}

export async function runPitfalls(lab: AnyLab, base: Omit<LabContext, 'mode' | 'out' | 'shared'>): Promise<PitfallOutcome[]> {
  const outcomes: PitfallOutcome[] = [];
  for (const p of lab.pitfalls) {
    const { claims, error } = await checkImplementation(lab, base, p.impl);
    const failed = claims.filter((c) => !c.passed && !c.skipped);
    outcomes.push({
      name: p.name,
      title: p.title,
      rejectedBy: failed.map((c) => c.id),
      counterexample: (failed.find((c) => c.id === p.shows && c.counterexample) ?? failed.find((c) => c.counterexample))?.counterexample,
      ...(error ? { error } : {}),
    });
  }
  return outcomes;
}

/** One full lab run: engines, reference pipeline, claims, pitfalls, metrics, `--out`. */
export async function runLab(lab: AnyLab, opts: RunOptions): Promise<LabReport> {
  const t0 = Date.now();
  const engine = resolveEngine(lab, opts.engine);
  const options = resolveOptions(lab, opts.options);
  const engines = opts.engines ?? new Engines({ mode: opts.provision, log: (m) => opts.out.note(m) });
  const workDir = engines.tempDir(lab.id);
  const signal = opts.signal ?? new AbortController().signal;
  const out = opts.out;
  try {
    // Provision what the lab needs up front: a missing engine fails fast, in one line.
    const needs = new Set<string>(lab.needs);
    if (engine === 'postgres') needs.add('postgres');
    const timings: { phase: string; ms: number }[] = [];
    const tEngines = performance.now();
    await Promise.all([needs.has('postgres') ? engines.postgres() : null, needs.has('kafka') ? engines.kafka() : null]);
    if (needs.has('postgres') || needs.has('kafka')) timings.push({ phase: 'engines', ms: Math.round(performance.now() - tEngines) });

    const ctx = withShared({ seed: opts.seed, scale: opts.scale, engine, engines, out, mode: 'full', workDir, signal, options });
    const warm = opts.skipPitfalls || lab.pitfalls.length === 0 ? undefined : warmForChecks(lab, ctx, engines);
    out.heading(`${lab.title}  [${lab.id} · seed ${opts.seed} · scale ${opts.scale} · ${engine}]`);
    out.wrapped(`  Q: ${lab.question}`, '     ');
    // What each step showed and sent (for the HTML report): the reference run only.
    out.startRecording();
    engines.onStatement = (sql) => out.sql(sql);
    let steps: StepRecord[];
    let state: unknown;
    try {
      state = await runPipeline(lab, ctx, lab.reference, opts.pause, timings, warm);
    } finally {
      engines.onStatement = null;
      steps = out.stopRecording();
    }
    const claims = checkClaims(lab, state, 'full');

    let pitfalls: PitfallOutcome[] = [];
    if (!opts.skipPitfalls && lab.pitfalls.length > 0) {
      if (opts.pause) await opts.pause('pitfalls');
      out.step(`Pitfalls: the same claim checks on ${lab.pitfalls.length} common wrong implementations`);
      const tPitfalls = performance.now();
      pitfalls = await out.progress('pitfalls', () => runPitfalls(lab, { seed: opts.seed, scale: opts.scale, engine, engines, workDir, signal, options }));
      timings.push({ phase: 'pitfalls', ms: Math.round(performance.now() - tPitfalls) });
      // One block per pitfall, wrapped at the terminal width: what it does wrong, which claims
      // (by title) reject it, and the counterexample that shows it.
      const claimTitle = new Map(lab.claims.map((c) => [c.id, c.title]));
      for (const p of pitfalls) {
        const caught = p.rejectedBy.length > 0;
        out.wrapped(`    ${caught ? '✔' : '✘'} ${p.name} — ${p.title}`, '        ');
        out.wrapped(`        rejected by: ${caught ? p.rejectedBy.map((id) => claimTitle.get(id) ?? id).join(' · ') : 'NOT CAUGHT by any claim'}`, '          ');
        if (p.counterexample) out.wrapped(`        counterexample: ${p.counterexample}`, '          ');
      }
    }

    const metrics = lab.metrics(state);
    const report: LabReport = {
      lab: lab.id,
      title: lab.title,
      seed: opts.seed,
      scale: opts.scale,
      engine,
      provision: opts.provision,
      providers: await engines.providers(),
      claims: claims.map(({ id, title, statement, passed, evidence, counterexample, skipped, notJudged }) => ({
        id,
        title,
        statement,
        passed,
        evidence,
        ...(counterexample && !passed ? { counterexample } : {}),
        ...(skipped ? { skipped, ...(notJudged ? { notJudged } : {}) } : {}),
      })),
      pitfalls,
      metrics,
      charts: lab.charts?.(state),
      steps,
      durationMs: Date.now() - t0,
      timingsMs: timings,
    };

    if (opts.outDir) await persist(lab, state, report, opts.outDir);

    out.line();
    out.line(`  Claims (${claimsTally(claims)}):`);
    // Titles padded to one column: the verdicts line up, last on screen.
    const titleWidth = Math.max(0, ...claims.map((c) => c.title.length));
    for (const c of claims) {
      out.claim(c.passed, c.title.padEnd(titleWidth), c.evidence, c.skipped);
      if (c.notJudged) out.note(`not judged: ${c.notJudged}`);
      else if (!c.passed && c.counterexample) out.note(`counterexample: ${c.counterexample}`);
    }
    return report;
  } finally {
    rmSync(workDir, { recursive: true, force: true });
    if (!opts.engines) await engines.stopAll();
  }
}

/** `--out DIR`: DIR/<id>.duckdb with the lab's final tables, DIR/<id>.json with the report. Atomic: written aside, then renamed. */
async function persist(lab: AnyLab, state: unknown, report: LabReport, outDir: string): Promise<void> {
  const dir = resolve(outDir);
  mkdirSync(dir, { recursive: true });
  const tmpDb = join(dir, `.${lab.id}.duckdb.tmp-${process.pid}`);
  rmSync(tmpDb, { force: true });
  const db = await DuckDbEngine.open(tmpDb);
  try {
    let n = 0;
    await lab.persist?.(state, {
      table: async (name, rows) => {
        if (rows.length === 0) {
          await db.exec(`CREATE TABLE ${db.dialect.ident(name)} (empty BOOLEAN)`);
          return;
        }
        const file = join(dir, `.${lab.id}.${n++}.ndjson`);
        writeFileSync(file, rows.map((r) => JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString() : v))).join('\n') + '\n');
        try {
          await db.exec(`CREATE TABLE ${db.dialect.ident(name)} AS SELECT * FROM read_json_auto('${file.replace(/'/g, "''")}', format = 'newline_delimited')`);
        } finally {
          rmSync(file, { force: true });
        }
      },
    });
    await db.exec('CHECKPOINT');
  } finally {
    await db.close();
  }
  renameSync(tmpDb, join(dir, `${lab.id}.duckdb`));
  rmSync(`${tmpDb}.wal`, { force: true });
  const tmpJson = join(dir, `.${lab.id}.json.tmp-${process.pid}`);
  writeFileSync(tmpJson, JSON.stringify(report, null, 2) + '\n');
  renameSync(tmpJson, join(dir, `${lab.id}.json`));
}
