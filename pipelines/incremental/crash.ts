/**
 * The crash test's two ends: `extract-main.ts` runs one extraction in its own OS process (on the
 * shared child-process module, pipelines/engines/child.ts); the parent sends it the job, waits
 * until it reports the `data-written` checkpoint — the MERGE has run, the state has not been
 * saved — and SIGKILLs it there. No handler, no finally block, no ROLLBACK runs: the engine alone
 * decides what survived (DuckDB replays its WAL on open, PostgreSQL ends the dead session's
 * transaction).
 */
import { bootChild, waitForExit, type ChildMessage } from '../engines/child.ts';
import type { PortableTarget } from '../engines/portable.ts';
import type { ExtractOptions, ExtractorSource, ExtractRun } from './extract.ts';

export interface ExtractJob {
  source: ExtractorSource;
  sourceUrl: string;
  target: PortableTarget;
  options: Omit<ExtractOptions, 'checkpoint'>;
  /** Pause at this checkpoint and wait to be killed. */
  crashAt?: 'data-written';
}

export interface ExtractorProcessRun {
  /** true when we SIGKILLed it at the checkpoint. */
  killed: boolean;
  pid: number;
  exit: { code: number | null; signal: NodeJS.Signals | null };
  run?: ExtractRun;
  error?: string;
}

const EXTRACT_MAIN = new URL('./extract-main.ts', import.meta.url).href;

/** Boots an extractor process now (its boot overlaps the caller's work); `run` sends the one job it runs. */
export function bootExtractorProcess(onStop?: (kill: () => Promise<void>) => void): { pid: number; run(job: ExtractJob, timeoutMs?: number): Promise<ExtractorProcessRun> } {
  const child = bootChild(EXTRACT_MAIN);
  onStop?.(() => child.end());
  return {
    pid: child.pid,
    async run(job, timeoutMs = 60_000) {
      const out: ExtractorProcessRun = { killed: false, pid: child.pid, exit: { code: null, signal: null } };
      const proc = child.start('extractor', job);
      proc.onMessage((m: ChildMessage) => {
        if (m.ev === 'paused') {
          out.killed = true;
          proc.kill();
        } else if (m.ev === 'done') out.run = m.run as ExtractRun;
        else if (m.ev === 'failed') out.error = String(m.error);
      });
      const ended = await waitForExit(proc, { what: 'extractor process', timeoutMs, killedOnPurpose: () => out.killed });
      out.exit = ended.exit;
      out.error ??= ended.error;
      await child.end();
      return out;
    },
  };
}
