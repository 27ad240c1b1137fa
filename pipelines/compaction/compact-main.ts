/**
 * A compactor as its own OS process, so the crash test can SIGKILL a real one mid-run:
 *
 *   node --import tsx pipelines/compaction/compact-main.ts '<json>'
 *   json: { tableDir, module (file URL), exportName, options: { targetBytes, smallFileBytes?, sortBy? }, crashAtCheckpoint? }
 *
 * It runs `module[exportName]` (the reference, a pitfall, or a learner's compactor) and prints one
 * JSON line per checkpoint on stdout. At checkpoint `crashAtCheckpoint` it prints `paused` and
 * waits: the parent then kills it with SIGKILL — no handler, no cleanup, no finally blocks run.
 */
import { DuckDbEngine } from '../engines/duckdb/driver.ts';
import type { CompactFn, CompactOptions } from './compact.ts';

interface Config {
  tableDir: string;
  module: string;
  exportName: string;
  options: Omit<CompactOptions, 'checkpoint' | 'rewrite'>;
  crashAtCheckpoint?: number;
}

const send = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as Config;
  const mod = (await import(cfg.module)) as Record<string, unknown>;
  const compact = mod[cfg.exportName] as CompactFn | undefined;
  if (typeof compact !== 'function') throw new Error(`${cfg.module} has no export ${cfg.exportName}`);
  const db = await DuckDbEngine.open(':memory:');
  const result = await compact(db, cfg.tableDir, {
    ...cfg.options,
    checkpoint: async (e) => {
      send({ event: 'checkpoint', ...e });
      if (e.n === cfg.crashAtCheckpoint) {
        send({ event: 'paused', n: e.n });
        // Wait for the SIGKILL (the interval keeps the event loop, and so the process, alive).
        await new Promise(() => setInterval(() => undefined, 1000));
      }
    },
  });
  send({ event: 'done', result });
  await db.close();
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    send({ event: 'error', message: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  },
);
