/** The capture process: `node --import tsx pipelines/cdc/capture-main.ts`; jobs (`job <CaptureConfig JSON>`) come on stdin. */
import { runChild } from '../engines/child.ts';
import type { CaptureConfig } from './capture.ts';

runChild<CaptureConfig>(async () => (await import('./capture.ts')).runCapture);
