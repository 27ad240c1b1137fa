/**
 * The parent side of the crash test: starts `compact-main.ts` as a child process (on the shared
 * child-process module, pipelines/engines/child.ts), hands it the job, waits until it has reached
 * the chosen checkpoint (files written, nothing committed yet), and SIGKILLs it.
 *
 * `startCompactorProcess` boots the child early: Node, the loader and DuckDB load while the caller
 * does other work, and the child idles until `run` sends the job.
 */
import { bootChild, type ChildMessage } from '../engines/child.ts';
import type { CheckpointEvent, CompactOptions, CompactResult, CompactorSource } from './compact.ts';
import type { CompactJob } from './compact-main.ts';

const COMPACT_MAIN = new URL('./compact-main.ts', import.meta.url).href;

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
  /** Ends the child: SIGKILL if its job is running, a clean exit if it never got one. */
  kill(): Promise<void>;
}

/** Boots a compactor process for `source` now; `onStop` receives its kill (e.g. `engines.onStop`). */
export function startCompactorProcess(source: CompactorSource, opts: { onStop?: (kill: () => Promise<void>) => void } = {}): CompactorProcess {
  const child = bootChild(COMPACT_MAIN);
  opts.onStop?.(() => child.end());
  let started = false;
  return {
    pid: child.pid,
    kill: () => child.end(),
    async run(tableDir, options, run = {}) {
      if (started) throw new Error('a compactor process runs one job');
      started = true;
      const out: ChildRun = { killed: false, pid: child.pid, exit: { code: null, signal: null }, checkpoints: [] };
      const job: CompactJob = { module: source.module, exportName: source.exportName, tableDir, options, crashAtCheckpoint: run.crashAtCheckpoint };
      const proc = child.start('compactor', job);
      proc.onMessage((m: ChildMessage) => {
        if (m.ev === 'checkpoint') {
          const { ev: _e, ...cp } = m;
          out.checkpoints.push(cp as unknown as CheckpointEvent);
        } else if (m.ev === 'paused' && m.n === run.crashAtCheckpoint) {
          out.killed = true;
          proc.kill();
        } else if (m.ev === 'done') out.result = m.result as CompactResult;
        else if (m.ev === 'failed') out.error = String(m.error);
      });
      const timeoutMs = run.timeoutMs ?? 60_000;
      const timer = setTimeout(() => {
        out.error = `compactor process did not finish in ${timeoutMs / 1000} s`;
        proc.kill();
      }, timeoutMs);
      try {
        out.exit = await proc.exited;
      } finally {
        clearTimeout(timer);
      }
      if (!out.killed && out.exit.code !== 0 && !out.error) out.error = `compactor process exited with ${out.exit.signal ?? out.exit.code}: ${proc.stderrTail()}`;
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
