/**
 * Pipeline parts that run as their own OS processes, as they would in production, so a test can
 * SIGKILL them for real: the cdc capture and apply, the compactor. This file has both ends:
 *
 *   parent: `startChild(name, script, config)` takes a booted child of `node --import tsx <script>`
 *           (a spare, or one booted now), sends it `job <config-json>` on stdin and reads its
 *           progress messages (JSON lines on stdout); `bootChild(script)` boots one now and starts
 *           its job later (the boot overlaps other work);
 *   child:  `runChild(load)` runs the loaded `main` for each job, and guards against orphans.
 *
 * No orphans: the child's stdin is a pipe from the parent. A line `stop` asks for a clean stop of
 * the job (`stopped` answers), `exit` ends the process;
 * end-of-file means the parent is gone (exited, crashed, SIGKILLed) and the child exits at once,
 * the same rule `scripts/supervise.mjs` applies to engine servers.
 *
 * Crash points: a config may name a point (e.g. `apply:between-commits`); the child calls
 * `crashPoint(name)` there, and when armed it writes a last message and SIGKILLs itself — a real
 * SIGKILL at exactly that moment, nothing flushed, nothing closed.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { eachLine } from './lines.ts';

const MARK = '@@child ';

export type ChildMessage = { ev: string } & Record<string, unknown>;

export interface CrashSpec {
  /** Named point in the child's code. */
  point: string;
  /** Armed once this many events have gone through the point's counter (see each child). */
  afterEvents: number;
  /**
   * Apply only: armed in the batch that carries this Kafka key of this topic (a change whose key is
   * never changed again). The crash point is then defined by the implementation's own steps — after
   * the first of the batch's two commits — and by the data, never by timing or batch sizes.
   */
  key?: { topic: string; key: string };
}

// ---------------------------------------------------------------- parent side

/** `node --import <tsx loader>`: absolute, so the child starts from any working directory. */
function tsxLoader(): string {
  const pkg = createRequire(import.meta.url).resolve('tsx/package.json');
  return pathToFileURL(join(dirname(pkg), 'dist', 'loader.mjs')).href;
}

export interface ChildJob {
  readonly name: string;
  readonly pid: number;
  readonly messages: ChildMessage[];
  /** Resolves with how the process ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first message of kind `ev` (or rejects if the process ends first). */
  waitFor(ev: string, timeoutMs?: number): Promise<ChildMessage>;
  onMessage(fn: (m: ChildMessage) => void): void;
  /** Clean stop: `stop` on stdin, SIGKILL after `timeoutMs`. */
  stop(timeoutMs?: number): Promise<void>;
  /** SIGKILL from outside (the "random point" crash). */
  kill(): void;
  /** Last lines the child wrote to stderr. */
  stderrTail(): string;
}

/**
 * Workers and jobs. A child process (a worker) runs one job at a time — an apply or a capture run
 * with its config — and a `ChildJob` is one job on one worker. A job that ends cleanly (`stop`,
 * then its `stopped`) hands its worker back to the pool of spares; a job whose process dies (a
 * crash point, a SIGKILL) takes its worker with it. Spares are booted ahead (node + tsx + modules:
 * ~0.7 s of CPU each), so a start — or the restart after a crash — costs a stdin line instead of a
 * boot. A crash test still kills, and restarts, real processes; a job never sees another's state
 * (each opens its own consumer, producer and target handles, and closes them before `stopped`).
 */
interface Worker {
  pid: number;
  script: string;
  child: ChildProcess;
  exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The running job's message handler. */
  onMessage: ((m: ChildMessage) => void) | null;
  stderr: string;
}

const spares = new Map<string, Worker[]>();
const keepWarm = new Map<string, number>();

function pool(script: string): Worker[] {
  let list = spares.get(script);
  if (!list) spares.set(script, (list = []));
  return list;
}

function refill(script: string): void {
  const list = pool(script);
  while (list.length < (keepWarm.get(script) ?? 0)) list.push(spawnWorker(script));
}

/** From now on keep `count` booted spares of each script ready (a spare taken is replaced at once). */
export function keepSpares(scripts: readonly string[], count = 1): void {
  for (const script of scripts) {
    keepWarm.set(script, count);
    refill(script);
  }
}

/** Stops keeping spares, and ends the ones waiting. */
export async function stopSpares(): Promise<void> {
  keepWarm.clear();
  const waiting = [...spares.values()].flat();
  spares.clear();
  await Promise.all(waiting.map((w) => endWorker(w)));
}

async function endWorker(w: Worker): Promise<void> {
  if (w.exitInfo) return;
  try {
    w.child.stdin!.write('exit\n');
  } catch {
    /* pipe already closed */
  }
  const timer = setTimeout(() => w.child.kill('SIGKILL'), 5000);
  await w.exited;
  clearTimeout(timer);
}

/** A worker whose job ended cleanly: back to the spares while they are kept (a few more than asked), else ended. */
function release(w: Worker): void {
  const list = pool(w.script);
  if (!w.exitInfo && keepWarm.has(w.script) && list.length < (keepWarm.get(w.script) ?? 0) + 2) list.push(w);
  else void endWorker(w);
}

export function startChild(name: string, script: string, config: unknown): ChildJob {
  const list = pool(script);
  // The spare that booted first (the oldest) is the likeliest to be ready.
  let w = list.shift();
  while (w && w.exitInfo) w = list.shift();
  refill(script);
  return startJob(w ?? spawnWorker(script), name, config);
}

function spawnWorker(script: string): Worker {
  const child: ChildProcess = spawn(process.execPath, ['--import', tsxLoader(), fileURLToPath(script)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  const w: Worker = { pid: child.pid!, script, child, exitInfo: null, exited: null!, onMessage: null, stderr: '' };
  w.exited = new Promise((resolve) => {
    // 'close', not 'exit': stdout is read to its end first, so a child's last message (the crash
    // point it died at) is never lost to the race between its exit and its last write.
    child.once('close', (code, signal) => {
      w.exitInfo = { code, signal };
      resolve(w.exitInfo);
    });
  });
  eachLine(child.stdout!, (line) => {
    if (line.startsWith(MARK)) w.onMessage?.(JSON.parse(line.slice(MARK.length)) as ChildMessage);
  });
  child.stderr!.on('data', (d: Buffer) => {
    w.stderr = (w.stderr + d.toString()).slice(-4000);
  });
  child.stdin!.on('error', () => undefined);
  return w;
}

/**
 * Boots one child of `script` now, for one job started later with `start` (e.g. a compactor whose
 * job is known only after other steps ran). `end` stops it if no job was ever started.
 */
export function bootChild(script: string): { pid: number; start(name: string, config: unknown): ChildJob; end(): Promise<void> } {
  const w = spawnWorker(script);
  let job: ChildJob | null = null;
  return {
    pid: w.pid,
    start(name, config) {
      if (job) throw new Error(`${script}: a booted child runs one job`);
      return (job = startJob(w, name, config));
    },
    // A job still running is killed (an interrupted run); a child that never got one is ended.
    end: async () => {
      if (!job) return endWorker(w);
      job.kill();
      await job.exited;
    },
  };
}

function startJob(w: Worker, name: string, config: unknown): ChildJob {
  const messages: ChildMessage[] = [];
  const listeners: ((m: ChildMessage) => void)[] = [];
  let endInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let endJob: (x: { code: number | null; signal: NodeJS.Signals | null }) => void = () => undefined;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => (endJob = resolve));
  const finish = (x: { code: number | null; signal: NodeJS.Signals | null }) => {
    if (endInfo) return;
    endInfo = x;
    w.onMessage = null;
    endJob(x);
  };
  w.onMessage = (msg) => {
    messages.push(msg);
    for (const l of listeners) l(msg);
    if (msg.ev === 'stopped') {
      finish({ code: 0, signal: null });
      release(w);
    }
  };
  // A job that dies with its process ends with the process's exit (a failed job exits its process).
  void w.exited.then((x) => finish(x));
  w.child.stdin!.write(`job ${JSON.stringify(config)}\n`);
  const proc: ChildJob = {
    name,
    pid: w.pid,
    messages,
    exited,
    onMessage: (fn) => void listeners.push(fn),
    waitFor(ev, timeoutMs = 60000) {
      const found = messages.find((m) => m.ev === ev);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${name}: no "${ev}" within ${timeoutMs} ms (${tail()})`)), timeoutMs);
        listeners.push((m) => {
          if (m.ev !== ev) return;
          clearTimeout(timer);
          resolve(m);
        });
        void exited.then((x) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (${x.signal ?? `code ${x.code}`}) before "${ev}": ${tail()}`));
        });
      });
    },
    async stop(timeoutMs = 10000) {
      if (endInfo) return;
      try {
        w.child.stdin!.write('stop\n');
      } catch {
        /* pipe already closed */
      }
      const timer = setTimeout(() => {
        if (!endInfo) w.child.kill('SIGKILL');
      }, timeoutMs);
      await exited;
      clearTimeout(timer);
    },
    kill() {
      if (!endInfo) w.child.kill('SIGKILL');
    },
    stderrTail: () => tail(),
  };
  function tail() {
    const fail = [...messages].reverse().find((m) => m.ev === 'failed');
    if (fail) return String(fail.error);
    return w.stderr.trim().split('\n').slice(-3).join(' | ');
  }
  return proc;
}

/**
 * Waits for a job's process to end, SIGKILLing it after `timeoutMs`. `error`: why it did not end
 * cleanly — the timeout, or a non-zero exit — unless `killedOnPurpose()` says the parent killed
 * it (a crash test). Used by the incremental lab's crash test.
 */
export async function waitForExit(
  proc: ChildJob,
  opts: { what: string; timeoutMs: number; killedOnPurpose: () => boolean },
): Promise<{ exit: { code: number | null; signal: NodeJS.Signals | null }; error?: string }> {
  let error: string | undefined;
  const timer = setTimeout(() => {
    error = `${opts.what} did not finish in ${opts.timeoutMs / 1000} s`;
    proc.kill();
  }, opts.timeoutMs);
  let exit: { code: number | null; signal: NodeJS.Signals | null };
  try {
    exit = await proc.exited;
  } finally {
    clearTimeout(timer);
  }
  if (!error && !opts.killedOnPurpose() && exit.code !== 0) error = `${opts.what} exited with ${exit.signal ?? exit.code}: ${proc.stderrTail()}`;
  return { exit, ...(error ? { error } : {}) };
}

// ---------------------------------------------------------------- child side

/** Writes one message to the parent, synchronously (it must be out before a SIGKILL). */
export function send(msg: ChildMessage): void {
  writeSync(1, MARK + JSON.stringify(msg, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
}

/**
 * Runs a child's `main(config, signal)` (`load` imports it). `signal` aborts on `stop`; end of
 * stdin (parent gone) exits immediately.
 */
export function runChild<C>(load: () => Promise<(config: C, signal: AbortSignal) => Promise<void>>): void {
  const jobs: C[] = [];
  let wakeJob: () => void = () => undefined;
  let abort: AbortController | null = null;
  const orphaned = () => process.exit(0);
  process.stdin.setEncoding('utf8');
  eachLine(process.stdin, (line) => {
    if (line === 'exit') process.exit(0);
    else if (line === 'stop') {
      if (abort) abort.abort();
      else if (jobs.length > 0) {
        // Stopped before it began (the modules were still loading): it ends without running.
        jobs.shift();
        send({ ev: 'stopped' });
      }
    } else if (line.startsWith('job ')) {
      jobs.push(JSON.parse(line.slice(4)) as C);
      wakeJob();
    }
  });
  process.stdin.on('end', orphaned);
  process.stdin.on('close', orphaned);
  process.stdin.on('error', orphaned);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => (abort ? abort.abort() : process.exit(0)));
  // The guard above is armed before the heavy modules (kafkajs, pg, duckdb) load: a parent that
  // dies while this child is still starting is noticed too. The modules load before the first job.
  void (async () => {
    const main = await load();
    for (;;) {
      while (jobs.length === 0) await new Promise<void>((r) => (wakeJob = r));
      const config = jobs.shift()!;
      abort = new AbortController();
      try {
        await main(config, abort.signal);
      } catch (err) {
        send({ ev: 'failed', error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      }
      abort = null;
      // Done cleanly: everything the job opened is closed; the parent may give this process another job.
      send({ ev: 'stopped' });
    }
  })().catch((err: unknown) => {
    send({ ev: 'failed', error: err instanceof Error ? err.message : String(err) });
    process.exit(1);
  });
}

/** A crash point: when `spec` names this point and the counter has reached its threshold, die now. */
export function crashPoint(spec: CrashSpec | undefined, point: string, count: number, detail: Record<string, unknown> = {}): void {
  if (!spec || spec.point !== point || count < spec.afterEvents) return;
  send({ ev: 'crash', point, count, ...detail });
  process.kill(process.pid, 'SIGKILL');
}
