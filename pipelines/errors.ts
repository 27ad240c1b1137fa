/**
 * Typed errors. The CLI prints `error.message` as one line and exits with `exitCode`;
 * anything else is a bug and gets a stack trace.
 */
export class LabError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Bad command line: unknown lab, unknown flag, bad flag value. */
export class UsageError extends LabError {
  override readonly exitCode = 2;
}

/** An engine the lab needs cannot be had, or does not answer. Says what is missing and how to get it. */
export class EngineUnavailableError extends LabError {
  override readonly exitCode = 3;
}

/** A fixture or input file that does not parse or breaks its own invariants. */
export class FixtureError extends LabError {
  override readonly exitCode = 4;
}

/** The run was interrupted (SIGINT/SIGTERM); engines were stopped. */
export class InterruptedError extends LabError {
  override readonly exitCode = 130;
}

export function errorLine(err: unknown): string {
  if (err instanceof Error) return err.message.split('\n')[0] ?? String(err);
  return String(err);
}
