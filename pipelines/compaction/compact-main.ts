/**
 * A compactor as its own OS process, so the crash test can SIGKILL a real one mid-run:
 *
 *   node --import tsx pipelines/compaction/compact-main.ts
 *   job (stdin, see pipelines/engines/child.ts): { module (file URL), exportName, tableDir,
 *        options: { targetBytes, smallFileBytes?, sortBy? }, crashAtCheckpoint? }
 *
 * It boots (Node, the loader, DuckDB) before its job arrives — the parent starts it early, with
 * `bootChild`, and lets it boot while other work runs. Then it loads `module[exportName]` (the
 * reference, a pitfall, or a learner's compactor), compacts, and reports each checkpoint. At
 * checkpoint `crashAtCheckpoint` it reports `paused` and waits: the parent then kills it with
 * SIGKILL — no handler, no cleanup, no finally blocks run. A parent that dies first closes this
 * process's stdin, and it exits (no orphan, paused or not).
 */
import { runChild, send } from '../engines/child.ts';
import type { CompactFn, CompactOptions } from './compact.ts';

export interface CompactJob {
  module: string;
  exportName: string;
  tableDir: string;
  options: Omit<CompactOptions, 'checkpoint' | 'rewrite'>;
  crashAtCheckpoint?: number;
}

runChild<CompactJob>(async () => {
  const { DuckDbEngine } = await import('../engines/duckdb/driver.ts');
  return async (job) => {
    const mod = (await import(job.module)) as Record<string, unknown>;
    const compact = mod[job.exportName] as CompactFn | undefined;
    if (typeof compact !== 'function') throw new Error(`${job.module} has no export ${job.exportName}`);
    const db = await DuckDbEngine.open(':memory:');
    try {
      const result = await compact(db, job.tableDir, {
        ...job.options,
        checkpoint: async (e) => {
          send({ ev: 'checkpoint', ...e });
          if (e.n === job.crashAtCheckpoint) {
            send({ ev: 'paused', n: e.n });
            // Wait for the SIGKILL (the interval keeps the event loop, and so the process, alive).
            await new Promise(() => setInterval(() => undefined, 1000));
          }
        },
      });
      send({ ev: 'done', result });
    } finally {
      await db.close();
    }
  };
});
