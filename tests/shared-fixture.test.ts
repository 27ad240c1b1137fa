/**
 * The runner's shared fixtures (labs/contract.ts `SharedFixture`, labs/runner.ts): made once per
 * engine set and key, a failed make tried again, released when the engines stop — while the
 * connection it made is still open — and warmed at check scale by a full run before its second
 * step. A two-step lab over a real DuckDB table; no server needed.
 */
import { describe, expect, it } from 'vitest';
import type { Lab, SharedFixture } from '../labs/contract.ts';
import { checkImplementation, runLab, sharedFixture } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import { Engines, type DuckDbEngine } from '../pipelines/engines/index.ts';

type Impl = { rows(db: DuckDbEngine): Promise<number> };

/** A table of `round(scale * 100)` rows, counted by what it makes and what its release still reads. */
function rowsFixture(log: string[], fail = { next: false }): SharedFixture<DuckDbEngine> {
  return {
    id: 'test-rows',
    key: ({ seed, scale }) => `${seed}-${Math.round(scale * 100)}`,
    async make({ seed, scale, engines }) {
      log.push(`make ${seed}-${Math.round(scale * 100)}`);
      if (fail.next) {
        fail.next = false;
        throw new Error('make failed once');
      }
      const db = await engines.duckdb();
      await db.exec(`CREATE TABLE t AS SELECT range AS id FROM range(${Math.round(scale * 100)})`);
      return db;
    },
    async release(db) {
      const [r] = await db.query<{ n: number }>('SELECT count(*) AS n FROM t');
      log.push(`release ${Number(r!.n)}`);
    },
  };
}

function tinyLab(fixture: SharedFixture<DuckDbEngine>, log: string[]): Lab<Impl, { rows?: number }> {
  return {
    id: 'shared-test',
    title: 'shared fixture test',
    question: '-',
    needs: [],
    engines: ['duckdb'],
    reference: { rows: async (db) => Number((await db.query<{ n: number }>('SELECT count(*) AS n FROM t'))[0]!.n) },
    pitfalls: [{ name: 'off-by-one', title: 'counts one too many', description: '-', impl: { rows: async (db) => Number((await db.query<{ n: number }>('SELECT count(*) + 1 AS n FROM t'))[0]!.n) } }],
    shared: [fixture],
    checkScale: (scale) => scale / 10,
    newState: () => ({}),
    steps: [
      { title: 'count', run: async (ctx, impl, state) => void (state.rows = await impl.rows(await ctx.shared(fixture))) },
      { title: 'after the first step', run: async () => void log.push('second step') },
    ],
    claims: [{ id: 'counts-rows', title: 'counts rows', statement: '-', check: (s) => ({ passed: s.rows === Math.round((s.rows ?? 0) / 10) * 10, evidence: { rows: s.rows ?? null } }) }],
    metrics: () => ({}),
  };
}

const newEngines = () => new Engines({ mode: 'external', log: () => undefined });

describe('shared fixtures (runner)', () => {
  it('one value per engine set and key: equal keys share it, another key or engine set makes its own', async () => {
    const log: string[] = [];
    const f = rowsFixture(log);
    const [a, b] = [newEngines(), newEngines()];
    try {
      const one = await sharedFixture(a, f, { seed: 1, scale: 1, engine: 'duckdb' });
      expect(await sharedFixture(a, f, { seed: 1, scale: 1, engine: 'duckdb' })).toBe(one);
      expect(await sharedFixture(a, f, { seed: 2, scale: 1, engine: 'duckdb' })).not.toBe(one);
      expect(await sharedFixture(b, f, { seed: 1, scale: 1, engine: 'duckdb' })).not.toBe(one);
      expect(log).toEqual(['make 1-100', 'make 2-100', 'make 1-100']);
    } finally {
      await Promise.all([a.stopAll(), b.stopAll()]);
    }
    // Released with the engines, each while its connection was still open (it read its table).
    expect(log.slice(3).sort()).toEqual(['release 100', 'release 100', 'release 100']);
  });

  it('a failed make is forgotten: the next use makes it again', async () => {
    const log: string[] = [];
    const engines = newEngines();
    const f = rowsFixture(log, { next: true });
    try {
      await expect(sharedFixture(engines, f, { seed: 1, scale: 0.5, engine: 'duckdb' })).rejects.toThrow('make failed once');
      await expect(sharedFixture(engines, f, { seed: 1, scale: 0.5, engine: 'duckdb' })).resolves.toBeDefined();
      expect(log).toEqual(['make 1-50', 'make 1-50']);
    } finally {
      await engines.stopAll();
    }
  });

  it('a full run warms the check-scale value before its second step; the pitfall and a later check run reuse it', async () => {
    const log: string[] = [];
    const lab = tinyLab(rowsFixture(log), log);
    const engines = newEngines();
    try {
      const report = await runLab(lab, { seed: 3, scale: 1, provision: 'external', out: Reporter.silent(), engines });
      expect(report.claims[0]).toMatchObject({ passed: true, evidence: { rows: 100 } });
      expect(report.pitfalls[0]).toMatchObject({ name: 'off-by-one', rejectedBy: ['counts-rows'] });
      expect(log.indexOf('make 3-10')).toBeGreaterThanOrEqual(0);
      expect(log.indexOf('make 3-10')).toBeLessThan(log.indexOf('second step'));
      const again = await checkImplementation(lab, { seed: 3, scale: 1, engine: 'duckdb', engines, workDir: engines.tempDir('t'), signal: new AbortController().signal }, lab.reference);
      expect(again.claims[0]).toMatchObject({ passed: true, evidence: { rows: 10 } });
      expect(log.filter((l) => l.startsWith('make')).sort()).toEqual(['make 3-10', 'make 3-100']);
    } finally {
      await engines.stopAll();
    }
  });
});
