/**
 * de-lab command line.
 *
 *   npm run lab -- list
 *   npm run lab -- <id> [--seed N] [--scale X] [--engine NAME] [--provision MODE] [--json] [--out DIR] [--step] [--report]
 *   npm start            (= every lab at default scale, then a summary table and reports/index.html)
 */
import { createInterface } from 'node:readline';
import { LABS, findLab } from '../labs/registry.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter, formatValue } from '../labs/reporter.ts';
import { claimsHold, claimsTally, type LabReport } from '../labs/contract.ts';
import { Engines } from '../pipelines/engines/index.ts';
import { UsageError } from '../pipelines/errors.ts';
import { parseArgs, USAGE } from './cli-args.ts';
import { runCommand, stopOnInterrupt } from './run-command.ts';
import { writeReport } from './report/html.ts';

function waitForEnter(): (title: string) => Promise<void> {
  const rl = createInterface({ input: process.stdin });
  const lines: (() => void)[] = [];
  rl.on('line', () => lines.shift()?.());
  // The step prints its own numbered title once it starts: the prompt does not repeat it.
  return () =>
    new Promise((resolve) => {
      process.stderr.write('  ⏎  Enter for the next step ');
      lines.push(() => resolve());
    });
}


async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  if (args.help || args.command === 'help') {
    process.stdout.write(USAGE + '\n');
    return 0;
  }
  if (args.command === 'list') {
    const out = new Reporter(process.stdout);
    // `--engine` picks where the lab's results land; the servers it starts besides are its `needs`.
    out.table(
      LABS.map((l) => ({
        lab: l.id,
        title: l.title,
        '--engine': l.engines.join('|'),
        'also runs': l.needs.length ? l.needs.join(', ') : '–',
        claims: l.claims.length,
        pitfalls: l.pitfalls.length,
      })),
      50,
    );
    return 0;
  }
  const labs = args.command === 'all' ? LABS : [findLab(args.command)];
  if (!labs[0]) throw new UsageError(`unknown lab "${args.command}" (known: ${LABS.map((l) => l.id).join(', ')})`);

  const out = new Reporter(args.json ? process.stderr : process.stdout);
  const engines = new Engines({ mode: args.provision, log: (m) => out.note(m) });
  const signal = stopOnInterrupt(engines);

  const reports: LabReport[] = [];
  try {
    const pause = args.step ? waitForEnter() : undefined;
    for (const lab of labs) {
      const report = await runLab(lab!, {
        seed: args.seed,
        scale: args.scale,
        engine: args.command === 'all' ? undefined : args.engine,
        provision: args.provision,
        out,
        engines,
        pause,
        outDir: args.out,
        signal,
        options: args.command === 'all' || args.capture === undefined ? undefined : { capture: args.capture },
      });
      reports.push(report);
    }
  } finally {
    await engines.stopAll();
  }
  if (args.command === 'all') {
    out.heading('Summary');
    out.table(
      reports.map((r) => ({
        lab: r.lab,
        claims: claimsTally(r.claims),
        pitfalls: `${r.pitfalls.filter((p) => p.rejectedBy.length > 0).length}/${r.pitfalls.length}`,
        seconds: Number(formatValue(r.durationMs / 1000)),
      })),
      50,
    );
  }
  if (args.report || args.command === 'all') {
    const index = writeReport('reports', reports);
    out.line(`  Report: ${index}`);
  }
  if (args.json) process.stdout.write(JSON.stringify(args.command === 'all' ? reports : reports[0]) + '\n');
  const ok = reports.every((r) => claimsHold(r.claims));
  return ok ? 0 : 1;
}

runCommand(() => main(process.argv.slice(2)));
