/**
 * The file-drift claims of the schema-evolution lab, as pure checks over one scenario run. The
 * ground truth is the fixture's: which drift each drop carries, whether it is breaking, every
 * value it wrote (exact text). Each failing check names the first file, row and column that show it.
 */
import type { ClaimResult } from '../contract.ts';
import { expectedContracts, type DropSpec, type SourceRow } from '../../fixtures/schema-evolution.ts';
import type { ScenarioEvidence, TargetRow } from './scenario.ts';
import { parseType } from '../../pipelines/schema-evolution/types.ts';

const show = (v: string | null | undefined) => (v === undefined ? '(no such column)' : v === null ? 'NULL' : v);

/** The leaves of a source row: a struct's fields as `col.field` (all NULL when the struct is). */
function sourceLeaves(spec: DropSpec, row: SourceRow): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const c of spec.columns) {
    const v = row[c.name];
    if (c.type.startsWith('STRUCT')) {
      for (const m of c.type.matchAll(/(\w+) VARCHAR/g)) out[`${c.name}.${m[1]}`] = v === null || typeof v !== 'object' ? null : (v[m[1]!] ?? null);
    } else out[c.name] = v === null || typeof v === 'string' ? v : JSON.stringify(v);
  }
  return out;
}

const NUMBER = /^-?\d+(\.\d+)?$/;
/** Numbers compare by value at any scale (12.50 = 12.5000), everything else exactly. */
function canonical(v: string): string {
  if (!NUMBER.test(v)) return v;
  let s = v.includes('.') ? v.replace(/0+$/, '').replace(/\.$/, '') : v;
  s = s.replace(/^(-?)0+(?=\d)/, '$1');
  return s === '-0' ? '0' : s;
}
const sameValue = (a: string | null, b: string | null | undefined) => (a === null ? b === null : b !== null && b !== undefined && canonical(a) === canonical(b));

export interface Mismatch {
  file: string;
  orderId: string;
  column: string;
  source: string | null;
  target: string | null | undefined;
}

interface Comparison {
  landed: Map<string, number>;
  compared: number;
  mismatches: Mismatch[];
  specs: Map<string, DropSpec>;
}

const comparisons = new WeakMap<ScenarioEvidence, Comparison>();
/** Every landed value against the value its file carried, by (file, order_id, column name). Built once per run. */
export function compareWithSource(ev: ScenarioEvidence): Comparison {
  const cached = comparisons.get(ev);
  if (cached) return cached;
  const specs = new Map(ev.plan.map((s) => [s.name, s]));
  const source = new Map<string, Map<string, SourceRow>>();
  for (const s of ev.plan) source.set(s.name, new Map(s.rows.map((r) => [String(r.order_id), r])));
  const landed = new Map<string, number>();
  const mismatches: Mismatch[] = [];
  let compared = 0;
  for (const row of ev.rows) {
    landed.set(row._file, (landed.get(row._file) ?? 0) + 1);
    const spec = specs.get(row._file);
    const orderId = row.values.order_id ?? null;
    const src = spec && orderId !== null ? source.get(spec.name)!.get(canonical(orderId)) : undefined;
    if (!spec || !src) {
      mismatches.push({ file: row._file, orderId: show(orderId), column: 'order_id', source: null, target: orderId });
      continue;
    }
    for (const [col, want] of Object.entries(sourceLeaves(spec, src))) {
      compared++;
      if (!sameValue(want, row.values[col])) mismatches.push({ file: spec.name, orderId: orderId!, column: col, source: want, target: row.values[col] });
    }
  }
  const result = { landed, compared, mismatches, specs };
  comparisons.set(ev, result);
  return result;
}

const fmtMismatch = (m: Mismatch) => `${m.column} = ${show(m.target)} (the file had ${show(m.source)})`;

/** A row's mismatches on one line: `d05_orders.parquet order 500001: customer_id = 7 (the file had 31244), quantity = …`. */
function rowStory(ms: readonly Mismatch[], first: Mismatch): string {
  const same = ms.filter((m) => m.file === first.file && m.orderId === first.orderId);
  return `${first.file} order ${first.orderId}: ${same.map(fmtMismatch).join(', ')}`;
}

function verdict(violations: string[], evidence: ClaimResult['evidence']): ClaimResult {
  return { passed: violations.length === 0, evidence, ...(violations[0] ? { counterexample: violations[0] + (violations.length > 1 ? ` (+${violations.length - 1} more)` : '') } : {}) };
}

/** Leaf paths each non-breaking drop adds to what earlier ones had (the baseline adds none). */
function addedPaths(plan: readonly DropSpec[]): { path: string; at: number }[] {
  const known = new Set<string>();
  const out: { path: string; at: number }[] = [];
  let baseline = true;
  plan.forEach((spec, i) => {
    if (spec.breaking) return;
    for (const path of Object.keys(sourceLeaves(spec, spec.rows[0] ?? {}))) {
      if (!known.has(path) && !baseline) out.push({ path, at: i });
      known.add(path);
    }
    baseline = false;
  });
  return out;
}

/** Claim 1: an added nullable column is NULL in old rows, carries values in new ones; rows already loaded never change. */
export function additiveFlows(ev: ScenarioEvidence): ClaimResult {
  const { mismatches } = compareWithSource(ev);
  const vs: string[] = [];
  const added = addedPaths(ev.plan);
  const rowsByFile = new Map<string, TargetRow[]>();
  for (const r of ev.rows) rowsByFile.set(r._file, [...(rowsByFile.get(r._file) ?? []), r]);
  let oldNonNull = 0;
  let newWrong = 0;
  for (const { path, at } of added) {
    const spec = ev.plan[at]!;
    if (!ev.rows.some((r) => path in r.values)) {
      vs.push(`${spec.name} added ${path}, but the table has no such column`);
      continue;
    }
    for (const old of ev.plan.slice(0, at)) {
      const hit = (rowsByFile.get(old.name) ?? []).find((r) => r.values[path] !== null && r.values[path] !== undefined);
      if (hit) {
        oldNonNull++;
        vs.push(`${path} was added by ${spec.name}, yet ${old.name} order ${hit.values.order_id} (loaded before) has ${path} = ${hit.values[path]}`);
      }
    }
    const wrong = mismatches.filter((m) => m.column === path);
    newWrong += wrong.length;
    if (wrong[0]) vs.push(`${path} (added by ${spec.name}): ${rowStory(wrong, wrong[0])}`);
  }
  let changedLoads = 0;
  for (const run of ev.runs) {
    if (run.before.rows !== run.after.rows || run.before.checksum !== run.after.checksum) {
      changedLoads++;
      vs.push(
        `loading ${run.file} changed the rows already in the table: ${run.before.rows} rows / checksum ${run.before.checksum} before, ` +
          `${run.after.rows} rows / ${run.after.checksum} after (same rows, the columns they had)`,
      );
    }
  }
  return verdict(vs, { added_columns: added.map((a) => a.path).join(', '), old_rows_non_null: oldNonNull, new_values_wrong: newWrong, loads_that_changed_existing_rows: changedLoads });
}

/** The one line a file's load left (log, else the loader's outcome, else what it threw). */
function quarantineLineOf(ev: ScenarioEvidence, file: string): string | undefined {
  const log = ev.log.find((l) => l.file === file && l.status === 'quarantined')?.error;
  const run = ev.runs.find((r) => r.file === file);
  return log ?? run?.outcome?.error ?? run?.threw;
}

/** Claim 2: a breaking file lands nothing and gets one line naming file, column, old and new type; every other file lands whole. */
export function breakingStopped(ev: ScenarioEvidence): ClaimResult {
  const { landed } = compareWithSource(ev);
  const vs: string[] = [];
  let breakingLanded = 0;
  let clearLines = 0;
  let othersLanded = 0;
  let partial = 0;
  const others = ev.plan.filter((s) => !s.breaking);
  for (const spec of ev.plan) {
    const n = landed.get(spec.name) ?? 0;
    if (n > 0 && n < spec.rows.length) partial++;
    if (spec.breaking) {
      const f = spec.fault!;
      if (n > 0) {
        breakingLanded++;
        const sample = ev.rows.find((r) => r._file === spec.name);
        vs.push(`${spec.name} (${spec.what}) landed ${n} of ${spec.rows.length} rows; order ${sample?.values.order_id}: ${f.column} = ${show(sample?.values[f.column])}`);
        continue;
      }
      const line = quarantineLineOf(ev, spec.name);
      const ok = line !== undefined && !line.includes('\n') && [spec.name, f.column, f.from, f.to].every((w) => line.includes(w));
      if (ok) clearLines++;
      else vs.push(`${spec.name} (${spec.what}) was stopped, but its line does not name file, column ${f.column}, ${f.from} and ${f.to}: ${line ?? '(none)'}`);
    } else if (n === spec.rows.length) othersLanded++;
    else {
      const run = ev.runs.find((r) => r.file === spec.name);
      vs.push(`${spec.name} (${spec.what}) should land, but ${n} of ${spec.rows.length} rows did: ${run?.threw ?? run?.outcome?.error ?? 'no error given'}`);
    }
  }
  return verdict(vs, {
    files: ev.plan.length,
    breaking_files: ev.plan.length - others.length,
    breaking_rows_landed: breakingLanded,
    quarantined_with_clear_line: clearLines,
    other_files_landed: othersLanded,
    other_files: others.length,
    partial_files: partial,
  });
}

const REORDERED = new Set(['csv-header-reordered', 'column-order-swapped']);

/** Claim 3: a file with its columns in another order loads every value into the column of its name. */
export function byName(ev: ScenarioEvidence): ClaimResult {
  const { landed, mismatches } = compareWithSource(ev);
  const shifted: string[] = [];
  const missing: string[] = [];
  const files = ev.plan.filter((s) => REORDERED.has(s.drift));
  let wrong = 0;
  for (const spec of files) {
    const n = landed.get(spec.name) ?? 0;
    const ms = mismatches.filter((m) => m.file === spec.name);
    wrong += ms.length;
    if (ms[0]) shifted.push(`${spec.what}: ${rowStory(ms, ms[0])}`);
    else if (n !== spec.rows.length) {
      const run = ev.runs.find((r) => r.file === spec.name);
      missing.push(`${spec.name} (${spec.what}) landed ${n} of ${spec.rows.length} rows: ${run?.threw ?? run?.outcome?.error ?? 'no error given'}`);
    }
  }
  // A value in the wrong column is the story this claim tells first; a file that did not land, second.
  return verdict([...shifted, ...missing], { reordered_files: files.map((f) => f.name).join(', '), rows_landed: files.reduce((n, f) => n + (landed.get(f.name) ?? 0), 0), values_in_wrong_column: wrong });
}

/** Claim 4: widened columns end at the producers' widest exact type and every loaded value equals the file's. */
export function wideningLossless(ev: ScenarioEvidence): ClaimResult {
  const { compared, mismatches } = compareWithSource(ev);
  const vs: string[] = [];
  const last = [...expectedContracts(ev.plan).values()].pop();
  let wrongTypes = 0;
  const typeStories: { story: string; kindChanged: boolean }[] = [];
  for (const want of last?.columns ?? []) {
    const got = ev.columns.find((c) => c.name === want.name);
    const spelled = ev.spelling[want.type] ?? want.type;
    if (got?.type !== spelled) {
      wrongTypes++;
      const kindChanged = !got || parseType(got.type).kind !== parseType(spelled).kind;
      typeStories.push({ kindChanged, story: `${want.name} is ${got?.type ?? 'missing'} in the table; the widest type the producers sent was ${want.type}${spelled !== want.type ? ` (${spelled} here)` : ''}` });
    }
  }
  // A column that changed kind (DECIMAL → DOUBLE, INTEGER → VARCHAR) before one merely wider than needed.
  vs.push(...typeStories.sort((a, b) => Number(b.kindChanged) - Number(a.kindChanged)).map((t) => t.story));
  const first = mismatches[0];
  if (first) vs.unshift(`first value that changed: ${first.file} order ${first.orderId}: ${fmtMismatch(first)}`);
  return verdict(vs, { values_compared: compared, values_changed: mismatches.length, columns_not_at_widest_type: wrongTypes });
}

/** Claim 6: each contract version is recorded with the day it took effect, and each row names the version it loaded under. */
export function schemaHistory(ev: ScenarioEvidence): ClaimResult {
  const expected = expectedContracts(ev.plan);
  const versions = new Map<number, { file: string; date: string; columns: string }>();
  for (const spec of ev.plan) {
    const e = expected.get(spec.name);
    if (e && !versions.has(e.version)) versions.set(e.version, { file: spec.name, date: spec.date, columns: e.columns.map((c) => `${c.name} ${c.type}`).join(', ') });
  }
  const vs: string[] = [];
  if (ev.contract.length !== versions.size) vs.push(`the contract history has ${ev.contract.length} versions; the drops made ${versions.size} (${[...versions.values()].map((v) => v.file).join(', ')})`);
  for (const [v, want] of versions) {
    const got = ev.contract.find((c) => c.version === v);
    if (!got) vs.push(`no contract version ${v} (taken effect with ${want.file} on ${want.date})`);
    else if (got.effective_date !== want.date || got.columns !== want.columns)
      vs.push(`contract version ${v} says ${got.effective_date}: ${got.columns}; it took effect ${want.date} with ${want.file}: ${want.columns}`);
  }
  let wrongRows = 0;
  let firstWrong: TargetRow | undefined;
  for (const r of ev.rows) {
    const want = expected.get(r._file)?.version;
    if (want !== undefined && r._contract_version !== want) {
      wrongRows++;
      firstWrong ??= r;
    }
  }
  if (firstWrong) vs.push(`${firstWrong._file} order ${firstWrong.values.order_id} says contract version ${show(String(firstWrong._contract_version))}; it loaded under version ${expected.get(firstWrong._file)!.version}`);
  const landedFiles = ev.plan.filter((s) => expected.has(s.name));
  const answered = ev.lookups.filter((l) => l.columns !== null && l.version === expected.get(l.file)?.version).length;
  if (answered < landedFiles.length) vs.push(`the history query answered ${answered} of ${landedFiles.length} "which schema was this row loaded under" lookups`);
  const sample = ev.lookups.find((l) => l.version !== null && l.version > 1);
  return verdict(vs, {
    versions: ev.contract.length,
    expected_versions: versions.size,
    rows_with_wrong_version: wrongRows,
    lookups_answered: answered,
    example: sample ? `order ${sample.order_id} (${sample.file}) → v${sample.version} since ${sample.effective_date}` : null,
  });
}
