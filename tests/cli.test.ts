import { describe, expect, inject, it } from 'vitest';
import { mkdtempSync, existsSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from './cli-run.ts';
import { parseArgs } from '../scripts/cli-args.ts';
import { UsageError } from '../pipelines/errors.ts';
import { DuckDbEngine } from '../pipelines/engines/duckdb/driver.ts';
import { resolveEngine } from '../labs/runner.ts';
import { smokeLab } from '../labs/smoke/lab.ts';
import { claimsHold, claimsTally } from '../labs/contract.ts';

const shared = () => ({ PG_URL: inject('PG_URL'), KAFKA_BROKERS: inject('KAFKA_BROKERS') });
/** Bad input must end in exactly one line on stderr (no stack-trace wall). */
const oneLine = (s: string) => s.split('\n').filter((l) => l.trim() && !l.startsWith('npm warn')).length;

describe('CLI: bad input gets one clear line and a non-zero exit', () => {
  it('unknown lab', async () => {
    const r = await runCli(['nope']);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(1);
    expect(r.stderr).toMatch(/unknown lab "nope" \(known: smoke/);
  });

  it.each([
    [['smoke', '--seed', 'abc'], /--seed must be a whole number/],
    [['smoke', '--scale', '-1'], /--scale must be a number above 0/],
    [['smoke', '--engine', 'oracle'], /--engine must be one of/],
    [['smoke', '--provision', 'cloud'], /--provision must be one of/],
    [['smoke', '--frobnicate'], /unknown flag --frobnicate/],
    [['smoke', '--seed'], /--seed needs a value/],
    [['cdc', '--capture', 'nope'], /--capture must be one of ours\|debezium, got "nope"/],
    [['smoke', '--capture', 'debezium'], /lab smoke takes no --capture/],
  ])('bad flag %j', async (args, message) => {
    const r = await runCli(args as string[]);
    expect(r.code).toBe(2);
    expect(oneLine(r.stderr)).toBe(1);
    expect(r.stderr).toMatch(message as RegExp);
  });

  it('unreachable PG_URL / KAFKA_BROKERS in external mode name the engine and the address', async () => {
    const pg = await runCli(['smoke', '--provision', 'external'], { PG_URL: 'postgres://lab@127.0.0.1:1/none', KAFKA_BROKERS: inject('KAFKA_BROKERS') });
    expect(pg.code).toBe(3);
    expect(oneLine(pg.stderr)).toBe(1);
    expect(pg.stderr).toMatch(/PostgreSQL: PG_URL=postgres:\/\/lab@127\.0\.0\.1:1\/none does not answer/);
    const kafka = await runCli(['smoke', '--provision', 'external'], { PG_URL: inject('PG_URL'), KAFKA_BROKERS: '127.0.0.1:1' });
    expect(kafka.code).toBe(3);
    expect(kafka.stderr).toMatch(/Kafka: KAFKA_BROKERS=127\.0\.0\.1:1 does not answer/);
  });

  it('a missing engine says what is missing and how to get it (no Java on PATH, no Docker, no KAFKA_BROKERS)', async () => {
    const emptyPath = mkdtempSync(join(tmpdir(), 'de-lab-nopath-'));
    try {
      const r = await runCli(['smoke'], { PATH: emptyPath, PG_URL: '', KAFKA_BROKERS: '', DOCKER_HOST: 'unix:///nonexistent.sock' });
      expect(r.code).toBe(3);
      expect(r.stderr.trim().split('\n').filter((l) => l.startsWith('de-lab:'))).toEqual([
        'de-lab: Kafka: KAFKA_BROKERS unset, no Docker daemon, Java 17+ not found — install Java 17 + Maven, or Docker, or set KAFKA_BROKERS',
      ]);
    } finally {
      rmSync(emptyPath, { recursive: true, force: true });
    }
  });

  it('a lab that does not support the engine says so; no lab at all is a usage error', () => {
    expect(() => resolveEngine(smokeLab, 'postgres')).toThrow(/lab smoke does not run on --engine postgres \(supported: duckdb\)/);
    expect(() => parseArgs([])).toThrow(UsageError);
    expect(parseArgs(['smoke', '--scale=2', '--seed', '9'], {})).toMatchObject({ command: 'smoke', scale: 2, seed: 9, provision: 'auto' });
    expect(parseArgs(['smoke'], { LAB_PROVISION: 'local' }).provision).toBe('local');
  });
});

describe('CLI: lab smoke --json satisfies the JSON contract', () => {
  it('prints exactly one JSON object on stdout, logs on stderr, exit 0 iff every claim passed; --out writes <id>.duckdb and <id>.json', async () => {
    const out = mkdtempSync(join(tmpdir(), 'de-lab-cli-out-'));
    try {
      const r = await runCli(['smoke', '--json', '--seed', '11', '--scale', '0.5', '--provision', 'external', '--out', out], shared());
      expect(r.code, r.stderr).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines).toHaveLength(1);
      const report = JSON.parse(lines[0]!);
      expect(Object.keys(report)).toEqual(expect.arrayContaining(['lab', 'seed', 'scale', 'engine', 'provision', 'claims', 'pitfalls', 'metrics', 'durationMs']));
      expect(report).toMatchObject({ lab: 'smoke', seed: 11, scale: 0.5, engine: 'duckdb', provision: 'external' });
      for (const c of report.claims) {
        expect(Object.keys(c)).toEqual(expect.arrayContaining(['id', 'statement', 'passed', 'evidence']));
        expect(c.passed).toBe(true);
      }
      expect(report.pitfalls).toEqual([expect.objectContaining({ name: 'slot-after-writes', rejectedBy: ['pg-logical-slot'] })]);
      for (const v of Object.values(report.metrics)) expect(typeof v).toBe('number');
      // Where the time went: engines, every step of the reference run in order, the pitfalls.
      const { smokeLab } = await import('../labs/smoke/lab.ts');
      expect(report.timingsMs.map((t: { phase: string }) => t.phase)).toEqual(['engines', ...smokeLab.steps.map((s) => s.title), 'pitfalls']);
      for (const t of report.timingsMs) expect(t.ms).toBeGreaterThanOrEqual(0);
      expect(r.stderr).toMatch(/1\. DuckDB: COPY a table to Parquet/); // human output went to stderr

      expect(JSON.parse(readFileSync(join(out, 'smoke.json'), 'utf8')).lab).toBe('smoke');
      expect(existsSync(join(out, 'smoke.duckdb'))).toBe(true);
      const db = await DuckDbEngine.open(join(out, 'smoke.duckdb'));
      try {
        const rows = await db.query<{ engine: string }>('SELECT engine FROM smoke_checks ORDER BY engine');
        expect(rows.map((x) => x.engine)).toEqual(['duckdb', 'kafka', 'postgres']);
      } finally {
        await db.close();
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('the same seed gives the same claims and evidence', async () => {
    const a = JSON.parse((await runCli(['smoke', '--json', '--seed', '5', '--scale', '0.2', '--provision', 'external'], shared())).stdout);
    const b = JSON.parse((await runCli(['smoke', '--json', '--seed', '5', '--scale', '0.2', '--provision', 'external'], shared())).stdout);
    expect(a.claims).toEqual(b.claims);
    expect(a.pitfalls).toEqual(b.pitfalls);
  });
});

describe('claims not judged', () => {
  it('a claim not judged neither passes nor fails a run: the tally counts judged claims and names the rest', () => {
    const c = (passed: boolean, skipped?: boolean) => ({ id: 'x', title: 'x', statement: 'x', passed, evidence: {}, ...(skipped ? { skipped, notJudged: 'bar set at 1M rows' } : {}) });
    expect(claimsHold([c(true), c(false, true)])).toBe(true);
    expect(claimsHold([c(true), c(false)])).toBe(false);
    expect(claimsTally([c(true), c(true), c(false, true)])).toBe('2/2, 1 not judged');
    expect(claimsTally([c(true), c(false)], ' claims hold')).toBe('1/2 claims hold');
  });
});
