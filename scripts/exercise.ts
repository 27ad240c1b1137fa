/**
 * Exercise mode (rustlings-style): the learner edits one file, the lab's own claim checks judge it.
 *
 *   npm run exercise -- <lab>      creates exercises/<lab>/<lab>.ts from the lab's stub (never overwrites)
 *   npm run check -- <lab>         runs the claim checks on it (scripts/check.ts)
 *
 * This module also holds what both commands share: where an exercise lives, how the stub is
 * copied (relative imports re-pointed so the copy still compiles), the hint counter, the learner
 * module loader and the side-by-side view of `--solution`.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { runCommand } from './run-command.ts';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { AnyLab, Exercise } from '../labs/contract.ts';
import { LABS, findLab } from '../labs/registry.ts';
import { LabError, UsageError, errorLine } from '../pipelines/errors.ts';
import { Reporter } from '../labs/reporter.ts';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Where exercises live: `exercises/` in the repo (tests point DE_LAB_EXERCISES_DIR elsewhere). */
export function exercisesRoot(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.DE_LAB_EXERCISES_DIR ?? join(REPO_ROOT, 'exercises'));
}

export interface ExercisePaths {
  dir: string;
  /** The one file the learner edits. */
  file: string;
  /** How many hints were revealed so far. */
  hintsFile: string;
  /** The last check's verdict (`LastCheck`), for `--hint`, `exercise -- list`. */
  lastCheckFile: string;
}

export function exercisePaths(lab: AnyLab, root = exercisesRoot()): ExercisePaths {
  const dir = join(root, lab.id);
  return { dir, file: join(dir, `${lab.id}.ts`), hintsFile: join(dir, '.hints'), lastCheckFile: join(dir, '.last-check.json') };
}

/** What `npm run check` remembers of its last run on an exercise. */
export interface LastCheck {
  at: string;
  passed: boolean;
  /** Claims held over claims judged, e.g. "5/7". */
  tally: string;
  /** Ids of the claims that failed, in claim order (empty when the implementation threw). */
  failing: string[];
  error?: string;
}

export function readLastCheck(paths: ExercisePaths): LastCheck | null {
  try {
    return JSON.parse(readFileSync(paths.lastCheckFile, 'utf8')) as LastCheck;
  } catch {
    return null;
  }
}

export function writeLastCheck(paths: ExercisePaths, check: LastCheck): void {
  mkdirSync(paths.dir, { recursive: true });
  const tmp = `${paths.lastCheckFile}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(check) + '\n');
  renameSync(tmp, paths.lastCheckFile);
}

/** One row per lab with an exercise: not started, in progress (the last check's tally), done. */
export function exerciseProgress(root = exercisesRoot()): { lab: string; status: string; hints: string; file: string }[] {
  return LABS.filter((l) => l.exercise).map((l) => {
    const paths = exercisePaths(l, root);
    const last = readLastCheck(paths);
    const status = !existsSync(paths.file) ? 'not started' : !last ? 'started, not checked yet' : last.passed ? `✔ done (${last.tally})` : last.error ? '✘ throws' : `✘ ${last.tally} claims hold`;
    return { lab: l.id, status, hints: `${hintsRevealed(paths)}/${l.exercise!.hints.length}`, file: existsSync(paths.file) ? relativeToCwd(paths.file) : `npm run exercise -- ${l.id}` };
  });
}

/**
 * Starts an exercise over: the learner's file is kept aside as `<lab>.ts.bak-<time>` (never
 * deleted), hints and the last verdict are forgotten, and the stub is copied again.
 */
export function resetExercise(lab: AnyLab, root = exercisesRoot()): { paths: ExercisePaths; backup: string | null } {
  const paths = exercisePaths(lab, root);
  let backup: string | null = null;
  if (existsSync(paths.file)) {
    backup = `${paths.file}.bak-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    renameSync(paths.file, backup);
  }
  rmSync(paths.hintsFile, { force: true });
  rmSync(paths.lastCheckFile, { force: true });
  scaffoldExercise(lab, root);
  return { paths, backup };
}

/** A lab id from the command line → the lab and its exercise, or one clear line. */
export function labWithExercise(id: string | undefined, command: string): { lab: AnyLab; exercise: Exercise<unknown> } {
  const withExercise = LABS.filter((l) => l.exercise).map((l) => l.id);
  const known = withExercise.length ? withExercise.join(', ') : 'none yet';
  if (!id) throw new UsageError(`which lab? usage: npm run ${command} -- <lab>  (labs with an exercise: ${known})`);
  const lab = findLab(id);
  if (!lab) throw new UsageError(`unknown lab "${id}" (labs with an exercise: ${known})`);
  if (!lab.exercise) throw new UsageError(`lab "${id}" has no exercise yet (labs with an exercise: ${known})`);
  return { lab, exercise: lab.exercise };
}

/**
 * The stub's text with its relative imports re-pointed from the stub's folder to `destDir`, so
 * `import type { … } from '../../../pipelines/…'` still resolves in the copy.
 */
export function relocateImports(source: string, fromDir: string, destDir: string): string {
  return source.replace(/(\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]*)\2/g, (_m, lead: string, q: string, spec: string) => {
    let rel = relative(destDir, resolve(fromDir, spec)).split('\\').join('/');
    if (!rel.startsWith('.')) rel = `./${rel}`;
    return `${lead}${q}${rel}${q}`;
  });
}

/** Writes `text` to `file` atomically, and only if `file` does not exist yet. */
function writeNew(file: string, text: string): boolean {
  if (existsSync(file)) return false;
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  if (existsSync(file)) return false;
  renameSync(tmp, file);
  return true;
}

/** Creates `exercises/<lab>/<lab>.ts` from the stub unless it is there already (the learner's work is never overwritten). */
export function scaffoldExercise(lab: AnyLab, root = exercisesRoot()): { paths: ExercisePaths; created: boolean } {
  const exercise = lab.exercise;
  if (!exercise) throw new UsageError(`lab "${lab.id}" has no exercise`);
  const paths = exercisePaths(lab, root);
  if (existsSync(paths.file)) return { paths, created: false };
  const stubPath = resolve(REPO_ROOT, exercise.stub);
  if (!existsSync(stubPath)) throw new LabError(`lab ${lab.id}: exercise stub ${exercise.stub} is missing`);
  mkdirSync(paths.dir, { recursive: true });
  const header =
    `// Exercise: ${lab.title}\n` +
    `// Copied from ${exercise.stub}. Edit this file, then run: npm run check -- ${lab.id}\n` +
    `// Stuck? npm run check -- ${lab.id} --hint   ·   Compare with the reference: npm run check -- ${lab.id} --solution\n\n`;
  const text = header + relocateImports(readFileSync(stubPath, 'utf8'), dirname(stubPath), paths.dir);
  return { paths, created: writeNew(paths.file, text) };
}

/**
 * The learner's file as `exercise.load` expects it; one clear line when it does not load.
 * `version` > 0 (`--watch`) imports the file as it is now: a copy beside it under a fresh name
 * (relative imports still resolve), removed once loaded — a module is evaluated once per URL, and
 * a `?v=` query does not get past tsx's loader.
 */
export async function loadLearnerImpl(lab: AnyLab, file: string, version = 0): Promise<unknown> {
  const exercise = lab.exercise!;
  let mod: Record<string, unknown>;
  const copy = version ? join(dirname(file), `.${basename(file, '.ts')}.check-${process.pid}-${version}.ts`) : null;
  try {
    if (copy) copyFileSync(file, copy);
    mod = (await import(pathToFileURL(copy ?? file).href)) as Record<string, unknown>;
  } catch (err) {
    // esbuild's first line is "Transform failed with 1 error:"; the useful part (file:line:col: message) follows.
    const lines = (err instanceof Error ? err.message : String(err)).split('\n').map((l) => l.trim()).filter(Boolean);
    const msg = (lines[0]?.endsWith(':') && lines[1] ? lines[1] : errorLine(err)).replaceAll(copy ?? file, relativeToCwd(file)).replaceAll(file, relativeToCwd(file));
    throw new LabError(`${relativeToCwd(file)} does not load: ${msg}`);
  } finally {
    if (copy) rmSync(copy, { force: true });
  }
  try {
    return exercise.load(mod);
  } catch (err) {
    throw new LabError(`${relativeToCwd(file)}: ${errorLine(err)} (keep the exports of the stub)`);
  }
}

export function relativeToCwd(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel.startsWith('..') ? file : rel;
}

/** Hints revealed so far (stored in exercises/<lab>/.hints). */
export function hintsRevealed(paths: ExercisePaths): number {
  if (!existsSync(paths.hintsFile)) return 0;
  const n = Number(readFileSync(paths.hintsFile, 'utf8').trim());
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** Reveals one more hint (up to all of them) and returns the ones shown so far. */
export function revealHint(exercise: Exercise<unknown>, paths: ExercisePaths): { shown: string[]; total: number } {
  const total = exercise.hints.length;
  const n = Math.min(total, hintsRevealed(paths) + 1);
  mkdirSync(paths.dir, { recursive: true });
  writeFileSync(paths.hintsFile, `${n}\n`);
  return { shown: exercise.hints.slice(0, n), total };
}

/**
 * Two files side by side, lines aligned on what they share (a longest-common-subsequence
 * diff), like `diff -y`: ` ` same, `|` changed, `<` only left, `>` only right. Long lines wrap.
 * Terminals under 153 columns get the two files one after the other instead (the reference's
 * lines that differ from yours marked `+`).
 */
export function sideBySide(left: { title: string; text: string }, right: { title: string; text: string }, width: number): string {
  const norm = (t: string) => t.replace(/\t/g, '  ').replace(/[ \t]+$/gm, '').replace(/\n$/, '').split('\n');
  const a = norm(left.text);
  const b = norm(right.text);
  // Side by side only when each file gets ≥ 70 columns; else one after the other, long lines
  // wrapped under themselves, the reference's lines that yours lacks or has otherwise marked '+'.
  if (width < 2 * (70 + 5) + 3) {
    const differs = new Set(alignLines(a, b).filter(([i, j]) => j !== null && (i === null || a[i] !== b[j])).map(([, j]) => j!));
    const body = width - 7;
    const block = (f: { title: string }, lines: string[], mark: (i: number) => string) => [
      `── ${f.title} ${'─'.repeat(Math.max(0, width - f.title.length - 4))}`,
      ...lines.flatMap((l, i) => {
        const parts = l.length <= body ? [l] : Array.from({ length: Math.ceil(l.length / body) }, (_, k) => l.slice(k * body, (k + 1) * body));
        return parts.map((p, k) => (k === 0 ? `${String(i + 1).padStart(4)}${mark(i)} ${p}` : `     ↪ ${p}`));
      }),
    ];
    return [...block(left, a, () => ' '), '', ...block(right, b, (j) => (differs.has(j) ? '+' : ' '))].join('\n') + '\n';
  }
  const rows = alignLines(a, b);
  const num = 4;
  const col = Math.floor((width - 2 * (num + 1) - 3) / 2);
  const wrap = (s: string): string[] => {
    if (s.length <= col) return [s];
    const parts: string[] = [];
    for (let i = 0; i < s.length; i += col) parts.push(s.slice(i, i + col));
    return parts;
  };
  const out: string[] = [];
  const title = (t: string) => (t.length > col + num + 1 ? '…' + t.slice(t.length - col - num) : t).padEnd(col + num + 1);
  out.push(`${title(left.title)} │ ${title(right.title)}`);
  out.push(`${'─'.repeat(col + num + 1)}─┼─${'─'.repeat(col + num + 1)}`);
  for (const [i, j] of rows) {
    const l = i === null ? [''] : wrap(a[i]!);
    const r = j === null ? [''] : wrap(b[j]!);
    const mark = i === null ? '>' : j === null ? '<' : a[i] === b[j] ? '│' : '|';
    for (let k = 0; k < Math.max(l.length, r.length); k++) {
      const ln = k === 0 && i !== null ? String(i + 1).padStart(num) : ' '.repeat(num);
      const rn = k === 0 && j !== null ? String(j + 1).padStart(num) : ' '.repeat(num);
      out.push(`${ln} ${(l[k] ?? '').padEnd(col)} ${k === 0 ? mark : '│'} ${rn} ${r[k] ?? ''}`.trimEnd());
    }
  }
  return out.join('\n') + '\n';
}

/** Pairs of line indexes (null = no partner); equal lines paired by LCS, the rest zipped between them. */
function alignLines(a: string[], b: string[]): [number | null, number | null][] {
  const n = a.length;
  const m = b.length;
  const key = (s: string) => s.trim();
  // LCS table; files here are a few hundred lines, so n*m stays small. Huge files: no alignment.
  if (n * m > 4_000_000) return Array.from({ length: Math.max(n, m) }, (_, k) => [k < n ? k : null, k < m ? k : null]);
  const L = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) L[i]![j] = key(a[i]!) === key(b[j]!) ? L[i + 1]![j + 1]! + 1 : Math.max(L[i + 1]![j]!, L[i]![j + 1]!);
  const rows: [number | null, number | null][] = [];
  let i = 0;
  let j = 0;
  const pendA: number[] = [];
  const pendB: number[] = [];
  const flush = () => {
    for (let k = 0; k < Math.max(pendA.length, pendB.length); k++) rows.push([pendA[k] ?? null, pendB[k] ?? null]);
    pendA.length = 0;
    pendB.length = 0;
  };
  while (i < n && j < m) {
    if (key(a[i]!) === key(b[j]!)) {
      flush();
      rows.push([i++, j++]);
    } else if (L[i + 1]![j]! >= L[i]![j + 1]!) pendA.push(i++);
    else pendB.push(j++);
  }
  while (i < n) pendA.push(i++);
  while (j < m) pendB.push(j++);
  flush();
  return rows;
}

const EXERCISE_USAGE = `usage: npm run exercise -- <lab>          creates exercises/<lab>/<lab>.ts (your work is never overwritten)
       npm run exercise -- list            every lab's exercise: not started, in progress, done
       npm run exercise -- reset <lab>     starts over: your file kept as <lab>.ts.bak-<time>, a fresh stub`;

async function main(argv: string[]): Promise<number> {
  const positional = argv.filter((a) => !a.startsWith('--'));
  const flags = argv.filter((a) => a.startsWith('--'));
  if (flags.includes('--help')) {
    process.stdout.write(EXERCISE_USAGE + '\n');
    return 0;
  }
  if (flags.length) throw new UsageError(`unknown flag ${flags[0]} (${EXERCISE_USAGE.split('\n')[0]!.replace(/ {2,}.*/, '')})`);
  const say = (s = '') => process.stdout.write(s + '\n');
  if (positional[0] === 'list') {
    if (positional.length > 1) throw new UsageError('list takes no lab');
    const out = new Reporter(process.stdout);
    out.line();
    out.table(exerciseProgress(), 50);
    out.line();
    return 0;
  }
  if (positional[0] === 'reset') {
    if (positional.length !== 2) throw new UsageError('usage: npm run exercise -- reset <lab>');
    const { lab } = labWithExercise(positional[1], 'exercise -- reset');
    const { paths, backup } = resetExercise(lab);
    say(backup ? `Your file is kept as ${relativeToCwd(backup)}.` : 'Nothing to keep: the exercise had not been started.');
    say(`Fresh stub: ${relativeToCwd(paths.file)} (hints and the last verdict forgotten). Check it: npm run check -- ${lab.id}`);
    return 0;
  }
  if (positional.length > 1) throw new UsageError(`one lab at a time, got: ${positional.join(' ')}`);
  const { lab, exercise } = labWithExercise(positional[0], 'exercise');
  const { paths, created } = scaffoldExercise(lab);
  const file = relativeToCwd(paths.file);
  say();
  say(created ? `Created ${file}` : `${file} is already there — your work is kept (start over: npm run exercise -- reset ${lab.id}).`);
  say();
  say(`  ${lab.title}`);
  say(`  Q: ${lab.question}`);
  say();
  say(`  1. Open ${file} and implement the TODOs (keep the exported names and types).`);
  say(`  2. Check it on real engines:    npm run check -- ${lab.id}      (--watch: again on every save)`);
  say(`     The same ${lab.claims.filter((c) => !c.benchmark).length} claim checks that guard the reference judge your code.`);
  say(`  3. Stuck? One hint at a time:    npm run check -- ${lab.id} --hint   (${exercise.hints.length} hints)`);
  say(`     Compare with the reference:   npm run check -- ${lab.id} --solution`);
  say();
  return 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  runCommand(() => main(process.argv.slice(2)));
}
