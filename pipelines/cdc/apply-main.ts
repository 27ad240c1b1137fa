/** The apply process: `node --import tsx pipelines/cdc/apply-main.ts`; jobs (`job <ApplyConfig JSON>`) come on stdin. */
import { runCdcProcess } from './process.ts';
import type { ApplyConfig } from './apply-consumer.ts';

runCdcProcess<ApplyConfig>(async () => (await import('./apply-consumer.ts')).runApply);
