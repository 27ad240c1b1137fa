import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { eachLine } from './lines.ts';

const SUPERVISOR = fileURLToPath(new URL('../../scripts/supervise.mjs', import.meta.url));

export interface SupervisedConfig {
  /** The server command; empty = guard only: nothing runs, `cleanup` dirs go when the parent does. */
  cmd: string;
  args: string[];
  env?: Record<string, string>;
  cwd?: string;
  uid?: number;
  gid?: number;
  /** Signal for a clean stop (postgres: SIGINT = fast shutdown; Kafka: SIGTERM). */
  stopSignal?: NodeJS.Signals;
  stopTimeoutMs?: number;
  /** Directories removed once the server has exited. */
  cleanup?: string[];
  logFile: string;
}

/**
 * A server process behind `scripts/supervise.mjs`. The supervisor holds the server and stops it
 * (and deletes its temp dir) as soon as our end of its stdin pipe closes — on `stop()`, and also
 * when this process dies without a chance to clean up (SIGKILL, crash).
 */
export class SupervisedProcess {
  private exited: Promise<void>;
  private died: string | null = null;
  private deathLog = '';
  serverPid: number | null = null;

  private constructor(
    private readonly sup: ChildProcess,
    readonly config: SupervisedConfig,
  ) {
    this.exited = new Promise((resolve) => sup.once('exit', () => resolve()));
    eachLine(sup.stdout!, (line) => {
      try {
        const msg = JSON.parse(line) as { event: string; pid?: number; code?: number; signal?: string; message?: string; tail?: string };
        if (msg.event === 'started') this.serverPid = msg.pid ?? null;
        if (msg.event === 'exit') {
          this.died = `exited with ${msg.signal ?? `code ${msg.code}`}`;
          this.deathLog = msg.tail ?? '';
        }
        if (msg.event === 'error') this.died = msg.message ?? 'failed to start';
      } catch {
        /* not ours */
      }
    });
  }

  static start(config: SupervisedConfig): SupervisedProcess {
    const sup = spawn(process.execPath, [SUPERVISOR, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
    });
    // Neither the supervisor nor its pipes keep this process alive: if we exit, the pipe closes
    // and the supervisor stops the server. That is the orphan guarantee.
    sup.unref();
    (sup.stdin as unknown as { unref?: () => void }).unref?.();
    (sup.stdout as unknown as { unref?: () => void }).unref?.();
    return new SupervisedProcess(sup, config);
  }

  /** Guards temp dirs: removed on `stop()`, or by the supervisor when this process dies. */
  static guardDirs(dirs: string[]): SupervisedProcess {
    return SupervisedProcess.start({ cmd: '', args: [], cleanup: dirs, logFile: '' });
  }

  /** Why the server is gone, if it died on its own; else null. */
  get deathReason(): string | null {
    return this.died;
  }

  /** Last lines of the server log, for error messages. */
  logTail(lines = 8): string {
    if (this.deathLog) return this.deathLog;
    try {
      return readFileSync(this.config.logFile, 'utf8').trim().split('\n').slice(-lines).join(' | ');
    } catch {
      return '';
    }
  }

  /**
   * SIGKILLs the server (its whole process group), as a machine failure would: no clean stop. The
   * supervisor sees it die, removes its `cleanup` dirs and exits. Resolves when it has.
   */
  async killServer(): Promise<void> {
    if (this.serverPid !== null) {
      try {
        process.kill(-this.serverPid, 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    await this.stop();
  }

  async stop(): Promise<void> {
    if (this.sup.exitCode !== null || this.sup.signalCode !== null) return;
    // While we wait for the stop, the supervisor must keep this process alive.
    this.sup.ref();
    try {
      this.sup.stdin!.end('stop\n');
    } catch {
      /* already closed */
    }
    await this.exited;
  }
}
