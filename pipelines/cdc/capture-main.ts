/** The capture process: `node --import tsx pipelines/cdc/capture-main.ts '<CaptureConfig JSON>'`. */
import { runCdcProcess } from './process.ts';
import { runCapture, type CaptureConfig } from './capture.ts';

runCdcProcess<CaptureConfig>(runCapture);
