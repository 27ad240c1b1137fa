/**
 * Capture and apply run as their own OS processes, as they would in production, so a test can
 * SIGKILL them for real. This file has both ends:
 *
 *   parent: `startCdcProcess(script, config)` spawns `node --import tsx <script> <config-json>`
 *           and reads the child's progress messages (JSON lines on stdout);
 *   child:  `runCdcProcess(main)` parses the config, runs `main`, and guards against orphans.
 *
 * No orphans: the child's stdin is a pipe from the parent. A line `stop` asks for a clean stop;
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

const MARK = '@@cdc ';
const AWAIT_JOB = '--await-job';

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

export interface CdcProcess {
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
 * Spares: children already booted (node + tsx + their modules: ~0.7 s of CPU each) that wait for
 * their config on stdin. `startCdcProcess` hands one out when there is one, so a start — or the
 * restart after a crash — costs a stdin line instead of a boot. A spare is a fresh process that has
 * run nothing yet: a crash test still kills, and restarts, real processes.
 */
type Child = CdcProcess & { job(name: string, config: unknown): void; alive(): boolean };
const spares = new Map<string, Child[]>();
const keepWarm = new Map<string, number>();

function refill(script: string): void {
  const list = spares.get(script) ?? [];
  spares.set(script, list);
  while (list.length < (keepWarm.get(script) ?? 0)) list.push(spawnChild('spare', script, null));
}

/** From now on keep `count` booted spares of each script ready (a spare taken is replaced at once). */
export function keepSpares(scripts: readonly string[], count = 1): void {
  for (const script of scripts) {
    keepWarm.set(script, count);
    refill(script);
  }
}

/** Stops keeping spares, and stops the ones waiting. */
export async function stopSpares(): Promise<void> {
  keepWarm.clear();
  const waiting = [...spares.values()].flat();
  spares.clear();
  await Promise.all(waiting.map((p) => p.stop()));
}

export function startCdcProcess(name: string, script: string, config: unknown): CdcProcess {
  const list = spares.get(script) ?? [];
  // The spare that booted first (the oldest) is the likeliest to be ready.
  let spare = list.shift();
  while (spare && !spare.alive()) spare = list.shift();
  refill(script);
  if (spare) {
    spare.job(name, config);
    return spare;
  }
  return spawnChild(name, script, config);
}

function spawnChild(childName: string, script: string, config: unknown): Child {
  let name = childName;
  // A spare gets `--await-job` and its config later, as one `job <json>` line on stdin.
  const child: ChildProcess = spawn(process.execPath, ['--import', tsxLoader(), fileURLToPath(script), config === null ? AWAIT_JOB : JSON.stringify(config)], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, NODE_NO_WARNINGS: '1' },
  });
  const messages: ChildMessage[] = [];
  const listeners: ((m: ChildMessage) => void)[] = [];
  let stderr = '';
  let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    // 'close', not 'exit': stdout is read to its end first, so a child's last message (the crash
    // point it died at) is never lost to the race between its exit and its last write.
    child.once('close', (code, signal) => {
      exitInfo = { code, signal };
      resolve(exitInfo);
    });
  });
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      if (!line.startsWith(MARK)) continue;
      const msg = JSON.parse(line.slice(MARK.length)) as ChildMessage;
      messages.push(msg);
      for (const l of listeners) l(msg);
    }
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  child.stdin!.on('error', () => undefined);
  const proc: Child = {
    get name() {
      return name;
    },
    pid: child.pid!,
    job(jobName, config) {
      name = jobName;
      child.stdin!.write(`job ${JSON.stringify(config)}\n`);
    },
    alive: () => exitInfo === null,
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
      if (exitInfo) return;
      try {
        child.stdin!.write('stop\n');
      } catch {
        /* pipe already closed */
      }
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
    kill() {
      if (!exitInfo) child.kill('SIGKILL');
    },
    stderrTail: () => tail(),
  };
  function tail() {
    const fail = [...messages].reverse().find((m) => m.ev === 'failed');
    if (fail) return String(fail.error);
    return stderr.trim().split('\n').slice(-3).join(' | ');
  }
  return proc;
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
export function runCdcProcess<C>(load: () => Promise<(config: C, signal: AbortSignal) => Promise<void>>): void {
  const arg = process.argv[2] ?? '{}';
  const abort = new AbortController();
  let gotJob: (config: C) => void = () => undefined;
  const job = new Promise<C>((resolve) => (gotJob = resolve));
  if (arg !== AWAIT_JOB) gotJob(JSON.parse(arg) as C);
  let pending = '';
  const orphaned = () => process.exit(0);
  process.stdin.setEncoding('utf8');
  process.stdin.on('data', (d: string) => {
    pending += d;
    let nl: number;
    while ((nl = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      if (line === 'stop') {
        // A spare stopped before it got a job has nothing to close.
        if (arg === AWAIT_JOB && !started) orphaned();
        abort.abort();
      } else if (line.startsWith('job ')) gotJob(JSON.parse(line.slice(4)) as C);
    }
  });
  let started = false;
  process.stdin.on('end', orphaned);
  process.stdin.on('close', orphaned);
  process.stdin.on('error', orphaned);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => abort.abort());
  // The guard above is armed before the heavy modules (kafkajs, pg, duckdb) load: a parent that
  // dies while this child is still starting is noticed too. A spare loads them before its job comes.
  Promise.all([load(), job])
    .then(([main, config]) => {
      started = true;
      return main(config, abort.signal);
    })
    .then(
      () => {
        send({ ev: 'stopped' });
        process.exit(0);
      },
      (err: unknown) => {
        send({ ev: 'failed', error: err instanceof Error ? err.message : String(err) });
        process.exit(1);
      },
    );
}

/** A crash point: when `spec` names this point and the counter has reached its threshold, die now. */
export function crashPoint(spec: CrashSpec | undefined, point: string, count: number, detail: Record<string, unknown> = {}): void {
  if (!spec || spec.point !== point || count < spec.afterEvents) return;
  send({ ev: 'crash', point, count, ...detail });
  process.kill(process.pid, 'SIGKILL');
}
