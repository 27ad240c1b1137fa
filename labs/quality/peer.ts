/**
 * Great Expectations as the peer of claim 7: the lab's suite, mapped expectation by expectation
 * to GX's own (labs/quality/gx_peer.py), run by GX 1.x on the same batches in the same Postgres
 * database, pass/fail compared with the lab's gate. GX lives in its own virtualenv, installed by
 * scripts/ci.d/great-expectations.sh; where it is missing the comparison says so and is skipped.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { QUALITY_TABLES as T, type Expectation } from '../../pipelines/quality/index.ts';

export const GX_VERSION = '1.24.1';

/** The virtualenv's python, or why there is none. */
export function gxPython(env: NodeJS.ProcessEnv = process.env): { python: string } | { missing: string } {
  const cache = env.DE_LAB_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'de-lab');
  const venv = join(cache, `great-expectations-${GX_VERSION}`);
  if (!existsSync(join(venv, '.complete'))) return { missing: `Great Expectations ${GX_VERSION} is not installed in ${venv} (bash scripts/ci.d/great-expectations.sh)` };
  return { python: join(venv, 'bin', 'python') };
}

/** One table per batch, holding exactly that batch's bronze rows (GX validates whole tables). */
export async function materializeBatches(db: SqlEngine, dates: readonly string[]): Promise<{ table: string; batch_date: string }[]> {
  const q = db.dialect.ident;
  const out: { table: string; batch_date: string }[] = [];
  for (const date of dates) {
    const table = `gx_batch_${date.replaceAll('-', '')}`;
    await db.exec(`DROP TABLE IF EXISTS ${q(table)}`);
    await db.exec(`CREATE TABLE ${q(table)} AS SELECT * FROM ${q(T.bronze)} WHERE 1 = 0`);
    await db.exec(`INSERT INTO ${q(table)} SELECT * FROM ${q(T.bronze)} WHERE batch_date = CAST($1 AS DATE)`, [date]);
    out.push({ table, batch_date: date });
  }
  return out;
}

export interface GxRun {
  version: string;
  /** table → expectation name → passed. */
  results: Record<string, Record<string, boolean>>;
}

/** Runs the suite through GX on the batch tables of the database at `url`. */
export function runGreatExpectations(python: string, url: string, suite: readonly Expectation[], batches: readonly { table: string; batch_date: string }[]): Promise<GxRun> {
  const script = fileURLToPath(new URL('./gx_peer.py', import.meta.url));
  return new Promise((resolve, reject) => {
    const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, GX_ANALYTICS_ENABLED: 'false' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`gx_peer.py exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`));
      const parsed = JSON.parse(stdout) as { gx_version: string; results: GxRun['results'] };
      resolve({ version: parsed.gx_version, results: parsed.results });
    });
    child.stdin.end(JSON.stringify({ url, suite, batches }));
  });
}
