import { describe, expect, it } from 'vitest';
import { Reporter } from '../labs/reporter.ts';

/** A terminal of `columns` width that records what was written. */
function terminal(columns: number) {
  const writes: string[] = [];
  return { writes, stream: { isTTY: true, columns, write: (s: string) => writes.push(s) } };
}

describe('terminal output (live demos)', () => {
  it('a table printed while a step\'s progress tick is on screen starts on a cleared line', async () => {
    const t = terminal(100);
    const out = new Reporter(t.stream);
    await out.progress('slow step', async () => {
      await new Promise((r) => setTimeout(r, 1150)); // one tick
      out.table([{ a: 1, b: 'x' }]);
    });
    const tick = t.writes.findIndex((w) => w.includes('… slow step'));
    expect(tick).toBeGreaterThanOrEqual(0);
    // The next write after the tick clears it; the table header follows on its own line.
    expect(t.writes[tick + 1]).toBe('\r\x1b[K');
    expect(t.writes[tick + 2]).toMatch(/^ {4}a {2}b\n$/);
  });

  it('a table fits the terminal width: the widest text column gives way, numbers stay whole', () => {
    const t = terminal(60);
    const out = new Reporter(t.stream);
    out.table([{ name: 'n'.repeat(50), what: 'w'.repeat(40), count: 1234567 }]);
    const lines = t.writes.join('').split('\n').filter(Boolean);
    for (const l of lines) expect(l.length, l).toBeLessThanOrEqual(60);
    expect(lines[2]).toContain('1234567');
    expect(lines[2]).toContain('…');
  });

  it('piped output is never cut or wrapped', () => {
    const writes: string[] = [];
    const out = new Reporter({ write: (s: string) => writes.push(s) });
    out.table([{ name: 'n'.repeat(120) }]);
    expect(writes.join('')).toContain('n'.repeat(71) + '…'); // only the fixed cell cap
  });
});

describe('the report\'s record of each step', () => {
  it('keeps each step\'s notes, tables and the SQL sent through the engine set (transactions included), distinct, in order', async () => {
    const { Engines } = await import('../pipelines/engines/index.ts');
    const engines = new Engines({ mode: 'local', log: () => undefined });
    const out = Reporter.silent();
    try {
      out.startRecording();
      engines.onStatement = (sql) => out.sql(sql);
      const db = await engines.duckdb();
      out.step('make a table');
      out.note('one row');
      await db.exec('CREATE TABLE t (x INTEGER)');
      await db.transaction(async (tx) => {
        await tx.exec('INSERT INTO t VALUES (1)');
        await tx.exec('INSERT INTO t VALUES (1)');
      });
      out.table([{ x: 1, big: 12n }]);
      out.step('read it');
      await db.query('SELECT x FROM t');
      const steps = out.stopRecording();
      expect(steps.map((s) => s.title)).toEqual(['make a table', 'read it']);
      expect(steps[0]).toMatchObject({ notes: ['one row'], tables: [[{ x: 1, big: '12' }]], sql: ['CREATE TABLE t (x INTEGER)', 'INSERT INTO t VALUES (1)'], statements: 3 });
      expect(steps[1]!.sql).toEqual(['SELECT x FROM t']);
      // Outside a recording nothing is kept.
      out.step('not recorded');
      expect(out.stopRecording()).toEqual([]);
    } finally {
      engines.onStatement = null;
      await engines.stopAll();
    }
  });
});
