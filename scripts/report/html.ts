/**
 * The HTML report: reports/index.html (a summary, then every lab's section) and reports/<lab>.html
 * (one lab). Claims with their evidence, pitfalls with their counterexamples, the lab's charts as
 * inline SVG. One self-contained file per page: inline CSS, no script, no CDN — it opens offline.
 *
 * Each run's report is kept as reports/data/<lab>.json, so running labs one at a time
 * (`npm run lab -- <id> --report`) builds up one index. Every file is written aside, then renamed.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { claimsHold, claimsTally, type AnyLab, type LabReport, type StepRecord } from '../../labs/contract.ts';
import { LABS } from '../../labs/registry.ts';
import { formatValue } from '../../labs/reporter.ts';
import { esc, renderChart } from './charts.ts';

export interface StoredReport {
  generatedAt: string;
  report: LabReport;
}

const CSS = `
:root{--ok:#047857;--bad:#b91c1c;--muted:#6b7280;--line:#e5e7eb;--bg:#f9fafb}
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#111827;background:var(--bg)}
main{max-width:1180px;margin:0 auto;padding:20px 24px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:21px;margin:0}h3{font-size:16px;margin:22px 0 8px}
a{color:#1d4ed8}
.sub{color:var(--muted);margin:0 0 16px}
nav.top{font-size:14px;margin-bottom:8px}
section.lab{background:#fff;border:1px solid var(--line);border-radius:10px;padding:18px 22px;margin:22px 0;box-shadow:0 1px 2px rgba(0,0,0,.04)}
.q{font-size:16px;margin:8px 0 4px}
.meta{color:var(--muted);font-size:13px;margin:0}
.badge{display:inline-block;font-size:13px;font-weight:600;padding:2px 9px;border-radius:999px;margin-left:8px;vertical-align:middle;background:#eef2ff;color:#3730a3}
.badge.ok{background:#d1fae5;color:var(--ok)}.badge.bad{background:#fee2e2;color:var(--bad)}
table{border-collapse:collapse;width:100%;font-size:14px}
th,td{text-align:left;vertical-align:top;padding:7px 9px;border-bottom:1px solid var(--line)}
th{font-size:12px;text-transform:uppercase;letter-spacing:.04em;color:var(--muted);font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.mark-ok{color:var(--ok);font-weight:700;font-size:17px}.mark-bad{color:var(--bad);font-weight:700;font-size:17px}.mark-skip{color:var(--muted)}.nj{color:var(--muted);font-size:12.5px;margin-top:4px}
.stmt{color:#374151;font-size:13px;margin-top:2px}
code,.ev{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.ev{display:inline-block;background:#f3f4f6;border-radius:4px;padding:1px 6px;margin:1px 4px 1px 0;white-space:nowrap}
.cx{font:12.5px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#fff7ed;border-left:3px solid #f97316;padding:4px 8px;margin-top:4px;white-space:pre-wrap;word-break:break-word}
.caught{color:var(--ok);font-weight:600}.missed{color:var(--bad);font-weight:700}
.charts{display:grid;grid-template-columns:repeat(auto-fit,minmax(460px,1fr));gap:16px;margin-top:14px}
figure.chart{margin:0;border:1px solid var(--line);border-radius:8px;padding:10px 12px;background:#fff;min-width:0}
figure.chart.wide{grid-column:1/-1}
figure.chart figcaption{font-weight:600;font-size:14px;margin-bottom:6px}
.chart-body{overflow-x:auto}
.chart-body svg{display:block;font-family:system-ui,sans-serif}
.empty{color:var(--muted)}
details summary{cursor:pointer;color:var(--muted);font-size:13px}
.step{margin:10px 0 14px}.step h4{font-size:14.5px;margin:0 0 4px}.step .note{color:#374151;font-size:13px;margin:2px 0}
.step table{width:auto;margin:6px 0}.step td,.step th{padding:4px 10px}
pre.sql{font:12px/1.45 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f8fafc;border:1px solid var(--line);border-radius:6px;padding:8px 10px;overflow-x:auto;white-space:pre}
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title>
<style>${CSS}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

const caughtCount = (r: LabReport) => r.pitfalls.filter((p) => p.rejectedBy.length > 0).length;

function evidence(e: Record<string, unknown>): string {
  const entries = Object.entries(e);
  if (entries.length === 0) return '<span class="empty">–</span>';
  return entries.map(([k, v]) => `<span class="ev">${esc(k)}=${esc(formatValue(v))}</span>`).join(' ');
}

/** A recorded step: its title, notes, tables and (folded) the SQL it sent. */
function renderStep(step: StepRecord, n: number): string {
  const table = (rows: Record<string, unknown>[]) => {
    const cols = Object.keys(rows[0] ?? {});
    const num = (v: unknown) => typeof v === 'number';
    return `<table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join('')}</tr></thead><tbody>${rows
      .map((r) => `<tr>${cols.map((c) => `<td${num(r[c]) ? ' class="num"' : ''}>${esc(formatValue(r[c]))}</td>`).join('')}</tr>`)
      .join('')}</tbody></table>`;
  };
  const sql = step.sql.length
    ? `<details><summary>SQL this step sent (${step.statements} statement${step.statements === 1 ? '' : 's'}${step.statements > step.sql.length ? `, ${step.sql.length} distinct shown` : ''})</summary>${step.sql.map((q) => `<pre class="sql">${esc(q)}</pre>`).join('')}</details>`
    : '';
  return `<div class="step" data-step="${n}"><h4>${n}. ${esc(step.title)}</h4>${step.notes.map((t) => `<p class="note">${esc(t)}</p>`).join('')}${step.tables.map(table).join('')}${sql}</div>`;
}

/** One lab: question, charts, claims with evidence, pitfalls with counterexamples, metrics. */
export function renderLabSection(stored: StoredReport, lab?: AnyLab): string {
  const r = stored.report;
  const allOk = claimsHold(r.claims);
  const claimTitle = new Map(r.claims.map((c) => [c.id, c.title]));
  const question = lab?.question;
  const providers = Object.entries(r.providers ?? {})
    .map(([k, v]) => `${k}: ${v}`)
    .join(', ');
  const charts = r.charts ?? [];
  const claims = r.claims
    .map(
      (c) => `<tr data-claim="${esc(c.id)}">
<td class="${c.skipped ? 'mark-skip' : c.passed ? 'mark-ok' : 'mark-bad'}" aria-label="${c.skipped ? 'not judged' : c.passed ? 'holds' : 'fails'}">${c.skipped ? '–' : c.passed ? '✔' : '✘'}</td>
<td><strong>${esc(c.title)}</strong><div class="stmt">${esc(c.statement)}</div>${c.notJudged ? `<div class="nj">not judged: ${esc(c.notJudged)}</div>` : !c.passed && c.counterexample ? `<div class="cx">${esc(c.counterexample)}</div>` : ''}</td>
<td>${evidence(c.evidence)}</td></tr>`,
    )
    .join('\n');
  const pitfallInfo = new Map((lab?.pitfalls ?? []).map((p) => [p.name, p]));
  const pitfalls = r.pitfalls
    .map((p) => {
      const info = pitfallInfo.get(p.name);
      const by = p.rejectedBy.length
        ? `<span class="caught">rejected by</span> ${p.rejectedBy.map((id) => esc(claimTitle.get(id) ?? id)).join(', ')}`
        : '<span class="missed">NOT CAUGHT</span>';
      return `<tr data-pitfall="${esc(p.name)}">
<td><strong><code>${esc(p.name)}</code></strong><div class="stmt">${esc(p.title)}</div>${info ? `<details><summary>why people write it</summary><div class="stmt">${esc(info.description)}</div></details>` : ''}</td>
<td>${by}${p.error ? `<div class="stmt">threw: ${esc(p.error)}</div>` : ''}</td>
<td>${p.counterexample ? `<div class="cx">${esc(p.counterexample)}</div>` : '<span class="empty">–</span>'}</td></tr>`;
    })
    .join('\n');
  const metrics = Object.entries(r.metrics ?? {});
  return `<section class="lab" id="lab-${esc(r.lab)}" data-lab="${esc(r.lab)}">
<h2>${esc(r.title)} <span class="badge ${allOk ? 'ok' : 'bad'}">${esc(claimsTally(r.claims, ' claims hold'))}</span>${r.pitfalls.length ? `<span class="badge ${caughtCount(r) === r.pitfalls.length ? 'ok' : 'bad'}">${caughtCount(r)}/${r.pitfalls.length} pitfalls rejected</span>` : ''}</h2>
${question ? `<p class="q">Q: ${esc(question)}</p>` : ''}
<p class="meta">lab <code>${esc(r.lab)}</code> · <a href="../labs/${esc(r.lab)}/README.md">lab README</a> (claims → tests, pitfalls, how to run) · seed ${r.seed} · scale ${r.scale} · engine ${esc(r.engine)} · ${esc(providers)} · ${(r.durationMs / 1000).toFixed(1)} s · ${esc(stored.generatedAt.replace('T', ' ').slice(0, 19))} UTC</p>
${charts.length ? `<div class="charts">${charts.map(renderChart).join('\n')}</div>` : ''}
<h3>Claims</h3>
<table class="claims"><thead><tr><th></th><th>claim</th><th>evidence</th></tr></thead><tbody>
${claims}
</tbody></table>
${
  r.pitfalls.length
    ? `<h3>Pitfalls — the same checks on common wrong implementations</h3>
<table class="pitfalls"><thead><tr><th>pitfall</th><th>verdict</th><th>counterexample</th></tr></thead><tbody>
${pitfalls}
</tbody></table>`
    : ''
}
${
  r.steps?.length
    ? `<h3>Steps — what the reference run showed, and the SQL it sent</h3>
<div class="steps">${r.steps.map((st, i) => renderStep(st, i + 1)).join('\n')}</div>`
    : ''
}
${
  metrics.length
    ? `<details><summary>metrics (${metrics.length})</summary><table class="metrics"><tbody>${metrics.map(([k, v]) => `<tr><td><code>${esc(k)}</code></td><td class="num">${esc(formatValue(v))}</td></tr>`).join('')}</tbody></table></details>`
    : ''
}
</section>`;
}

export function renderIndex(stored: StoredReport[], labs: readonly AnyLab[]): string {
  const byId = new Map(labs.map((l) => [l.id, l]));
  const rows = stored
    .map(({ report: r }) => {
      const ok = claimsHold(r.claims);
      return `<tr><td><a href="#lab-${esc(r.lab)}">${esc(r.title)}</a> · <a href="${esc(r.lab)}.html">page</a></td><td class="num ${ok ? 'caught' : 'missed'}">${esc(claimsTally(r.claims))}</td><td class="num">${caughtCount(r)}/${r.pitfalls.length}</td><td class="num">${(r.charts ?? []).length}</td><td class="num">${(r.durationMs / 1000).toFixed(1)}</td></tr>`;
    })
    .join('\n');
  const body = `<h1>de-lab report</h1>
<p class="sub">Interview answers run on real engines: each claim checked on the reference implementation, each pitfall (a common wrong answer) run through the same checks.</p>
<table class="summary"><thead><tr><th>lab</th><th>claims</th><th>pitfalls rejected</th><th>charts</th><th>seconds</th></tr></thead><tbody>
${rows}
</tbody></table>
${stored.map((s) => renderLabSection(s, byId.get(s.report.lab))).join('\n')}`;
  return page('de-lab report', body);
}

export function renderLabPage(stored: StoredReport, lab?: AnyLab): string {
  return page(`${stored.report.title} — de-lab`, `<nav class="top"><a href="index.html">← all labs</a></nav>\n${renderLabSection(stored, lab)}`);
}

function writeAtomic(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, file);
}

/**
 * Writes `dir/data/<lab>.json` and `dir/<lab>.html` for each report, then rebuilds
 * `dir/index.html` from every stored report (registry order). Returns the index path.
 */
export function writeReport(dir: string, reports: readonly LabReport[], opts: { labs?: readonly AnyLab[]; now?: Date } = {}): string {
  const labs = [...LABS, ...(opts.labs ?? []).filter((l) => !LABS.some((k) => k.id === l.id))];
  const root = resolve(dir);
  const dataDir = join(root, 'data');
  mkdirSync(dataDir, { recursive: true });
  const generatedAt = (opts.now ?? new Date()).toISOString();
  for (const report of reports) {
    const stored: StoredReport = { generatedAt, report };
    writeAtomic(join(dataDir, `${report.lab}.json`), JSON.stringify(stored, null, 1) + '\n');
    writeAtomic(join(root, `${report.lab}.html`), renderLabPage(stored, labs.find((l) => l.id === report.lab)));
  }
  const all: StoredReport[] = [];
  for (const f of existsSync(dataDir) ? readdirSync(dataDir) : []) {
    if (!f.endsWith('.json')) continue;
    try {
      const s = JSON.parse(readFileSync(join(dataDir, f), 'utf8')) as StoredReport;
      if (s?.report?.lab && Array.isArray(s.report.claims)) all.push(s);
    } catch {
      // A file from another version or a broken write: leave it out of the index.
    }
  }
  const order = (id: string) => {
    const i = labs.findIndex((l) => l.id === id);
    return i < 0 ? labs.length : i;
  };
  all.sort((a, b) => order(a.report.lab) - order(b.report.lab) || a.report.lab.localeCompare(b.report.lab));
  const index = join(root, 'index.html');
  writeAtomic(index, renderIndex(all, labs));
  return index;
}
