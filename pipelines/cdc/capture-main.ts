/** The capture process: `node --import tsx pipelines/cdc/capture-main.ts '<CaptureConfig JSON>'`. */
import { runCdcProcess } from './process.ts';
import type { CaptureConfig } from './capture.ts';

runCdcProcess<CaptureConfig>(async () => (await import('./capture.ts')).runCapture);
