import { describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, readdirSync, readlinkSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCli } from './cli-run.ts';

/**
 * No orphans: a lab run that is interrupted (SIGINT) or killed outright (SIGKILL) must leave no
 * postgres or Kafka process and no temp dir behind. The CLI gets its own TMPDIR so we can tell
 * its engines (data dirs, cwd, command lines) from any other run's.
 */
function processesUsing(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
      let cwd = '';
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        /* other user's process */
      }
      if (cmd.includes(dir) || cwd.startsWith(dir)) found.push(`${pid}: ${cmd.slice(0, 120)}`);
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}

async function eventually(probe: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (probe()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return probe();
}

async function interruptLabRun(signal: NodeJS.Signals) {
  const tmp = mkdtempSync(join(tmpdir(), 'de-lab-interrupt-'));
  chmodSync(tmp, 0o1777); // the Postgres server runs as an unprivileged user when we are root
  try {
    const child = startCli(['smoke', '--provision', 'local'], { TMPDIR: tmp, PG_URL: '', KAFKA_BROKERS: '' });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code, sig) => r(code ?? (sig ? -1 : null))));
    // Interrupt once both servers run and the lab is under way.
    const started = await eventually(() => /Kafka: local KRaft broker/.test(out) && /PostgreSQL: local server/.test(out), 90_000);
    expect(started, out).toBe(true);
    const enginesDuringRun = readdirSync(tmp).filter((f) => f.startsWith('de-lab-'));
    expect(enginesDuringRun.some((f) => f.startsWith('de-lab-pg-'))).toBe(true);
    expect(enginesDuringRun.some((f) => f.startsWith('de-lab-kafka-'))).toBe(true);
    expect(processesUsing(tmp).length).toBeGreaterThan(0);

    child.kill(signal);
    const code = await exited;
    // tsx keeps its transpile cache (tsx-<uid>) in TMPDIR: a shared cache, not a per-run temp dir.
    const ours = () => readdirSync(tmp).filter((f) => !f.startsWith('tsx-'));
    const clean = await eventually(() => processesUsing(tmp).length === 0 && ours().length === 0, 30_000);
    return { code, clean, left: processesUsing(tmp), files: ours(), out };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

describe('engines leave no orphans', () => {
  it('SIGINT to a lab run: exit 130, no postgres/Kafka process, no temp dir left', async () => {
    const r = await interruptLabRun('SIGINT');
    expect(r.code).toBe(130);
    expect(r.left).toEqual([]);
    expect(r.files).toEqual([]);
    expect(r.clean).toBe(true);
  });

  it('SIGKILL to a lab run: the supervisors notice the parent is gone and stop the engines', async () => {
    const r = await interruptLabRun('SIGKILL');
    expect(r.code).toBe(-1);
    expect(r.left).toEqual([]);
    expect(r.files).toEqual([]);
    expect(r.clean).toBe(true);
  });
});
