/**
 * ChartSpec → inline SVG, by hand: no library, no CDN, nothing fetched, so a report opens offline.
 * Every drawn datum carries class="mark" and a <title> (hover shows the exact value); a chart with
 * no data says so instead of drawing an empty frame.
 */
import type { ChartSpec, TreeNode } from '../../labs/contract.ts';

export const PALETTE = ['#2563eb', '#dc2626', '#059669', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#4b5563'];
const STATUS_COLOR: Record<TreeNode['status'], string> = { equal: '#059669', differs: '#dc2626', fetched: '#d97706' };

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Short tick label: 1 250 000 → 1.25M. */
export function fmtNum(v: number): string {
  const a = Math.abs(v);
  const trim = (s: string) => s.replace(/\.0+$|(\.\d*?)0+$/, '$1');
  if (a >= 1e9) return trim((v / 1e9).toFixed(2)) + 'G';
  if (a >= 1e6) return trim((v / 1e6).toFixed(2)) + 'M';
  if (a >= 1e4) return trim((v / 1e3).toFixed(1)) + 'k';
  if (Number.isInteger(v)) return String(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 1) return trim(v.toFixed(2));
  return a === 0 ? '0' : String(Number(v.toPrecision(2)));
}

/** About `count` round tick values covering [min, max]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
  if (!Number.isFinite(min) || !Number.isFinite(max)) return [0];
  if (min === max) {
    if (min === 0) return [0, 1];
    [min, max] = min > 0 ? [0, max] : [min, 0];
  }
  const raw = (max - min) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const ticks: number[] = [];
  for (let t = Math.floor(min / step) * step; t <= max + step * 0.5; t += step) ticks.push(Number(t.toPrecision(12)));
  if (ticks[ticks.length - 1]! < max) ticks.push(ticks[ticks.length - 1]! + step);
  return ticks;
}

interface Frame {
  w: number;
  h: number;
  l: number;
  r: number;
  t: number;
  b: number;
}

function svgOpen(kind: string, title: string, w: number, h: number, scroll = false): string {
  const size = scroll ? `width="${w}" height="${h}"` : `width="100%" style="max-width:${w}px"`;
  return `<svg class="chart-svg" data-kind="${kind}" viewBox="0 0 ${w} ${h}" ${size} role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg">`;
}

function emptyChart(spec: ChartSpec): string {
  return `${svgOpen(spec.kind, spec.title, 560, 80)}<text class="empty" x="280" y="44" text-anchor="middle" fill="#6b7280">no data</text></svg>`;
}

function legend(names: string[], x: number, y: number): string {
  if (names.length < 2) return '';
  let out = '';
  let cx = x;
  names.forEach((n, i) => {
    out += `<rect x="${cx}" y="${y - 9}" width="10" height="10" fill="${PALETTE[i % PALETTE.length]}"/><text x="${cx + 14}" y="${y}" font-size="11">${esc(n)}</text>`;
    cx += 24 + n.length * 6.5;
  });
  return `<g class="legend">${out}</g>`;
}

function yAxis(f: Frame, ticks: number[], y: (v: number) => number, label: string): string {
  let out = '';
  for (const t of ticks) {
    const py = y(t).toFixed(1);
    out += `<line x1="${f.l}" x2="${f.w - f.r}" y1="${py}" y2="${py}" stroke="#e5e7eb"/><text x="${f.l - 6}" y="${py}" dy="0.32em" text-anchor="end" font-size="11" fill="#374151">${esc(fmtNum(t))}</text>`;
  }
  out += `<text x="12" y="${f.t + (f.h - f.t - f.b) / 2}" transform="rotate(-90 12 ${f.t + (f.h - f.t - f.b) / 2})" text-anchor="middle" font-size="11" fill="#374151">${esc(label)}</text>`;
  return `<g class="axis y">${out}</g>`;
}

function xLabel(f: Frame, label: string): string {
  return `<text x="${f.l + (f.w - f.l - f.r) / 2}" y="${f.h - 6}" text-anchor="middle" font-size="11" fill="#374151">${esc(label)}</text>`;
}

function barChart(spec: Extract<ChartSpec, { kind: 'bar' }>): string {
  const series = spec.series.filter((s) => s.points.length > 0);
  const cats: (string | number)[] = [];
  const seen = new Set<string>();
  for (const s of series) for (const p of s.points) if (!seen.has(String(p.x))) seen.add(String(p.x)), cats.push(p.x);
  if (cats.length === 0) return emptyChart(spec);
  const longest = Math.max(...cats.map((c) => String(c).length));
  const rotate = cats.length > 8 && longest > 3;
  const f: Frame = { w: 560, h: 300 + (rotate ? Math.min(60, longest * 5) : 0), l: 56, r: 12, t: series.length > 1 ? 26 : 12, b: 40 + (rotate ? Math.min(60, longest * 5) : 0) };
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const ticks = niceTicks(Math.min(0, ...ys), Math.max(0, ...ys));
  const y0 = ticks[0]!;
  const y1 = ticks[ticks.length - 1]!;
  const y = (v: number) => f.h - f.b - ((v - y0) / (y1 - y0 || 1)) * (f.h - f.t - f.b);
  const band = (f.w - f.l - f.r) / cats.length;
  const bw = Math.max(1, (band * 0.8) / series.length);
  const every = Math.ceil(cats.length / (rotate ? 24 : 12));
  let marks = '';
  series.forEach((s, si) => {
    const byCat = new Map(s.points.map((p) => [String(p.x), p.y]));
    cats.forEach((c, ci) => {
      const v = byCat.get(String(c));
      if (v === undefined) return;
      const x = f.l + ci * band + band * 0.1 + si * bw;
      const top = y(Math.max(0, v));
      const hgt = Math.abs(y(v) - y(0));
      marks += `<rect class="mark" x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${bw.toFixed(1)}" height="${Math.max(hgt, v === 0 ? 0 : 1).toFixed(1)}" fill="${PALETTE[si % PALETTE.length]}"><title>${esc(`${s.name} · ${spec.x} ${c}: ${fmtNum(v)}`)}</title></rect>`;
    });
  });
  let xl = '';
  cats.forEach((c, ci) => {
    if (ci % every !== 0) return;
    const x = f.l + ci * band + band / 2;
    const ty = f.h - f.b + 14;
    xl += rotate
      ? `<text x="${x.toFixed(1)}" y="${ty}" transform="rotate(-40 ${x.toFixed(1)} ${ty})" text-anchor="end" font-size="10" fill="#374151">${esc(c)}</text>`
      : `<text x="${x.toFixed(1)}" y="${ty}" text-anchor="middle" font-size="11" fill="#374151">${esc(c)}</text>`;
  });
  return (
    svgOpen('bar', spec.title, f.w, f.h) +
    yAxis(f, ticks, y, spec.y) +
    `<g class="marks">${marks}</g><line x1="${f.l}" x2="${f.w - f.r}" y1="${y(0)}" y2="${y(0)}" stroke="#6b7280"/>` +
    `<g class="axis x">${xl}</g>` +
    xLabel(f, spec.x) +
    legend(series.map((s) => s.name), f.l, 14) +
    '</svg>'
  );
}

/** At most `max` points, evenly spaced, first and last kept (a long lag series stays readable and small). */
function thin<T>(points: T[], max = 600): T[] {
  if (points.length <= max) return points;
  const out: T[] = [];
  for (let i = 0; i < max; i++) out.push(points[Math.round((i * (points.length - 1)) / (max - 1))]!);
  return out;
}

function lineChart(spec: Extract<ChartSpec, { kind: 'line' }>): string {
  const series = spec.series
    .map((s) => ({ name: s.name, points: thin(s.points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y)).sort((a, b) => a.x - b.x)) }))
    .filter((s) => s.points.length > 0);
  if (series.length === 0) return emptyChart(spec);
  const f: Frame = { w: 560, h: 300, l: 56, r: 16, t: series.length > 1 ? 26 : 12, b: 40 };
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.map((p) => p.y));
  const xt = niceTicks(Math.min(...xs), Math.max(...xs));
  // From zero by default; 'data' zooms on the data's range, so a small change on a large base shows.
  const yt = spec.yFrom === 'data' ? niceTicks(Math.min(...ys), Math.max(...ys)) : niceTicks(Math.min(0, ...ys), Math.max(...ys));
  const [x0, x1] = [xt[0]!, xt[xt.length - 1]!];
  const [y0, y1] = [yt[0]!, yt[yt.length - 1]!];
  const x = (v: number) => f.l + ((v - x0) / (x1 - x0 || 1)) * (f.w - f.l - f.r);
  const y = (v: number) => f.h - f.b - ((v - y0) / (y1 - y0 || 1)) * (f.h - f.t - f.b);
  let marks = '';
  series.forEach((s, si) => {
    const color = PALETTE[si % PALETTE.length]!;
    const d = s.points.map((p, i) => `${i ? 'L' : 'M'}${x(p.x).toFixed(1)},${y(p.y).toFixed(1)}`).join('');
    marks += `<path class="mark" d="${d}" fill="none" stroke="${color}" stroke-width="2"><title>${esc(s.name)}</title></path>`;
    if (s.points.length <= 40 || s.points.length === 1) {
      for (const p of s.points) marks += `<circle class="mark" cx="${x(p.x).toFixed(1)}" cy="${y(p.y).toFixed(1)}" r="3" fill="${color}"><title>${esc(`${s.name} · ${spec.x} ${fmtNum(p.x)}: ${fmtNum(p.y)}`)}</title></circle>`;
    }
  });
  let xl = '';
  for (const t of xt) xl += `<text x="${x(t).toFixed(1)}" y="${f.h - f.b + 14}" text-anchor="middle" font-size="11" fill="#374151">${esc(fmtNum(t))}</text>`;
  // Vertical markers (a knee, a kill): a dashed line and its label, staggered when they crowd.
  let vmarks = '';
  (spec.marks ?? [])
    .filter((m) => Number.isFinite(m.x) && m.x >= x0 && m.x <= x1)
    .forEach((m, i) => {
      const px = x(m.x).toFixed(1);
      vmarks += `<g class="vmark"><line x1="${px}" x2="${px}" y1="${f.t}" y2="${f.h - f.b}" stroke="#6b7280" stroke-dasharray="4 3"/><text x="${px}" y="${f.t + 10 + (i % 3) * 12}" dx="3" font-size="10.5" fill="#374151">${esc(m.label)}</text><title>${esc(`${m.label} · ${spec.x} ${fmtNum(m.x)}`)}</title></g>`;
    });
  return (
    svgOpen('line', spec.title, f.w, f.h) +
    yAxis(f, yt, y, spec.y) +
    vmarks +
    `<g class="axis x">${xl}</g><line x1="${f.l}" x2="${f.w - f.r}" y1="${f.h - f.b}" y2="${f.h - f.b}" stroke="#6b7280"/>` +
    `<g class="marks">${marks}</g>` +
    xLabel(f, spec.x) +
    legend(series.map((s) => s.name), f.l, 14) +
    '</svg>'
  );
}

/** A timeline axis from span bounds: numbers, dates, or (otherwise) their sorted distinct values. */
function timeScale(values: string[]): { pos: (v: string) => number; ticks: { at: number; label: string }[]; max: number } {
  const numeric = values.every((v) => v.trim() !== '' && Number.isFinite(Number(v)));
  const dated = !numeric && values.every((v) => !Number.isNaN(Date.parse(v)));
  if (numeric || dated) {
    const val = (v: string) => (numeric ? Number(v) : Date.parse(v));
    const nums = values.map(val);
    const lo = Math.min(...nums);
    const hi = Math.max(...nums);
    let ticks: { at: number; label: string }[];
    if (numeric) ticks = niceTicks(lo, hi).filter((t) => t >= lo && t <= hi).map((t) => ({ at: t, label: fmtNum(t) }));
    else {
      const dateOnly = values.every((v) => /^\d{4}-\d{2}-\d{2}$/.test(v));
      const distinct = [...new Set(nums)].sort((x, y) => x - y);
      const n = Math.min(6, distinct.length);
      const DAY = 86400000;
      ticks = Array.from({ length: distinct.length <= 8 ? distinct.length : n }, (_, i) => {
        // Few distinct bounds: tick each one. Many: evenly spaced, on whole days for dates.
        let at = distinct.length <= 8 ? distinct[i]! : n === 1 ? lo : lo + ((hi - lo) * i) / (n - 1);
        if (dateOnly && distinct.length > 8) at = Math.round(at / DAY) * DAY;
        const iso = new Date(at).toISOString();
        return { at, label: dateOnly || hi - lo > 5 * 86400000 ? iso.slice(0, 10) : iso.slice(0, 16).replace('T', ' ') };
      });
    }
    return { pos: val, ticks, max: hi };
  }
  const order = [...new Set(values)].sort();
  const index = new Map(order.map((v, i) => [v, i]));
  const every = Math.ceil(order.length / 8);
  return { pos: (v) => index.get(v)!, ticks: order.filter((_, i) => i % every === 0).map((v) => ({ at: index.get(v)!, label: v })), max: order.length - 1 };
}

function timelineChart(spec: Extract<ChartSpec, { kind: 'timeline' }>): string {
  const MAX_ROWS = 30;
  const rows = spec.rows.filter((r) => r.spans.length > 0);
  if (rows.length === 0) return emptyChart(spec);
  const shown = rows.slice(0, MAX_ROWS);
  const bounds = shown.flatMap((r) => r.spans.flatMap((s) => (s.to === null ? [s.from] : [s.from, s.to])));
  const scale = timeScale(bounds);
  const lo = Math.min(...bounds.map(scale.pos));
  const hiData = scale.max;
  const open = shown.some((r) => r.spans.some((s) => s.to === null));
  let hi = hiData + (open ? (hiData - lo) * 0.12 : 0);
  if (hi <= lo) hi = lo + 1;
  const labelW = Math.min(160, 16 + Math.max(...shown.map((r) => r.label.length)) * 6.5);
  const rowH = 26;
  const f: Frame = { w: 760, h: 0, l: labelW, r: 16, t: 8, b: 36 };
  f.h = f.t + shown.length * rowH + f.b + (rows.length > MAX_ROWS ? 14 : 0);
  const x = (v: number) => f.l + ((v - lo) / (hi - lo || 1)) * (f.w - f.l - f.r);
  let out = '';
  shown.forEach((r, ri) => {
    const y = f.t + ri * rowH;
    out += `<text x="${f.l - 8}" y="${y + rowH / 2}" dy="0.32em" text-anchor="end" font-size="11" fill="#111827">${esc(r.label.length > 24 ? r.label.slice(0, 23) + '…' : r.label)}</text>`;
    out += `<line x1="${f.l}" x2="${f.w - f.r}" y1="${y + rowH / 2}" y2="${y + rowH / 2}" stroke="#f3f4f6"/>`;
    r.spans.forEach((s, si) => {
      const x0 = x(scale.pos(s.from));
      const x1 = s.to === null ? x(hi) : x(scale.pos(s.to));
      const w = Math.max(3, x1 - x0);
      const color = s.to === null ? '#059669' : PALETTE[si % 2 === 0 ? 0 : 5]!;
      const tip = `${r.label}: ${s.text} · ${s.from} → ${s.to ?? 'open (current)'}`;
      out += `<rect class="mark" x="${x0.toFixed(1)}" y="${y + 4}" width="${w.toFixed(1)}" height="${rowH - 8}" rx="3" fill="${color}" fill-opacity="0.85" stroke="#fff"${s.to === null ? ' stroke-dasharray="3 2"' : ''}><title>${esc(tip)}</title></rect>`;
      const fits = Math.floor((w - 6) / 6.2);
      if (fits >= 2) out += `<text x="${(x0 + 4).toFixed(1)}" y="${y + rowH / 2}" dy="0.32em" font-size="10.5" fill="#fff" pointer-events="none">${esc(s.text.length > fits ? s.text.slice(0, fits - 1) + '…' : s.text)}</text>`;
    });
  });
  let axis = `<line x1="${f.l}" x2="${f.w - f.r}" y1="${f.t + shown.length * rowH}" y2="${f.t + shown.length * rowH}" stroke="#6b7280"/>`;
  for (const t of scale.ticks) {
    const px = x(t.at).toFixed(1);
    axis += `<line x1="${px}" x2="${px}" y1="${f.t}" y2="${f.t + shown.length * rowH + 4}" stroke="#e5e7eb"/><text x="${px}" y="${f.t + shown.length * rowH + 16}" text-anchor="middle" font-size="10.5" fill="#374151">${esc(t.label)}</text>`;
  }
  if (open) axis += `<text x="${f.w - f.r}" y="${f.t + shown.length * rowH + 28}" text-anchor="end" font-size="10.5" fill="#059669">green, dashed = open (current) version</text>`;
  const more = rows.length > MAX_ROWS ? `<text x="${f.l}" y="${f.h - 4}" font-size="11" fill="#6b7280">… ${rows.length - MAX_ROWS} more rows</text>` : '';
  return svgOpen('timeline', spec.title, f.w, f.h) + `<g class="axis">${axis}</g><g class="marks">${out}</g>${more}</svg>`;
}

interface Placed {
  node: TreeNode;
  x: number;
  depth: number;
  children: Placed[];
}

function treeChart(spec: Extract<ChartSpec, { kind: 'tree' }>): string {
  const MAX_NODES = 400;
  let count = 0;
  let leaves = 0;
  let maxDepth = 0;
  // Tidy-ish layout: leaves on consecutive slots, parents centred over their children.
  const place = (node: TreeNode, depth: number): Placed => {
    count++;
    maxDepth = Math.max(maxDepth, depth);
    const kids = count < MAX_NODES ? (node.children ?? []).map((c) => place(c, depth + 1)) : [];
    const x = kids.length ? (kids[0]!.x + kids[kids.length - 1]!.x) / 2 : leaves++;
    return { node, x, depth, children: kids };
  };
  const root = place(spec.root, 0);
  const detailed = leaves <= 16;
  const slot = detailed ? 92 : 22;
  const levelH = detailed ? 64 : 40;
  const w = Math.max(560, leaves * slot + 40);
  const h = (maxDepth + 1) * levelH + 50;
  const px = (p: Placed) => 20 + slot / 2 + p.x * slot;
  const py = (p: Placed) => 24 + p.depth * levelH;
  let edges = '';
  let nodes = '';
  const walk = (p: Placed) => {
    for (const c of p.children) {
      edges += `<line x1="${px(p).toFixed(1)}" y1="${py(p)}" x2="${px(c).toFixed(1)}" y2="${py(c)}" stroke="#9ca3af"/>`;
      walk(c);
    }
    const color = STATUS_COLOR[p.node.status] ?? '#6b7280';
    const tip = `${p.node.label} · ${p.node.status}`;
    if (detailed) {
      const label = p.node.label.length > 14 ? p.node.label.slice(0, 13) + '…' : p.node.label;
      const bw = Math.max(40, label.length * 6.4 + 12);
      nodes += `<g class="node" data-status="${p.node.status}"><rect class="mark" x="${(px(p) - bw / 2).toFixed(1)}" y="${py(p) - 11}" width="${bw.toFixed(1)}" height="22" rx="5" fill="${color}"><title>${esc(tip)}</title></rect><text x="${px(p).toFixed(1)}" y="${py(p)}" dy="0.32em" text-anchor="middle" font-size="10.5" fill="#fff" pointer-events="none">${esc(label)}</text></g>`;
    } else {
      nodes += `<g class="node" data-status="${p.node.status}"><circle class="mark" cx="${px(p).toFixed(1)}" cy="${py(p)}" r="6" fill="${color}"><title>${esc(tip)}</title></circle></g>`;
    }
  };
  walk(root);
  const leg = (['equal', 'differs', 'fetched'] as const)
    .map((s, i) => `<rect x="${20 + i * 90}" y="${h - 20}" width="10" height="10" fill="${STATUS_COLOR[s]}"/><text x="${34 + i * 90}" y="${h - 11}" font-size="11">${s}</text>`)
    .join('');
  const cut = count >= MAX_NODES ? `<text x="${w - 12}" y="${h - 11}" text-anchor="end" font-size="11" fill="#6b7280">first ${MAX_NODES} nodes shown</text>` : '';
  return svgOpen('tree', spec.title, w, h, w > 760) + `<g class="edges">${edges}</g><g class="marks">${nodes}</g><g class="legend">${leg}</g>${cut}</svg>`;
}

/** One chart as a <figure> with its title; scrolls sideways when wider than the page. */
export function renderChart(spec: ChartSpec): string {
  let svg: string;
  try {
    switch (spec.kind) {
      case 'bar':
        svg = barChart(spec);
        break;
      case 'line':
        svg = lineChart(spec);
        break;
      case 'timeline':
        svg = timelineChart(spec);
        break;
      case 'tree':
        svg = treeChart(spec);
        break;
      default:
        svg = `<p class="empty">unknown chart kind ${esc((spec as { kind: string }).kind)}</p>`;
    }
  } catch (err) {
    svg = `<p class="empty">chart failed to render: ${esc(err instanceof Error ? err.message : String(err))}</p>`;
  }
  const wide = spec.kind === 'timeline' || spec.kind === 'tree' ? ' wide' : '';
  return `<figure class="chart${wide}" id="chart-${esc(spec.id)}" data-chart="${esc(spec.id)}" data-kind="${esc(spec.kind)}"><figcaption>${esc(spec.title)}</figcaption><div class="chart-body">${svg}</div></figure>`;
}
