import { parseProvisionMode, type ProvisionMode } from '../pipelines/engines/provision-mode.ts';
import { TARGET_ENGINES, type TargetEngineName } from '../pipelines/engines/types.ts';
import { UsageError } from '../pipelines/errors.ts';

/** Command-line parsing for scripts/cli.ts, kept apart so tests can call it without running a lab. */
export interface CliArgs {
  command: string;
  seed: number;
  scale: number;
  engine?: TargetEngineName;
  provision: ProvisionMode;
  json: boolean;
  out?: string;
  step: boolean;
  /** `--capture NAME` (cdc): which capture feeds the lab's topics. */
  capture?: string;
  /** `--report`: write reports/index.html and one page per lab (`npm start` always does). */
  report: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run lab -- list
       npm run lab -- <lab> [flags]
       npm start   (every lab, then a summary and reports/index.html)

flags:
  --seed N           seed of every fixture: same seed, same data, same claims and evidence (default 42)
  --scale X          data size multiplier; each lab's README says what 1 means (default 1)
  --engine NAME      where the lab's results land, for labs that run on several: ${TARGET_ENGINES.join(', ')} (default: the lab's first)
  --capture NAME     cdc only: ours (default) or debezium — the lab's capture, claims and crash tests on
                     real Debezium 3.6.1, plus cdc_capture_over_debezium (ours vs Debezium on one backlog; ~+25 s)
  --provision MODE   how engines are obtained: auto (env URLs, else Docker, else local), containers, local, external (env LAB_PROVISION)
  --json             one JSON object on stdout (the report); every log line goes to stderr
  --out DIR          write the lab's final tables to DIR/<lab>.duckdb and its report to DIR/<lab>.json
  --step             wait for Enter before each step (live demos)
  --report           write the HTML report: reports/index.html and reports/<lab>.html
  --help             this text

exit codes: 0 every claim judged passed · 1 a claim failed · 2 bad command line · 3 an engine cannot be had · 130 interrupted`;

/** The flags every command that runs labs shares (`lab`, `check`). */
export interface RunFlags {
  seed: number;
  scale: number;
  engine?: TargetEngineName;
  provision: ProvisionMode;
}

export interface ParsedCommandLine {
  positional: string[];
  run: RunFlags;
  /** Boolean flags present, by name without dashes. */
  flags: Set<string>;
  /** Value flags present (other than the shared ones), by name without dashes. */
  values: Map<string, string>;
}

/**
 * Parses `--seed/--scale/--engine/--provision` plus a command's own boolean and value flags
 * (`--flag value` or `--flag=value`). Any other flag, or a missing/bad value, is a UsageError.
 */
export function parseCommandLine(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  own: { booleans?: readonly string[]; values?: readonly string[] } = {},
): ParsedCommandLine {
  const parsed: ParsedCommandLine = {
    positional: [],
    run: { seed: 42, scale: 1, provision: parseProvisionMode(env.LAB_PROVISION) },
    flags: new Set(),
    values: new Map(),
  };
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    if (!raw.startsWith('--')) {
      parsed.positional.push(raw);
      continue;
    }
    const eq = raw.indexOf('=');
    const flag = eq > 0 ? raw.slice(0, eq) : raw;
    const name = flag.slice(2);
    const take = (): string => {
      if (eq > 0) return raw.slice(eq + 1);
      const v = argv[i + 1];
      if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value`);
      i++;
      return v;
    };
    switch (flag) {
      case '--seed': {
        const v = take();
        if (!/^\d+$/.test(v) || Number(v) > 2 ** 32 - 1) throw new UsageError(`--seed must be a whole number from 0 to 4294967295, got "${v}"`);
        parsed.run.seed = Number(v);
        break;
      }
      case '--scale': {
        const v = take();
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0 || n > 1000) throw new UsageError(`--scale must be a number above 0 and at most 1000, got "${v}"`);
        parsed.run.scale = n;
        break;
      }
      case '--engine': {
        const v = take();
        if (!TARGET_ENGINES.includes(v as TargetEngineName)) throw new UsageError(`--engine must be one of ${TARGET_ENGINES.join('|')}, got "${v}"`);
        parsed.run.engine = v as TargetEngineName;
        break;
      }
      case '--provision':
        parsed.run.provision = parseProvisionMode(take());
        break;
      default:
        if (own.booleans?.includes(name) && eq < 0) parsed.flags.add(name);
        else if (own.values?.includes(name)) parsed.values.set(name, take());
        else throw new UsageError(`unknown flag ${flag} (see --help)`);
    }
  }
  if (parsed.positional.length > 1) throw new UsageError(`one lab at a time, got: ${parsed.positional.join(' ')}`);
  return parsed;
}

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliArgs {
  const p = parseCommandLine(argv, env, { booleans: ['json', 'step', 'report', 'help'], values: ['out', 'capture'] });
  const args: CliArgs = {
    command: p.positional[0] ?? (p.flags.has('help') ? 'help' : ''),
    ...p.run,
    json: p.flags.has('json'),
    out: p.values.get('out'),
    capture: p.values.get('capture'),
    step: p.flags.has('step'),
    report: p.flags.has('report'),
    help: p.flags.has('help'),
  };
  if (!args.command) throw new UsageError('which lab? `npm run lab -- list` shows them');
  return args;
}
