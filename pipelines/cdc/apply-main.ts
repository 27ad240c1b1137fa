/** The apply process: `node --import tsx pipelines/cdc/apply-main.ts`; jobs (`job <ApplyConfig JSON>`) come on stdin. */
import { runChild } from '../engines/child.ts';
import type { ApplyConfig } from './apply-consumer.ts';

runChild<ApplyConfig>(async () => (await import('./apply-consumer.ts')).runApply);
