/**
 * How the scd2 claims tell a failure: one key's source rows and versions, up to the failing date
 * (the smallest story that shows the defect), and the index the checks read the source through.
 */
import type { ClaimResult } from '../contract.ts';
import { OPEN_END } from '../../pipelines/scd2/schema.ts';
import type { CustomerRow } from '../../fixtures/scd2.ts';
import type { DimRow, ScenarioEvidence } from './scenario.ts';

export const v = (x: string | null) => x ?? '∅';
export const attrs = (r: { segment: string | null; city: string | null }) => `segment=${v(r.segment)} city=${v(r.city)}`;

export function fmtVersion(r: DimRow, withEmail = true): string {
  const to = r.valid_to === OPEN_END ? 'open' : r.valid_to;
  const flags = [r.is_current ? 'current' : '', r.is_deleted ? 'deleted' : ''].filter(Boolean).join(',');
  return `#${r.customer_sk} [${r.valid_from}, ${to}) ${attrs(r)}${withEmail ? ` email=${v(r.email)}` : ''}${flags ? ` (${flags})` : ''}`;
}

/** The key's source rows up to `upTo`, consecutive equal days merged, and its versions (email only when it matters). */
export function keyStory(ev: ScenarioEvidence, id: number, upTo?: string, withEmail = false): string {
  const days: string[] = [];
  let last = '';
  for (const s of ev.snapshots) {
    if (upTo && s.date > upTo) break;
    const r = s.rows.find((x) => x.customer_id === id);
    const text = r ? `${attrs(r)}${withEmail ? ` email=${v(r.email)}` : ''}` : 'absent';
    if (text !== last) days.push(`${s.date} ${text}`);
    last = text;
  }
  const versions = ev.dim.filter((r) => r.customer_id === id && (!upTo || r.valid_from <= upTo)).map((r) => fmtVersion(r, withEmail));
  return `customer ${id} — source: ${days.join(' · ') || 'never present'} — versions: ${versions.join(' · ') || 'none'}`;
}

const indexes = new WeakMap<ScenarioEvidence, Map<string, Map<number, CustomerRow>>>();
/** The source row of `id` on `date` (undefined when absent), through an index built once per run. */
export function src(ev: ScenarioEvidence, date: string, id: number): CustomerRow | undefined {
  let idx = indexes.get(ev);
  if (!idx) {
    idx = new Map(ev.snapshots.map((s) => [s.date, new Map(s.rows.map((r) => [r.customer_id, r]))]));
    indexes.set(ev, idx);
  }
  return idx.get(date)?.get(id);
}

export function versionsOf(ev: ScenarioEvidence): Map<number, DimRow[]> {
  const by = new Map<number, DimRow[]>();
  for (const r of ev.dim) by.set(r.customer_id, [...(by.get(r.customer_id) ?? []), r]);
  for (const list of by.values()) list.sort((a, b) => (a.valid_from < b.valid_from ? -1 : a.valid_from > b.valid_from ? 1 : a.customer_sk - b.customer_sk));
  return by;
}

export interface Violation {
  date: string;
  id: number;
  what: string;
  /** The story needs the Type 1 email (Type 1 violations). */
  email?: boolean;
}

/** Earliest date first; among those, the key with the fewest versions: the shortest story. */
function smallest(ev: ScenarioEvidence, vs: Violation[]): Violation | undefined {
  const count = new Map<number, number>();
  for (const r of ev.dim) count.set(r.customer_id, (count.get(r.customer_id) ?? 0) + 1);
  const n = (id: number) => count.get(id) ?? 0;
  return [...vs].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : n(a.id) - n(b.id) || a.id - b.id))[0];
}

export function result(ev: ScenarioEvidence, vs: Violation[], evidence: ClaimResult['evidence']): ClaimResult {
  const first = smallest(ev, vs);
  return {
    passed: vs.length === 0,
    evidence,
    ...(first ? { counterexample: `${first.date}: ${first.what}. ${keyStory(ev, first.id, first.date, first.email)}` } : {}),
  };
}
