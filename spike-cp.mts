import { Engines } from './pipelines/engines/index.ts';
import { checkImplementation } from './labs/runner.ts';
import { Reporter } from './labs/reporter.ts';
import { compactionLab } from './labs/compaction/lab.ts';
import { compactionPitfalls } from './labs/compaction/pitfalls.ts';
const engines = new Engines({ mode: 'auto', log: (m) => console.log('LOG', m.slice(0, 120)) });
const which = process.env.WHICH ?? 'reference';
try {
  const impls = which === 'reference' ? [compactionLab.reference] : compactionPitfalls.filter((p) => which.split(',').includes(p.name)).map((p) => p.impl);
  for (const impl of impls) {
    const t0 = performance.now();
    const out = new Reporter({ write: (s: string) => process.stdout.write(`[${Math.round((performance.now() - t0) / 1000)}s] ${s.slice(0, 300)}`) });
    const r = await checkImplementation(compactionLab, { seed: 42, scale: 1, engine: 'spark', engines, workDir: engines.tempDir('cp'), signal: new AbortController().signal, out }, impl);
    console.log('took', Math.round(performance.now() - t0), r.error, r.claims.map((c) => `${c.id}:${c.skipped ? 'skip' : c.passed}:${c.counterexample ?? ''}`).join('\n'));
  }
} catch (e) { console.log('ERR', e); } finally { await engines.stopAll(); }
