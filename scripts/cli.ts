/**
 * de-lab command line.
 *
 *   npm run lab -- list
 *   npm run lab -- <id> [--seed N] [--scale X] [--engine NAME] [--provision MODE] [--json] [--out DIR] [--step]
 *   npm start            (= every lab at default scale, then a summary table)
 */
import { createInterface } from 'node:readline';
import { LABS, findLab } from '../labs/registry.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter, formatValue } from '../labs/reporter.ts';
import type { LabReport } from '../labs/contract.ts';
import { Engines } from '../pipelines/engines/index.ts';
import { parseProvisionMode, type ProvisionMode } from '../pipelines/engines/provision-mode.ts';
import { TARGET_ENGINES, type TargetEngineName } from '../pipelines/engines/types.ts';
import { InterruptedError, LabError, UsageError, errorLine } from '../pipelines/errors.ts';

export interface CliArgs {
  command: string;
  seed: number;
  scale: number;
  engine?: TargetEngineName;
  provision: ProvisionMode;
  json: boolean;
  out?: string;
  step: boolean;
  help: boolean;
}

const USAGE = `usage: npm run lab -- list
       npm run lab -- <lab> [--seed N] [--scale X] [--engine ${TARGET_ENGINES.join('|')}] [--provision auto|containers|local|external] [--json] [--out DIR] [--step]
       npm start   (every lab, then a summary)`;

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliArgs {
  const args: CliArgs = { command: '', seed: 42, scale: 1, provision: parseProvisionMode(env.LAB_PROVISION), json: false, step: false, help: false };
  const positional: string[] = [];
  const valueOf = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (!raw.startsWith('--')) {
      positional.push(raw);
      continue;
    }
    const [flag, inline] = raw.includes('=') ? [raw.slice(0, raw.indexOf('=')), raw.slice(raw.indexOf('=') + 1)] : [raw, undefined];
    const take = () => (inline !== undefined ? inline : valueOf(i++, flag));
    switch (flag) {
      case '--seed': {
        const v = take();
        if (!/^\d+$/.test(v) || Number(v) > 2 ** 32 - 1) throw new UsageError(`--seed must be a whole number from 0 to 4294967295, got "${v}"`);
        args.seed = Number(v);
        break;
      }
      case '--scale': {
        const v = take();
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0 || n > 1000) throw new UsageError(`--scale must be a number above 0 and at most 1000, got "${v}"`);
        args.scale = n;
        break;
      }
      case '--engine': {
        const v = take();
        if (!TARGET_ENGINES.includes(v as TargetEngineName)) throw new UsageError(`--engine must be one of ${TARGET_ENGINES.join('|')}, got "${v}"`);
        args.engine = v as TargetEngineName;
        break;
      }
      case '--provision':
        args.provision = parseProvisionMode(take());
        break;
      case '--out':
        args.out = take();
        break;
      case '--json':
        args.json = true;
        break;
      case '--step':
        args.step = true;
        break;
      case '--help':
        args.help = true;
        break;
      default:
        throw new UsageError(`unknown flag ${flag} (see --help)`);
    }
  }
  if (positional.length > 1) throw new UsageError(`one lab at a time, got: ${positional.join(' ')}`);
  args.command = positional[0] ?? (args.help ? 'help' : '');
  if (!args.command) throw new UsageError('which lab? `npm run lab -- list` shows them');
  return args;
}

function waitForEnter(): (title: string) => Promise<void> {
  const rl = createInterface({ input: process.stdin });
  const lines: (() => void)[] = [];
  rl.on('line', () => lines.shift()?.());
  return (title) =>
    new Promise((resolve) => {
      process.stderr.write(`  ⏎  next: ${title}`);
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
    out.table(LABS.map((l) => ({ lab: l.id, title: l.title, engines: l.engines.join('|'), claims: l.claims.length, pitfalls: l.pitfalls.length })), 50);
    return 0;
  }
  const labs = args.command === 'all' ? LABS : [findLab(args.command)];
  if (!labs[0]) throw new UsageError(`unknown lab "${args.command}" (known: ${LABS.map((l) => l.id).join(', ')})`);

  const out = new Reporter(args.json ? process.stderr : process.stdout);
  const engines = new Engines({ mode: args.provision, log: (m) => out.note(m) });
  const abort = new AbortController();
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    abort.abort();
    process.stderr.write(`\n${sig}: stopping engines…\n`);
    // Stop what we started, then leave: a step still running cannot be trusted to finish.
    void engines.stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

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
        signal: abort.signal,
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
        claims: `${r.claims.filter((c) => c.passed).length}/${r.claims.length}`,
        pitfalls: `${r.pitfalls.filter((p) => p.rejectedBy.length > 0).length}/${r.pitfalls.length}`,
        seconds: Number(formatValue(r.durationMs / 1000)),
      })),
      50,
    );
  }
  if (args.json) process.stdout.write(JSON.stringify(args.command === 'all' ? reports : reports[0]) + '\n');
  const ok = reports.every((r) => r.claims.every((c) => c.passed));
  return ok ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof InterruptedError) process.exit(130);
    if (err instanceof LabError) {
      process.stderr.write(`de-lab: ${errorLine(err)}\n`);
      if (err instanceof UsageError) process.stderr.write(USAGE.split('\n')[1]!.trim() + '\n');
      process.exit(err.exitCode);
    }
    process.stderr.write(`de-lab: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
