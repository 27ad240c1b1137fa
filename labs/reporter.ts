import type { Evidence, EvidenceValue, StepRecord } from './contract.ts';

const MAX_SQL = 12;

/**
 * Human output of a run: numbered steps, small aligned tables, claim lines.
 * Goes to stdout, or to stderr under `--json` (stdout then carries only the JSON object).
 * Progress ticks only on a TTY; piped output gets plain lines.
 */
export class Reporter {
  private stepNo = 0;
  private readonly tty: boolean;
  /** A progress tick is on screen (no newline after it): the next line overwrites it first. */
  private progressShown = false;
  /** While recording (the reference run of a lab), what each step showed, for the HTML report. */
  private recording: StepRecord[] | null = null;
  /** Terminal width on a TTY: long notes wrap there to fit a shared screen. Piped output is never wrapped. */
  private readonly width?: number;

  constructor(
    private readonly stream: NodeJS.WriteStream | { write(s: string): unknown; isTTY?: boolean },
    private readonly options: { quiet?: boolean; indent?: string } = {},
  ) {
    this.tty = Boolean(stream.isTTY);
    this.width = this.tty ? Math.max(60, (stream as { columns?: number }).columns || 100) : undefined;
  }

  /** A reporter that prints nothing (pitfall and exercise runs inside a lab run). */
  static silent(): Reporter {
    return new Reporter({ write: () => true }, { quiet: true });
  }

  line(text = ''): void {
    if (this.options.quiet) return;
    // A table printed while a step's progress tick is on screen would start after the tick's text.
    if (this.progressShown) this.stream.write('\r\x1b[K');
    this.progressShown = false;
    this.stream.write((this.options.indent ?? '') + text + '\n');
  }

  heading(text: string): void {
    this.line();
    for (const l of wrapText(text, this.width, '  ')) this.line(this.tty ? `\x1b[1m${l}\x1b[0m` : l);
  }

  /** Starts keeping each step's notes, tables and SQL (whether or not anything is printed). */
  startRecording(): void {
    this.recording = [];
  }

  stopRecording(): StepRecord[] {
    const steps = this.recording ?? [];
    this.recording = null;
    return steps;
  }

  /** A statement the current step sent to an engine (see `Engines.onStatement`). */
  sql(statement: string): void {
    const step = this.recording?.at(-1);
    if (!step) return;
    step.statements += 1;
    const text = statement.replace(/^\s*\n/, '').replace(/\s+$/, '');
    const cut = text.length > 4000 ? text.slice(0, 4000) + '\n…' : text;
    if (step.sql.length < MAX_SQL && !step.sql.includes(cut)) step.sql.push(cut);
  }

  step(title: string): void {
    this.recording?.push({ title, notes: [], tables: [], sql: [], statements: 0 });
    this.stepNo += 1;
    this.wrapped(`${String(this.stepNo).padStart(2)}. ${title}`, '    ');
  }

  note(text: string): void {
    this.recording?.at(-1)?.notes.push(text);
    this.wrapped(`    ${text}`, '      ');
  }

  /** A line that wraps at the terminal width (on a TTY), continuation lines indented by `hang`. */
  wrapped(text: string, hang: string): void {
    for (const l of wrapText(text, this.width, hang)) this.line(l);
  }

  /** Small aligned table; numbers right-aligned. At most `maxRows` rows, then a count. */
  table(rows: readonly Record<string, unknown>[], maxRows = 12): void {
    if (rows.length > 0) this.recording?.at(-1)?.tables.push(rows.slice(0, Math.max(maxRows, 30)).map(jsonRow));
    if (this.options.quiet || rows.length === 0) return;
    const cols = Object.keys(rows[0]!);
    const shown = rows.slice(0, maxRows);
    // Long cells are cut: a table stays one screen wide in a live demo.
    const cell = (v: unknown) => {
      const s = formatValue(v);
      return s.length > 72 ? s.slice(0, 71) + '…' : s;
    };
    const widths = cols.map((c) => Math.max(c.length, ...shown.map((r) => cell(r[c]).length)));
    const numeric = cols.map((c) => shown.every((r) => typeof r[c] === 'number' || typeof r[c] === 'bigint' || r[c] === null));
    // On a terminal the table fits its width: the widest text column gives way first (cells cut with …).
    if (this.width) {
      const room = this.width - 4 - 2 * (cols.length - 1);
      for (let excess = widths.reduce((a, b) => a + b, 0) - room; excess > 0; excess--) {
        let widest = -1;
        widths.forEach((w, i) => !numeric[i] && w > 8 && (widest < 0 || w > widths[widest]!) && (widest = i));
        if (widest < 0) break;
        widths[widest]! -= 1;
      }
    }
    const fit = (v: string, w: number) => (v.length > w ? v.slice(0, w - 1) + '…' : v);
    const fmt = (vals: string[]) => vals.map((v, i) => (numeric[i] ? v.padStart(widths[i]!) : fit(v, widths[i]!).padEnd(widths[i]!))).join('  ');
    this.line('    ' + fmt(cols));
    this.line('    ' + widths.map((w) => '─'.repeat(w)).join('  '));
    for (const r of shown) this.line('    ' + fmt(cols.map((c) => cell(r[c]))));
    if (rows.length > maxRows) this.line(`    … ${rows.length - maxRows} more rows`);
  }

  claim(passed: boolean, title: string, evidence: Evidence, skipped = false): void {
    const mark = skipped ? '–' : passed ? '✔' : '✘';
    const color = !this.tty ? (s: string) => s : skipped ? (s: string) => s : passed ? (s: string) => `\x1b[32m${s}\x1b[0m` : (s: string) => `\x1b[31m${s}\x1b[0m`;
    // Evidence wraps under itself on a narrow terminal; the mark keeps its colour.
    const hang = ' '.repeat(title.length + 6 <= (this.width ?? 0) / 2 ? title.length + 6 : 6);
    const [first, ...rest] = wrapText(`  ${mark} ${title}  ${formatEvidence(evidence)}`.trimEnd(), this.width, hang);
    this.line(first!.replace(mark, color(mark)));
    for (const l of rest) this.line(l);
  }

  /** Runs `fn`, ticking elapsed seconds on a TTY when it takes longer than a second. */
  async progress<T>(label: string, fn: () => Promise<T>): Promise<T> {
    if (!this.tty || this.options.quiet) return fn();
    const t0 = Date.now();
    const timer = setInterval(() => {
      const tick = `    … ${label} ${((Date.now() - t0) / 1000).toFixed(0)}s`;
      this.stream.write(`\r\x1b[K${this.width ? tick.slice(0, this.width - 1) : tick}`);
      this.progressShown = true;
    }, 1000);
    try {
      return await fn();
    } finally {
      clearInterval(timer);
      if (this.progressShown) this.stream.write('\r\x1b[K');
      this.progressShown = false;
    }
  }
}

function jsonRow(r: Record<string, unknown>): Record<string, EvidenceValue> {
  const out: Record<string, EvidenceValue> = {};
  for (const [k, v] of Object.entries(r)) {
    out[k] = v === null || v === undefined ? null : typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string' ? v : formatValue(v);
  }
  return out;
}

export function formatValue(v: unknown): string {
  if (v === null || v === undefined) return '∅';
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
  }
  if (v instanceof Date) return v.toISOString().replace('T', ' ').replace(/\.000Z$/, '').replace('Z', '');
  return String(v);
}

/** Splits `text` at spaces so no line is longer than `width` (when given); later lines start with `hang`. */
export function wrapText(text: string, width: number | undefined, hang: string): string[] {
  if (!width || text.length <= width) return [text];
  if (hang.length > width - 20) hang = '  ';
  const lines: string[] = [];
  let rest = text;
  while (rest.length > width) {
    let cut = rest.lastIndexOf(' ', width);
    if (cut <= hang.length) cut = width;
    lines.push(rest.slice(0, cut).trimEnd());
    rest = hang + rest.slice(cut).trimStart();
  }
  lines.push(rest);
  return lines;
}

export function formatEvidence(e: Evidence): string {
  return Object.entries(e)
    .map(([k, v]) => `${k}=${formatValue(v)}`)
    .join(' ');
}
