/**
 * A compactor as its own OS process, so the crash test can SIGKILL a real one mid-run:
 *
 *   node --import tsx pipelines/compaction/compact-main.ts '<json>'
 *   json: { module (file URL), exportName }
 *   stdin, one line: { tableDir, options: { targetBytes, smallFileBytes?, sortBy? }, crashAtCheckpoint? }
 *
 * It loads `module[exportName]` (the reference, a pitfall, or a learner's compactor) and DuckDB,
 * prints `ready`, and waits for the job on stdin — so the parent can start it early and let it
 * boot while other work runs. Then it compacts and prints one JSON line per checkpoint on stdout.
 * At checkpoint `crashAtCheckpoint` it prints `paused` and waits: the parent then kills it with
 * SIGKILL — no handler, no cleanup, no finally blocks run.
 */
import { createInterface } from 'node:readline';
import { DuckDbEngine } from '../engines/duckdb/driver.ts';
import type { CompactFn, CompactOptions } from './compact.ts';

interface Job {
  tableDir: string;
  options: Omit<CompactOptions, 'checkpoint' | 'rewrite'>;
  crashAtCheckpoint?: number;
}

const send = (o: unknown) => process.stdout.write(JSON.stringify(o) + '\n');

/** The first line on stdin; a parent that never sends one (it failed, or was killed) ends this process. */
function nextJob(): Promise<Job> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin });
    const idle = setTimeout(() => reject(new Error('no job on stdin within 120 s')), 120_000);
    rl.once('line', (line) => {
      clearTimeout(idle);
      resolve(JSON.parse(line) as Job);
      rl.close();
    });
    rl.once('close', () => (clearTimeout(idle), reject(new Error('stdin closed before a job arrived'))));
  });
}

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2] ?? '{}') as { module: string; exportName: string };
  const mod = (await import(cfg.module)) as Record<string, unknown>;
  const compact = mod[cfg.exportName] as CompactFn | undefined;
  if (typeof compact !== 'function') throw new Error(`${cfg.module} has no export ${cfg.exportName}`);
  const db = await DuckDbEngine.open(':memory:');
  send({ event: 'ready' });
  const job = await nextJob();
  const result = await compact(db, job.tableDir, {
    ...job.options,
    checkpoint: async (e) => {
      send({ event: 'checkpoint', ...e });
      if (e.n === job.crashAtCheckpoint) {
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
