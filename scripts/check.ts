/**
 * Checks a learner's exercise with the lab's own claim checks, on real engines.
 *
 *   npm run check -- <lab> [--seed N] [--scale X] [--engine NAME] [--provision MODE]
 *   npm run check -- <lab> --hint        reveals the next hint (remembered in exercises/<lab>/.hints)
 *   npm run check -- <lab> --solution    the reference beside your file
 *
 * Exit code 0 iff every claim holds on the learner's implementation.
 */
import { existsSync, readFileSync } from 'node:fs';
import { rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, stopOnInterrupt } from './run-command.ts';
import { claimsHold, claimsTally, type AnyLab, type ClaimOutcome } from '../labs/contract.ts';
import { checkImplementation, resolveEngine } from '../labs/runner.ts';
import { Reporter, formatEvidence } from '../labs/reporter.ts';
import { Engines } from '../pipelines/engines/index.ts';
import type { ProvisionMode } from '../pipelines/engines/provision-mode.ts';
import type { TargetEngineName } from '../pipelines/engines/types.ts';
import { parseCommandLine } from './cli-args.ts';
import { UsageError } from '../pipelines/errors.ts';
import { REPO_ROOT, exercisePaths, hintsRevealed, labWithExercise, loadLearnerImpl, relativeToCwd, revealHint, sideBySide } from './exercise.ts';

export interface CheckArgs {
  lab?: string;
  seed: number;
  scale: number;
  engine?: TargetEngineName;
  provision: ProvisionMode;
  hint: boolean;
  solution: boolean;
  help: boolean;
}

const USAGE = 'usage: npm run check -- <lab> [--hint] [--solution] [--seed N] [--scale X] [--engine NAME] [--provision auto|containers|local|external]';

export function parseCheckArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CheckArgs {
  const p = parseCommandLine(argv, env, { booleans: ['hint', 'solution', 'help'] });
  return { lab: p.positional[0], ...p.run, hint: p.flags.has('hint'), solution: p.flags.has('solution'), help: p.flags.has('help') };
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
    if (nudge) out.note(`→ ${nudge}`);
  }
  out.line();
  const total = lab.exercise?.hints.length ?? 0;
  if (outcome.passed) {
    out.line(`  ✔ all ${checked.length} claims hold on your implementation. Compare with the reference: npm run check -- ${lab.id} --solution`);
  } else {
    const first = checked.find((c) => !c.passed);
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

  const impl = await loadLearnerImpl(lab, paths.file);
  const out = new Reporter(process.stdout);
  const engines = new Engines({ mode: args.provision, log: (m) => out.note(m) });
  const signal = stopOnInterrupt(engines);
  try {
    const engine = resolveEngine(lab, args.engine);
    const scale = lab.checkScale ? lab.checkScale(args.scale) : args.scale;
    out.heading(`Checking ${relativeToCwd(paths.file)}  [${lab.id} · seed ${args.seed} · scale ${scale} · ${engine}]`);
    const outcome = await checkExercise(lab, impl, { seed: args.seed, scale: args.scale, engine, engines, out, signal });
    printOutcome(out, lab, outcome, hintsRevealed(paths));
    return outcome.passed ? 0 : 1;
  } finally {
    await engines.stopAll();
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runCommand(() => main(process.argv.slice(2)));
}
