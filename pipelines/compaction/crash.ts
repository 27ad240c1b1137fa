/**
 * The parent side of the crash test: starts `compact-main.ts` as a child process, hands it the
 * job, waits until it has reached the chosen checkpoint (files written, nothing committed yet),
 * and SIGKILLs it.
 *
 * `startCompactorProcess` spawns the child early: it boots (Node, the loader, the compactor's
 * module, DuckDB) while the caller does other work, and idles until `run` sends the job.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CheckpointEvent, CompactOptions, CompactResult, CompactorSource } from './compact.ts';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const COMPACT_MAIN = fileURLToPath(new URL('./compact-main.ts', import.meta.url));

export interface ChildRun {
  /** true when we SIGKILLed it at the checkpoint. */
  killed: boolean;
  pid: number | undefined;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  checkpoints: CheckpointEvent[];
  result?: CompactResult;
  error?: string;
}

export interface CompactorProcess {
  pid: number | undefined;
  /** Sends the job and resolves when the child has exited (killed at the checkpoint, finished, or failed). Once per process. */
  run(tableDir: string, options: Omit<CompactOptions, 'checkpoint' | 'rewrite'>, run?: { crashAtCheckpoint?: number; timeoutMs?: number }): Promise<ChildRun>;
  /** SIGKILLs the child if it is still alive (a run that never happened). */
  kill(): Promise<void>;
}

/** Spawns a compactor process for `source`; `onStop` receives its kill (e.g. `engines.onStop`). */
export function startCompactorProcess(source: CompactorSource, opts: { onStop?: (kill: () => Promise<void>) => void } = {}): CompactorProcess {
  const cfg = { module: source.module, exportName: source.exportName };
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', COMPACT_MAIN, JSON.stringify(cfg)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) => child.once('exit', (code, signal) => res({ code, signal })));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
  opts.onStop?.(kill);
  child.stdin!.on('error', () => undefined);
  const out: ChildRun = { killed: false, pid: child.pid, exit: { code: null, signal: null }, checkpoints: [] };
  let crashAt: number | undefined;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let msg: { event: string } & Record<string, unknown>;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      if (msg.event === 'checkpoint') {
        const { event: _e, ...cp } = msg;
        out.checkpoints.push(cp as unknown as CheckpointEvent);
      } else if (msg.event === 'paused' && msg.n === crashAt) {
        out.killed = true;
        child.kill('SIGKILL');
      } else if (msg.event === 'done') out.result = msg.result as CompactResult;
      else if (msg.event === 'error') out.error = String(msg.message);
    }
  });
  let started = false;
  return {
    pid: child.pid,
    kill,
    async run(tableDir, options, run = {}) {
      if (started) throw new Error('a compactor process runs one job');
      started = true;
      crashAt = run.crashAtCheckpoint;
      child.stdin!.end(JSON.stringify({ tableDir, options, crashAtCheckpoint: run.crashAtCheckpoint }) + '\n');
      const timeoutMs = run.timeoutMs ?? 60_000;
      const timer = setTimeout(() => {
        out.error = `compactor process did not finish in ${timeoutMs / 1000} s`;
        child.kill('SIGKILL');
      }, timeoutMs);
      try {
        out.exit = await exited;
      } finally {
        clearTimeout(timer);
      }
      if (!out.killed && out.exit.code !== 0 && !out.error) out.error = `compactor process exited with ${out.exit.signal ?? out.exit.code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`;
      return out;
    },
  };
}

/** Starts a compactor process and runs one job in it (see `startCompactorProcess`). */
export async function runCompactorProcess(
  source: CompactorSource,
  tableDir: string,
  options: Omit<CompactOptions, 'checkpoint' | 'rewrite'>,
  run: { crashAtCheckpoint?: number; timeoutMs?: number; onStop?: (kill: () => Promise<void>) => void },
): Promise<ChildRun> {
  return startCompactorProcess(source, { onStop: run.onStop }).run(tableDir, options, run);
}
