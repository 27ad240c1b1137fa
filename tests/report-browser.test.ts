/**
 * The HTML report in a real browser: every registered lab is run on the shared engines, the report
 * is written like `npm start` writes it, and Debian's headless Chromium (driven by playwright-core
 * with its executablePath) opens it from file://. Checked: a section per lab, every chart drawn
 * (an SVG with visible marks), nothing fetched from the network, no console errors, no sideways
 * scrolling on a laptop-sized window. Artifacts: test-artifacts/report/ and test-artifacts/report.png.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { AnyLab, LabReport } from '../labs/contract.ts';
import { LABS } from '../labs/registry.ts';
import { runLab } from '../labs/runner.ts';
import { Reporter } from '../labs/reporter.ts';
import { writeReport } from '../scripts/report/html.ts';
import { REPO_ROOT } from '../scripts/exercise.ts';
import { fixtureLab } from './exercise-fixture/lab.ts';
import { testEngines } from './helpers.ts';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(CHROMIUM);
const inCi = Boolean(process.env.CI);
const MISSING = `Debian chromium not found at ${CHROMIUM}: run scripts/ci.d/chromium.sh as root (apt-get install -y chromium), or set CHROMIUM_PATH`;
if (!haveChromium && !inCi) console.warn(`report-browser.test.ts skipped: ${MISSING}`);

const ARTIFACTS = join(REPO_ROOT, 'test-artifacts');
const REPORT_DIR = join(ARTIFACTS, 'report');
const labs: AnyLab[] = [...LABS, fixtureLab];
const engines = testEngines();
let browser: Browser | undefined;

// Laptop-sized window, as on a shared screen in an interview.
const VIEWPORT = { width: 1366, height: 768 };

describe.skipIf(!haveChromium && !inCi)('HTML report in headless Chromium', () => {
  beforeAll(async () => {
    if (!haveChromium) throw new Error(MISSING);
    rmSync(REPORT_DIR, { recursive: true, force: true });
    mkdirSync(REPORT_DIR, { recursive: true });
    // The charts come from a real run of each lab, at its check scale (as small as the lab allows),
    // two labs at a time. Pitfalls are run for the fixture lab only: this test is about rendering,
    // and each lab's own test proves its pitfalls are rejected.
    const reports = new Map<string, LabReport>();
    const queue = [...labs];
    const lane = async () => {
      for (let lab = queue.shift(); lab; lab = queue.shift()) {
        const scale = lab.checkScale ? Math.min(1, lab.checkScale(1)) : 1;
        reports.set(lab.id, await runLab(lab, { seed: 42, scale, provision: 'external', out: Reporter.silent(), engines, skipPitfalls: lab !== fixtureLab }));
      }
    };
    await Promise.all([lane(), lane()]);
    writeReport(REPORT_DIR, labs.map((l) => reports.get(l.id)!), { labs });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await engines.stopAll();
  });

  async function open(file: string): Promise<{ page: Page; errors: string[]; requests: string[] }> {
    const page = await browser!.newPage({ viewport: VIEWPORT });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('request', (r) => requests.push(r.url()));
    await page.goto(pathToFileURL(join(REPORT_DIR, file)).href, { waitUntil: 'load' });
    return { page, errors, requests };
  }

  /** Per chart of a section: its kind, how many marks it draws with a visible size, and whether it said "no data". */
  function chartsOf(page: Page, labId: string) {
    return page.$$eval(`section.lab[data-lab="${labId}"] figure.chart`, (figs) =>
      figs.map((f) => {
        // getBBox: the mark's drawn size (no DOM lib in this tsconfig, so typed by hand).
        const marks = [...f.querySelectorAll('svg .mark')] as unknown as { getBBox(): { width: number; height: number } }[];
        const visible = marks.filter((m) => {
          const b = m.getBBox();
          return b.width > 0 || b.height > 0;
        }).length;
        return { id: f.getAttribute('data-chart'), kind: f.getAttribute('data-kind'), marks: marks.length, visible, empty: !!f.querySelector('.empty') };
      }),
    );
  }

  it('index.html has a section for every lab, each with its claims and a drawn chart; no console errors, nothing fetched', async () => {
    const { page, errors, requests } = await open('index.html');
    try {
      for (const lab of labs) {
        const section = page.locator(`section.lab[data-lab="${lab.id}"]`);
        await expect(section.count(), `section for ${lab.id}`).resolves.toBe(1);
        await expect(section.isVisible()).resolves.toBe(true);
        await expect(section.locator('tr[data-claim]').count()).resolves.toBe(lab.claims.length);
        await expect(section.locator('tr[data-pitfall]').count()).resolves.toBe(lab === fixtureLab ? lab.pitfalls.length : 0);
        const charts = await chartsOf(page, lab.id);
        expect(charts.length, `${lab.id} has charts`).toBeGreaterThan(0);
        for (const c of charts) {
          expect(c.empty, `${lab.id} chart ${c.id} says "no data"`).toBe(false);
          expect(c.visible, `${lab.id} chart ${c.id} (${c.kind}) draws visible marks`).toBeGreaterThan(0);
        }
      }
      // Self-contained: the only thing loaded is the page itself.
      expect(requests.filter((u) => !u.startsWith('file:'))).toEqual([]);
      expect(errors).toEqual([]);
      // Readable on a laptop: the page does not scroll sideways (wide trees scroll inside their box).
      const overflow = await page.evaluate(() => {
        const w = globalThis as unknown as { innerWidth: number; document: { documentElement: { scrollWidth: number } } };
        return w.document.documentElement.scrollWidth - w.innerWidth;
      });
      expect(overflow).toBeLessThanOrEqual(0);
      mkdirSync(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, 'report.png'), fullPage: true });
      expect(readFileSync(join(ARTIFACTS, 'report.png')).subarray(1, 4).toString()).toBe('PNG');
    } finally {
      await page.close();
    }
  });

  it('draws every chart kind (bar, line, timeline, tree) with visible marks', async () => {
    const { page, errors } = await open('index.html');
    try {
      const kinds = new Map((await chartsOf(page, fixtureLab.id)).map((c) => [c.kind, c.visible]));
      for (const kind of ['bar', 'line', 'timeline', 'tree']) expect(kinds.get(kind), kind).toBeGreaterThan(0);
      // The timeline's open (current) version and the tree's differing leaf are both on screen.
      await expect(page.locator('section[data-lab="fixture"] figure[data-kind="timeline"] rect.mark[stroke-dasharray]').count()).resolves.toBeGreaterThan(0);
      await expect(page.locator('section[data-lab="fixture"] figure[data-kind="tree"] g.node[data-status="differs"]').count()).resolves.toBeGreaterThan(0);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('each lab has its own page, linked from the index, with the same section', async () => {
    for (const lab of labs) {
      const { page, errors } = await open(`${lab.id}.html`);
      try {
        await expect(page.locator(`section.lab[data-lab="${lab.id}"]`).count()).resolves.toBe(1);
        await expect(page.locator('a[href="index.html"]').count()).resolves.toBe(1);
        expect((await chartsOf(page, lab.id)).some((c) => c.visible > 0), lab.id).toBe(true);
        expect(errors).toEqual([]);
      } finally {
        await page.close();
      }
    }
  });
});
