import { InterruptedError, LabError, errorLine } from '../pipelines/errors.ts';

/**
 * Runs a command's `main` and turns its outcome into an exit code: typed errors become one
 * `de-lab: …` line and their own exit code; anything else is a bug and keeps its stack trace.
 * `stopping()` returns the engines' stop in progress after SIGINT/SIGTERM: the command waits for
 * it, then exits 130 whatever the interrupted run threw meanwhile.
 */
export function runCommand(main: () => Promise<number>, stopping: () => Promise<void> | null = () => stopInProgress): void {
  main().then(
    async (code) => {
      const stop = stopping();
      if (stop) await stop;
      process.exit(code);
    },
    async (err) => {
      const stop = stopping();
      if (stop) {
        // Errors after an interrupt are its echo (closed connections): not worth a line.
        await stop;
        process.exit(130);
      }
      if (err instanceof InterruptedError) process.exit(130);
      if (err instanceof LabError) {
        process.stderr.write(`de-lab: ${errorLine(err)}\n`);
        process.exit(err.exitCode);
      }
      process.stderr.write(`de-lab: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
      process.exit(1);
    },
  );
}

let stopInProgress: Promise<void> | null = null;

/**
 * On SIGINT/SIGTERM: abort the run's signal, stop the engines it started, exit 130.
 * Returns the signal long steps watch.
 */
export function stopOnInterrupt(engines: { stopAll(): Promise<void> }): AbortSignal {
  const abort = new AbortController();
  const onSignal = (sig: NodeJS.Signals) => {
    if (stopInProgress) return;
    abort.abort();
    process.stderr.write(`\n${sig}: stopping engines…\n`);
    // Stop what we started, then leave: a step still running cannot be trusted to finish.
    stopInProgress = engines.stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return abort.signal;
}
