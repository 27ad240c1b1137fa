/**
 * Checks a learner's exercise with the lab's own claim checks, on real engines.
 *
 *   npm run check -- <lab> [--seed N] [--scale X] [--engine NAME] [--provision MODE]
 *   npm run check -- <lab> --hint        reveals the next hint (remembered in exercises/<lab>/.hints)
 *   npm run check -- <lab> --solution    the reference beside your file
 *   npm run check -- <lab> --watch       checks again each time you save your file (Ctrl-C ends)
 *
 * Exit code 0 iff every claim holds on the learner's implementation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { basename, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, stopOnInterrupt } from './run-command.ts';
import { claimsHold, claimsTally, type AnyLab, type ClaimOutcome } from '../labs/contract.ts';
import { checkImplementation, resolveEngine } from '../labs/runner.ts';
import { Reporter, formatEvidence } from '../labs/reporter.ts';
import { Engines } from '../pipelines/engines/index.ts';
import type { ProvisionMode } from '../pipelines/engines/provision-mode.ts';
import type { TargetEngineName } from '../pipelines/engines/types.ts';
import { parseCommandLine } from './cli-args.ts';
import { LabError, UsageError, errorLine } from '../pipelines/errors.ts';
import { REPO_ROOT, exercisePaths, hintsRevealed, labWithExercise, loadLearnerImpl, readLastCheck, relativeToCwd, revealHint, sideBySide, writeLastCheck } from './exercise.ts';
import { watch } from 'node:fs';

export interface CheckArgs {
  lab?: string;
  seed: number;
  scale: number;
  engine?: TargetEngineName;
  provision: ProvisionMode;
  hint: boolean;
  solution: boolean;
  watch: boolean;
  help: boolean;
}

const USAGE = `usage: npm run check -- <lab> [--watch] [--hint] [--solution] [--seed N] [--scale X] [--engine NAME] [--provision auto|containers|local|external]
  --watch      check again each time you save exercises/<lab>/<lab>.ts (Ctrl-C ends)
  --hint       one more hint, after the nudge for the claim your last check failed
  --solution   your file beside the reference`;

export function parseCheckArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CheckArgs {
  const p = parseCommandLine(argv, env, { booleans: ['hint', 'solution', 'watch', 'help'] });
  return { lab: p.positional[0], ...p.run, hint: p.flags.has('hint'), solution: p.flags.has('solution'), watch: p.flags.has('watch'), help: p.flags.has('help') };
}

export interface CheckOutcome {
  claims: ClaimOutcome[];
  /** The implementation threw (the untouched stub does): one line. */
  error?: string;
  passed: boolean;
}

/** Runs the lab's checks (check mode, `checkScale`) on the learner's implementation. */
export async function checkExercise(
  lab: AnyLab,
  impl: unknown,
  opts: { seed: number; scale: number; engine?: TargetEngineName; engines: Engines; out?: Reporter; signal?: AbortSignal },
): Promise<CheckOutcome> {
  const engine = resolveEngine(lab, opts.engine);
  const needs = new Set<string>(lab.needs);
  if (engine === 'postgres') needs.add('postgres');
  // A missing engine fails here, in one line, before any of the learner's code runs.
  await Promise.all([needs.has('postgres') ? opts.engines.postgres() : null, needs.has('kafka') ? opts.engines.kafka() : null]);
  // Under the engine set's run dir: removed even if this process is killed.
  const workDir = opts.engines.tempDir(`check-${lab.id}`);
  try {
    const { claims, error } = await checkImplementation(
      lab,
      { seed: opts.seed, scale: opts.scale, engine, engines: opts.engines, workDir, signal: opts.signal ?? new AbortController().signal, out: opts.out },
      impl,
    );
    return { claims, error, passed: !error && claimsHold(claims) };
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

/** The verdict: each claim ✔/✘ with its evidence, the nudge under each failed one, the summary line last. */
export function printOutcome(out: Reporter, lab: AnyLab, outcome: CheckOutcome, hintsUsed: number): void {
  const nudges = lab.exercise?.nudges ?? {};
  const checked = outcome.claims.filter((c) => !c.skipped);
  const held = checked.filter((c) => c.passed).length;
  const width = Math.max(...outcome.claims.map((c) => c.title.length));
  out.line();
  if (outcome.error) {
    out.line(`  Your implementation threw: ${outcome.error}`);
    if (/todo|not implemented/i.test(outcome.error)) out.line('  (the untouched stub throws until you implement it)');
    out.line();
  }
  out.line(`  Claims (${claimsTally(outcome.claims)}):`);
  // One nudge, under the first failing claim (the one to start with), when its counterexample is
  // there to read beside it — not one per claim: a stub fails them all, for one reason.
  const first = checked.find((c) => !c.passed);
  for (const c of outcome.claims) {
    const title = c.title.padEnd(width);
    if (c.skipped) {
      out.line(`  – ${title}  ${c.notJudged ? `not judged: ${c.notJudged}` : 'benchmark claim, not checked on exercises'}`);
      continue;
    }
    out.claim(c.passed, title, outcome.error ? {} : c.evidence);
    if (c.passed) continue;
    if (c.counterexample && !outcome.error) out.note(`counterexample: ${c.counterexample}`);
    const nudge = nudges[c.id];
    if (c === first && nudge) out.note(`→ ${nudge}`);
  }
  out.line();
  const total = lab.exercise?.hints.length ?? 0;
  if (outcome.passed) {
    out.line(`  ✔ all ${checked.length} claims hold on your implementation. Compare with the reference: npm run check -- ${lab.id} --solution`);
  } else {
    const hint = hintsUsed < total ? `npm run check -- ${lab.id} --hint (${hintsUsed}/${total} hints used)` : `npm run check -- ${lab.id} --solution`;
    out.line(`  ✘ ${held}/${checked.length} claims hold${first ? ` — start with "${first.title}"` : ''}. Stuck? ${hint}`);
  }
}

function terminalWidth(): number {
  const env = Number(process.env.COLUMNS);
  return process.stdout.columns ?? (Number.isFinite(env) && env > 0 ? env : 160);
}

async function main(argv: string[]): Promise<number> {
  const args = parseCheckArgs(argv);
  if (args.help) {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  const { lab, exercise } = labWithExercise(args.lab, 'check');
  const paths = exercisePaths(lab);
  const say = (s = '') => process.stdout.write(s + '\n');

  if (args.hint) {
    const { shown, total } = revealHint(exercise, paths);
    if (total === 0) {
      say(`lab ${lab.id} has no hints; try: npm run check -- ${lab.id} --solution`);
      return 0;
    }
    say();
    // Tied to where the learner is: the nudge of the claim the last check failed first.
    const last = readLastCheck(paths);
    const failing = last?.failing.map((id) => lab.claims.find((c) => c.id === id)).find((c) => c && exercise.nudges[c.id]);
    if (last && !last.passed && failing) say(`  Your last check (${last.tally}) failed first on "${failing.title}": ${exercise.nudges[failing.id]}`);
    else if (last?.error) say(`  Your last check: the implementation threw (${last.error}).`);
    if (last && !last.passed) say();
    shown.forEach((h, i) => say(`  Hint ${i + 1}/${total}${i === shown.length - 1 ? ' (new)' : ''}: ${h}`));
    say();
    say(shown.length < total ? `  Another hint: npm run check -- ${lab.id} --hint` : `  That was the last hint. The reference: npm run check -- ${lab.id} --solution`);
    return 0;
  }

  if (!existsSync(paths.file)) {
    throw new UsageError(`no exercise at ${relativeToCwd(paths.file)} yet — create it with: npm run exercise -- ${lab.id}`);
  }

  if (args.solution) {
    const solutionPath = resolve(REPO_ROOT, exercise.solution);
    process.stdout.write(
      sideBySide(
        { title: `yours: ${relativeToCwd(paths.file)}`, text: readFileSync(paths.file, 'utf8') },
        { title: `reference: ${exercise.solution}`, text: readFileSync(solutionPath, 'utf8') },
        terminalWidth(),
      ),
    );
    return 0;
  }

  const out = new Reporter(process.stdout);
  const engines = new Engines({ mode: args.provision, log: (m) => out.note(m) });
  const signal = stopOnInterrupt(engines);
  const engine = resolveEngine(lab, args.engine);
  const scale = lab.checkScale ? lab.checkScale(args.scale) : args.scale;
  /** One check of the file as it is now; remembers the verdict for --hint and `exercise -- list`. */
  const checkOnce = async (version: number): Promise<boolean> => {
    const impl = await loadLearnerImpl(lab, paths.file, version);
    out.heading(`Checking ${relativeToCwd(paths.file)}  [${lab.id} · seed ${args.seed} · scale ${scale} · ${engine}]`);
    const outcome = await checkExercise(lab, impl, { seed: args.seed, scale: args.scale, engine, engines, out, signal });
    printOutcome(out, lab, outcome, hintsRevealed(paths));
    const judged = outcome.claims.filter((c) => !c.skipped);
    writeLastCheck(paths, {
      at: new Date().toISOString(),
      passed: outcome.passed,
      tally: `${judged.filter((c) => c.passed).length}/${judged.length}`,
      failing: outcome.error ? [] : judged.filter((c) => !c.passed).map((c) => c.id),
      ...(outcome.error ? { error: outcome.error } : {}),
    });
    return outcome.passed;
  };
  try {
    if (!args.watch) return (await checkOnce(0)) ? 0 : 1;
    // --watch: the engines stay up between checks (a re-check takes seconds); a file that does not
    // load is reported and waited on like a failing one.
    for (let version = 1; ; version++) {
      await checkOnce(version).catch((err) => {
        if (!(err instanceof LabError)) throw err;
        out.line(`  ${errorLine(err)}`);
      });
      out.line(`  watching ${relativeToCwd(paths.file)} — save it to check again, Ctrl-C to stop`);
      await changed(paths.file, signal);
    }
  } finally {
    await engines.stopAll();
  }
}

/** Resolves at the next change of `file` (saves come in bursts: waits until it is quiet for 150 ms). */
function changed(file: string, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    // The directory, not the file: editors that save by rename replace the file's inode.
    const w = watch(dirname(file), (_ev, name) => {
      if (name !== basename(file)) return;
      clearTimeout(timer);
      timer = setTimeout(() => {
        w.close();
        resolve();
      }, 150);
    });
    signal.addEventListener('abort', () => w.close(), { once: true });
  });
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runCommand(() => main(process.argv.slice(2)));
}
