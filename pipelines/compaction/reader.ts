/**
 * A table reader as a query engine does it: open the manifest once, then read exactly the files
 * that version names — never a directory listing, never a newer manifest mid-query.
 */
import type { DuckDbEngine } from '../engines/duckdb/driver.ts';
import { errorLine } from '../errors.ts';
import { parquetScan, partitionKey, readManifest, type Fingerprint } from './table.ts';

export interface SnapshotRead extends Fingerprint {
  version: number;
  files: number;
  /** Per-partition rows, for counterexamples. */
  partitions: Map<string, Fingerprint>;
}

/**
 * One read of the table: the manifest once, then per partition rows and the sum of DuckDB's
 * native row hash over exactly the files it names (cheap enough to repeat in a loop).
 */
export async function readSnapshot(db: DuckDbEngine, tableDir: string): Promise<SnapshotRead> {
  const m = readManifest(tableDir);
  const partitions = new Map<string, Fingerprint>();
  if (m.files.length > 0) {
    const rows = await db.query<{ dt: string; hour: number; rows: number; checksum: string }>(
      `SELECT dt, hour, count(*) AS rows, CAST(sum(CAST(hash(event_id, ts, user_id, event_type, amount_cents, country) AS HUGEINT)) AS VARCHAR) AS checksum ` +
        `FROM ${parquetScan(tableDir, m.files)} GROUP BY dt, hour`,
    );
    for (const r of rows) partitions.set(partitionKey(r), { rows: Number(r.rows), checksum: r.checksum });
  }
  let rows = 0;
  let sum = 0n;
  for (const p of partitions.values()) {
    rows += p.rows;
    sum += BigInt(p.checksum);
  }
  return { version: m.version, files: m.files.length, partitions, rows, checksum: sum.toString() };
}

export interface ReaderReport {
  reads: number;
  badReads: number;
  versionsSeen: number[];
  /** The first read that did not see exactly the expected data (a read that saw wrong rows is preferred over one that failed). */
  firstBad: string | null;
}

/**
 * Reads the table over and over (on its own connection or session) and compares every read with the
 * expected (rows, checksum): a compaction must be invisible to it. `probe()` adds one read at a
 * moment of the caller's choosing (the compactor's checkpoints), so the windows between a
 * compactor's steps are always looked at, not only when the loop happens to hit them.
 */
export class ConcurrentReader {
  private stopped = false;
  private loop: Promise<void> = Promise.resolve();
  readonly report: ReaderReport = { reads: 0, badReads: 0, versionsSeen: [], firstBad: null };

  /** `read`: one read of the table as its readers do it (`readSnapshot` here, `readDeltaSnapshot` on Delta). */
  constructor(
    private readonly read: () => Promise<SnapshotRead>,
    private readonly expected: Map<string, Fingerprint>,
  ) {}

  private wrongRows: string | null = null;
  private failed: string | null = null;

  /** Starts the loop; `pauseMs` between reads leaves the compactor CPU on a small machine. */
  start(pauseMs = 20): void {
    this.loop = (async () => {
      while (!this.stopped) {
        await this.probe('loop');
        await new Promise((r) => setTimeout(r, pauseMs));
      }
    })();
  }

  async probe(label: string): Promise<void> {
    this.report.reads += 1;
    try {
      const r = await this.read();
      if (!this.report.versionsSeen.includes(r.version)) this.report.versionsSeen.push(r.version);
      const keys = [...new Set([...this.expected.keys(), ...r.partitions.keys()])].sort();
      const wrong = keys.find((k) => this.expected.get(k)?.rows !== r.partitions.get(k)?.rows || this.expected.get(k)?.checksum !== r.partitions.get(k)?.checksum);
      if (wrong) {
        const e = this.expected.get(wrong)?.rows ?? 0;
        const got = r.partitions.get(wrong)?.rows ?? 0;
        const total = [...this.expected.values()].reduce((s, p) => s + p.rows, 0);
        this.report.badReads += 1;
        this.wrongRows ??= `a ${label} read of version ${r.version} saw ${r.rows} rows, expected ${total}: ${wrong} had ${got} of its ${e} rows${got === e ? ' (checksum differs)' : ''}`;
      }
    } catch (err) {
      this.report.badReads += 1;
      this.failed ??= `a ${label} read failed: ${errorLine(err)}`;
    }
    this.report.firstBad = this.wrongRows ?? this.failed;
  }

  async stop(): Promise<ReaderReport> {
    this.stopped = true;
    await this.loop;
    return this.report;
  }
}
