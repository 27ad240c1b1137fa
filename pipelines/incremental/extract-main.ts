/**
 * One extraction in its own OS process, so the crash test can SIGKILL a real extractor between
 * writing the data and saving the state:
 *
 *   node --import tsx pipelines/incremental/extract-main.ts
 *   job (stdin, see pipelines/engines/child.ts): ExtractJob (crash.ts)
 *
 * It loads `source.module[source.exportName]` (the reference, a pitfall, or a learner's plan run
 * inside the reference extractor), opens the source and the target, and runs once. With `crashAt`
 * it reports `paused` at that checkpoint and waits for the parent's SIGKILL.
 */
import { runChild, send } from '../engines/child.ts';
import type { ExtractJob } from './crash.ts';
import type { ExtractFn, PlanExtraction } from './extract.ts';

runChild<ExtractJob>(async () => {
  const { openPortableTarget } = await import('../engines/portable.ts');
  const { PgEngine } = await import('../engines/postgres/driver.ts');
  const { extractWith } = await import('./extract.ts');
  return async (job) => {
    const mod = (await import(job.source.module)) as Record<string, unknown>;
    const fn = mod[job.source.exportName];
    if (typeof fn !== 'function') throw new Error(`${job.source.module} has no export ${job.source.exportName}`);
    const extract = job.source.kind === 'plan' ? extractWith(fn as PlanExtraction) : (fn as ExtractFn);
    const src = await PgEngine.connect(job.sourceUrl, { applicationName: 'de-lab-extractor' });
    const target = await openPortableTarget(job.target);
    try {
      const run = await extract(src, target, {
        ...job.options,
        checkpoint: async (point) => {
          if (point !== job.crashAt) return;
          send({ ev: 'paused', point });
          // Wait for the SIGKILL (the interval keeps the event loop, and so the process, alive).
          await new Promise(() => setInterval(() => undefined, 1000));
        },
      });
      send({ ev: 'done', run });
    } finally {
      await target.close();
      await src.close();
    }
  };
});
