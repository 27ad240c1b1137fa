/**
 * A tiny lab used only by the exercise-mode and report tests: "latest row per key" on DuckDB,
 * with an exercise, two pitfalls and a chart of every kind. Not registered in labs/registry.ts.
 */
import type { Lab } from '../../labs/contract.ts';
import type { SqlEngine } from '../../pipelines/engines/types.ts';
import { Prng } from '../../fixtures/prng.ts';
import { latestPerKey } from './solution.ts';

type Impl = { latestPerKey(db: SqlEngine, source: string, target: string): Promise<void> };
type Rec = { key: number; version: number; value: number };
interface State { source: Rec[]; result: Rec[] }

export const fixtureLab: Lab<Impl, State> = {
  id: 'fixture',
  title: 'Fixture: latest row per key',
  question: 'How do you keep only the latest version of each key?',
  needs: [],
  engines: ['duckdb'],
  reference: { latestPerKey },
  pitfalls: [
    {
      name: 'max-value',
      title: 'takes MAX(value) instead of the latest row’s value',
      description: 'GROUP BY key with MAX on every column mixes rows.',
      impl: {
        latestPerKey: (db, s, t) => db.exec(`INSERT INTO ${t} SELECT key, MAX(version), MAX(value) FROM ${s} GROUP BY key`),
      },
    },
    {
      name: 'copy-all',
      title: 'copies every version',
      description: 'Forgets to deduplicate.',
      impl: { latestPerKey: (db, s, t) => db.exec(`INSERT INTO ${t} SELECT key, version, value FROM ${s}`) },
    },
  ],
  newState: () => ({ source: [], result: [] }),
  steps: [
    {
      title: 'Load versions and keep the latest per key',
      async run(ctx, impl, state) {
        const db = await ctx.engines.duckdb();
        const rng = new Prng(ctx.seed);
        for (let key = 1; key <= Math.max(3, Math.round(20 * ctx.scale)); key++) {
          for (let version = 1; version <= rng.int(1, 4); version++) state.source.push({ key, version, value: rng.int(0, 1000) });
        }
        await db.exec('CREATE TABLE src (key INTEGER, version INTEGER, value INTEGER); CREATE TABLE dst (key INTEGER, version INTEGER, value INTEGER)');
        await db.insertRows('src', ['key', 'version', 'value'], state.source.map((r) => [r.key, r.version, r.value]));
        await impl.latestPerKey(db, 'src', 'dst');
        state.result = await db.query<Rec>('SELECT key, version, value FROM dst ORDER BY key, version');
        ctx.out.table(state.result.slice(0, 3));
      },
    },
  ],
  claims: [
    {
      id: 'one-row-per-key',
      title: 'One row per key',
      statement: 'The target holds exactly one row for every key of the source.',
      check: ({ source, result }) => {
        const keys = new Set(source.map((r) => r.key)).size;
        return { passed: result.length === keys && new Set(result.map((r) => r.key)).size === keys, evidence: { keys, rows: result.length } };
      },
    },
    {
      id: 'latest-value',
      title: 'Latest version wins',
      statement: 'Each key keeps the value of its highest version.',
      check: ({ source, result }) => {
        const latest = new Map<number, Rec>();
        for (const r of source) if ((latest.get(r.key)?.version ?? 0) < r.version) latest.set(r.key, r);
        const wrong = result.filter((r) => latest.get(r.key)?.value !== r.value || latest.get(r.key)?.version !== r.version);
        const w = wrong[0];
        return {
          passed: wrong.length === 0 && result.length > 0,
          evidence: { wrong: wrong.length },
          counterexample: w ? `key ${w.key}: got version ${w.version} value ${w.value}, latest is version ${latest.get(w.key)?.version} value ${latest.get(w.key)?.value}` : undefined,
        };
      },
    },
  ],
  metrics: (s) => ({ fixture_rows: s.result.length }),
  checkScale: (scale) => scale * 0.5,
  charts: (s) => [
    { kind: 'bar', id: 'versions', title: 'Versions per key', x: 'key', y: 'versions', series: [{ name: 'versions', points: [...new Set(s.source.map((r) => r.key))].map((k) => ({ x: k, y: s.source.filter((r) => r.key === k).length })) }] },
    { kind: 'line', id: 'values', title: 'Value by version', x: 'version', y: 'value', series: [{ name: 'key 1', points: s.source.filter((r) => r.key === 1).map((r) => ({ x: r.version, y: r.value })) }, { name: 'key 2', points: s.source.filter((r) => r.key === 2).map((r) => ({ x: r.version, y: r.value })) }] },
    { kind: 'timeline', id: 'timeline', title: 'Versions of key 1', rows: [{ label: 'key 1', spans: [{ from: '2024-01-01', to: '2024-02-01', text: 'v1' }, { from: '2024-02-01', to: null, text: 'v2 (current)' }] }, { label: 'key 2', spans: [{ from: '2024-01-15', to: null, text: 'v1' }] }] },
    { kind: 'tree', id: 'tree', title: 'Bisection', root: { label: '[0,100)', status: 'differs', children: [{ label: '[0,50)', status: 'equal' }, { label: '[50,100)', status: 'differs', children: [{ label: '[50,75)', status: 'fetched' }, { label: '[75,100)', status: 'equal' }] }] } },
  ],
  exercise: {
    stub: 'tests/exercise-fixture/stub.ts',
    solution: 'tests/exercise-fixture/solution.ts',
    load: (mod) => {
      if (typeof mod.latestPerKey !== 'function') throw new Error('export latestPerKey(db, source, target) is missing');
      return { latestPerKey: mod.latestPerKey as Impl['latestPerKey'] };
    },
    hints: ['Rank the versions of each key: ROW_NUMBER() OVER (PARTITION BY key ORDER BY version DESC).', 'Keep the rows ranked 1.'],
    nudges: { 'one-row-per-key': 'Each key must appear once: deduplicate.', 'latest-value': 'Take the whole latest row, not the max of each column.' },
  },
};
