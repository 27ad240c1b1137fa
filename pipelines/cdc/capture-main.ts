/** The capture process: `node --import tsx pipelines/cdc/capture-main.ts`; jobs (`job <CaptureConfig JSON>`) come on stdin. */
import { runCdcProcess } from './process.ts';
import type { CaptureConfig } from './capture.ts';

runCdcProcess<CaptureConfig>(async () => (await import('./capture.ts')).runCapture);
