/**
 * Exercise mode: for every registered lab with an exercise (and a tiny fixture lab), the same
 * claim checks that guard the reference pass the reference and fail the untouched stub as
 * `npm run exercise` copies it; the `--solution` file loads like a learner's. Then the two commands
 * themselves, as a learner runs them.
 *
 * A registered lab's pitfalls are judged in the lab's own test file, by the claims that name each
 * defect (a stronger test than "fails some claim"); running every one again here doubled this
 * file's time (≈ 160 s, the biggest file of `npm test`). The fixture lab's two are judged here.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { inject } from 'vitest';
import type { AnyLab } from '../labs/contract.ts';
import { LABS } from '../labs/registry.ts';
import { REPO_ROOT, exercisePaths, loadLearnerImpl, relocateImports, scaffoldExercise, sideBySide } from '../scripts/exercise.ts';
import { checkExercise } from '../scripts/check.ts';
import { fixtureLab } from './exercise-fixture/lab.ts';
import { testEngines } from './helpers.ts';

const engines = testEngines();
// Inside the repo (git-ignored), so a copied stub resolves its imports and packages as a learner's does.
const root = join(REPO_ROOT, 'exercises', `.test-${process.pid}`);
afterAll(async () => {
  rmSync(root, { recursive: true, force: true });
  await engines.stopAll();
});

const SEED = 42;
const labs: AnyLab[] = [fixtureLab, ...LABS.filter((l) => l.exercise)];
const check = (lab: AnyLab, impl: unknown) => checkExercise(lab, impl, { seed: SEED, scale: 1, engines });
type Outcome = Awaited<ReturnType<typeof check>>;
const failedIds = (o: Outcome) => o.claims.filter((c) => !c.passed && !c.skipped).map((c) => c.id);

/**
 * Every lab's runs (reference, stub) one after another — a lab's runs share names on
 * the shared servers — while different labs overlap, two at a time: much of a run is waiting on
 * Kafka or Postgres, and the file stays well inside its time budget.
 */
interface LabRuns {
  reference: Outcome;
  stub: Outcome | Error;
  pitfalls: Map<string, Outcome>;
}
const runs = new Map<string, Promise<LabRuns>>();
async function runAll(lab: AnyLab): Promise<LabRuns> {
  const reference = await check(lab, lab.reference);
  let stub: Outcome | Error;
  try {
    const { paths } = scaffoldExercise(lab, root);
    stub = await check(lab, await loadLearnerImpl(lab, paths.file));
  } catch (err) {
    stub = err as Error;
  }
  const pitfalls = new Map<string, Outcome>();
  if (lab === fixtureLab) for (const p of lab.pitfalls) pitfalls.set(p.name, await check(lab, p.impl));
  return { reference, stub, pitfalls };
}
beforeAll(() => {
  const queue = [...labs];
  const lane = async (): Promise<void> => {
    for (let lab = queue.shift(); lab; lab = queue.shift()) {
      const mine = runAll(lab);
      runs.set(lab.id, mine);
      await mine.catch(() => undefined);
    }
  };
  // Registered before any test awaits them; the lanes fill `runs` as they go.
  const started = Promise.all([lane(), lane()]);
  for (const lab of labs) if (!runs.has(lab.id)) runs.set(lab.id, started.then(() => runs.get(lab.id)!));
});

for (const lab of labs) {
  const ex = lab.exercise!;
  describe(`exercise ${lab.id}`, () => {
    it('the claim checks pass on the reference implementation', async () => {
      const o = (await runs.get(lab.id)!).reference;
      expect(o.error, o.error).toBeUndefined();
      expect(failedIds(o)).toEqual([]);
      expect(o.passed).toBe(true);
    });

    it('the --solution file loads through exercise.load, like a learner’s file', async () => {
      const impl = await loadLearnerImpl(lab, resolve(REPO_ROOT, ex.solution));
      expect(impl).toBeTruthy();
    });

    it('the untouched stub, as `npm run exercise` copies it, fails the claim checks', async () => {
      const o = (await runs.get(lab.id)!).stub;
      if (o instanceof Error) throw o;
      expect(o.passed).toBe(false);
      expect(failedIds(o).length).toBeGreaterThan(0);
      expect(scaffoldExercise(lab, root).created).toBe(false); // never overwrites the learner's work
    });

    for (const p of lab === fixtureLab ? lab.pitfalls : []) {
      it(`pitfall ${p.name} fails at least one claim check`, async () => {
        const o = (await runs.get(lab.id)!).pitfalls.get(p.name)!;
        expect(o.passed).toBe(false);
        expect(failedIds(o).length).toBeGreaterThan(0);
      });
    }

    it('has hints, and a nudge for every claim an exercise is judged on', () => {
      expect(ex.hints.length).toBeGreaterThan(0);
      const ids = lab.claims.map((c) => c.id);
      for (const id of Object.keys(ex.nudges)) expect(ids, `nudge for unknown claim ${id}`).toContain(id);
      for (const c of lab.claims.filter((c) => !c.benchmark)) expect(ex.nudges[c.id], `nudge for ${c.id}`).toBeTruthy();
      expect(existsSync(resolve(REPO_ROOT, ex.stub)), ex.stub).toBe(true);
      expect(existsSync(resolve(REPO_ROOT, ex.solution)), ex.solution).toBe(true);
    });
  });
}

describe('exercise helpers', () => {
  it('re-points relative imports of a copied stub', () => {
    const src = "import type { X } from '../../pipelines/a.ts';\nimport { y } from './y.ts';\nimport 'node:fs';\n";
    const out = relocateImports(src, '/r/labs/l/exercise', '/r/exercises/l');
    expect(out).toContain("from '../../labs/pipelines/a.ts'");
    expect(out).toContain("from '../../labs/l/exercise/y.ts'");
    expect(out).toContain("import 'node:fs'");
  });

  it('shows two files side by side, aligned on shared lines', () => {
    const s = sideBySide({ title: 'yours', text: 'a\nb\nc\n' }, { title: 'reference', text: 'a\nB\nc\nd\n' }, 160);
    const lines = s.split('\n');
    expect(lines[0]).toMatch(/^yours\s+│ reference/);
    expect(lines.find((l) => l.includes(' b '))).toMatch(/\| +2 B$/);
    expect(lines.find((l) => /> +4 d$/.test(l))).toBeTruthy();
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(160);
  });

  it('on a narrower terminal: one file after the other, long lines wrapped under themselves, the reference\'s differing lines marked +', () => {
    const long = 'x'.repeat(150);
    const s = sideBySide({ title: 'yours', text: `a\nb\n${long}\n` }, { title: 'reference', text: `a\nB\n${long}\n` }, 100);
    const lines = s.split('\n').filter(Boolean);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(100);
    expect(lines[0]).toMatch(/^── yours /);
    expect(lines).toContain('   2+ B');
    expect(lines).toContain('   2  b');
    expect(lines.filter((l) => l.startsWith('     ↪ ')).length).toBe(2); // the long line, once in each file
  });
});

// The two commands, as a learner runs them (the first registered lab with an exercise).
const cliLab = LABS.find((l) => l.exercise);
function run(script: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', script), ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { ...process.env, DE_LAB_EXERCISES_DIR: join(root, 'cli'), LAB_PROVISION: 'external', PG_URL: inject('PG_URL'), KAFKA_BROKERS: inject('KAFKA_BROKERS'), COLUMNS: '140', ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('npm run exercise / npm run check', () => {
  it('an unknown lab or a lab without an exercise is one clear line and a non-zero exit', () => {
    for (const [script, args] of [['exercise.ts', ['nope']], ['check.ts', ['nope']], ['check.ts', []], ['exercise.ts', ['smoke']]] as const) {
      const r = run(script, [...args]);
      expect(r.code, `${script} ${args.join(' ')}`).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toMatch(/^de-lab: (unknown lab "nope"|which lab\?|lab "smoke" has no exercise)/);
    }
  });

  it.skipIf(!cliLab)('a learner goes from stub (✘ with nudges) to solution (✔, exit 0); hints one at a time; solution side by side', () => {
    const lab = cliLab!;
    const env = { DE_LAB_EXERCISES_DIR: join(root, 'cli') };
    const missing = run('check.ts', [lab.id], env);
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/npm run exercise -- /);

    const created = run('exercise.ts', [lab.id], env);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/Created .*\.ts/);
    expect(run('exercise.ts', [lab.id], env).stdout).toMatch(/already there/);

    const red = run('check.ts', [lab.id], env);
    expect(red.code, red.stderr).toBe(1);
    expect(red.stdout).toContain('✘');
    // One nudge, for the claim to start with — not one per failing claim.
    const nudges = Object.values(lab.exercise!.nudges);
    expect(red.stdout).toContain(lab.exercise!.nudges[lab.claims[0]!.id]!);
    expect(nudges.filter((n) => red.stdout.includes(n))).toHaveLength(1);
    expect(red.stdout.trimEnd().split('\n').at(-1)).toMatch(/claims hold/);

    const h1 = run('check.ts', [lab.id, '--hint'], env);
    expect(h1.stdout).toContain(`Hint 1/${lab.exercise!.hints.length}`);
    expect(h1.stdout).toMatch(/Your last check: the implementation threw/); // the hint knows where the learner is
    if (lab.exercise!.hints.length > 1) expect(run('check.ts', [lab.id, '--hint'], env).stdout).toContain(`Hint 2/`);
    const paths = exercisePaths(lab, join(root, 'cli'));
    expect(Number(readFileSync(paths.hintsFile, 'utf8'))).toBe(Math.min(2, lab.exercise!.hints.length));

    const sol = run('check.ts', [lab.id, '--solution'], env);
    expect(sol.code).toBe(0);
    expect(sol.stdout.split('\n')[0]).toMatch(/^── yours: /); // COLUMNS=140: one after the other
    expect(run('check.ts', [lab.id, '--solution'], { ...env, COLUMNS: '200' }).stdout.split('\n')[0]).toMatch(/yours: .*│ reference: /);
    expect(run('exercise.ts', ['list'], env).stdout).toMatch(new RegExp(`${lab.id}\\s+✘ throws\\s+2/`));

    // The learner "implements" the stub: the reference source, imports re-pointed to their folder.
    const solutionPath = resolve(REPO_ROOT, lab.exercise!.solution);
    mkdirSync(paths.dir, { recursive: true });
    const mine = relocateImports(readFileSync(solutionPath, 'utf8'), dirname(solutionPath), paths.dir);
    writeFileSync(paths.file, mine);
    const green = run('check.ts', [lab.id], env);
    expect(green.code, green.stdout + green.stderr).toBe(0);
    expect(green.stdout).not.toContain('✘');
    expect(green.stdout.trimEnd().split('\n').at(-1)).toMatch(/✔ all \d+ claims hold/);
    expect(run('exercise.ts', ['list'], env).stdout).toMatch(new RegExp(`${lab.id}\\s+✔ done`));

    // reset: the learner's file is kept aside, the stub comes back, hints and verdict are forgotten.
    const reset = run('exercise.ts', ['reset', lab.id], env);
    expect(reset.code, reset.stderr).toBe(0);
    const kept = reset.stdout.match(/kept as (\S+)\./)![1]!;
    expect(readFileSync(resolve(REPO_ROOT, kept), 'utf8')).toBe(mine);
    expect(readFileSync(paths.file, 'utf8')).toContain(`Copied from ${lab.exercise!.stub}`);
    expect(existsSync(paths.hintsFile)).toBe(false);
    expect(run('exercise.ts', ['list'], env).stdout).toMatch(new RegExp(`${lab.id}\\s+started, not checked yet\\s+0/`));
  });

  it.skipIf(!cliLab)('check --watch checks again when the file is saved (the engines stay up), Ctrl-C ends it', async () => {
    const lab = cliLab!;
    const dir = join(root, 'watch');
    const env = { DE_LAB_EXERCISES_DIR: dir };
    expect(run('exercise.ts', [lab.id], env).code).toBe(0);
    const paths = exercisePaths(lab, dir);
    const child = spawn(process.execPath, ['--import', 'tsx', join(REPO_ROOT, 'scripts', 'check.ts'), lab.id, '--watch'], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env, LAB_PROVISION: 'external', PG_URL: inject('PG_URL'), KAFKA_BROKERS: inject('KAFKA_BROKERS') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    const until = async (re: RegExp, ms: number) => {
      for (const end = Date.now() + ms; !re.test(out); ) {
        if (Date.now() > end) throw new Error(`no ${re} in: ${out.slice(-600)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    try {
      await until(/watching/, 90_000);
      expect(out).toContain('✘');
      const solutionPath = resolve(REPO_ROOT, lab.exercise!.solution);
      writeFileSync(paths.file, relocateImports(readFileSync(solutionPath, 'utf8'), dirname(solutionPath), paths.dir));
      await until(/✔ all \d+ claims hold[\s\S]*watching/, 90_000);
      expect((out.match(/^Checking /gm) ?? []).length).toBe(2);
    } finally {
      child.kill('SIGINT');
      await new Promise((r) => child.once('exit', r));
    }
    expect(child.exitCode ?? 130).toBe(130);
  });
});
