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
  /** `--report`: write reports/index.html and one page per lab (`npm start` always does). */
  report: boolean;
  help: boolean;
}

export const USAGE = `usage: npm run lab -- list
       npm run lab -- <lab> [--seed N] [--scale X] [--engine ${TARGET_ENGINES.join('|')}] [--provision auto|containers|local|external] [--json] [--out DIR] [--step] [--report]
       npm start   (every lab, then a summary and reports/index.html)`;

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): CliArgs {
  const args: CliArgs = { command: '', seed: 42, scale: 1, provision: parseProvisionMode(env.LAB_PROVISION), json: false, step: false, report: false, help: false };
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
      case '--report':
        args.report = true;
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

