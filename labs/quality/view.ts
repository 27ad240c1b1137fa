/** What the quality lab prints and charts: tables of the run's evidence, the report's charts, the `--out` tables. */
import type { ChartSpec, PersistTarget } from '../contract.ts';
import { NAIVE_RULES } from '../../pipelines/quality/index.ts';
import { detectorTally } from './claims.ts';
import { reportedOn, type ScenarioEvidence } from './scenario.ts';

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];

/** One line per incident day: what it carried, what the gate did, what reported it. */
export function incidentTable(ev: ScenarioEvidence) {
  return ev.days
    .filter((d) => d.incident)
    .map((d) => {
      const reported = reportedOn(d).sort();
      const expected = [...d.truth.reports].sort();
      return {
        date: `${d.date} ${WEEKDAYS[d.weekday]}`,
        incident: d.incident,
        bronze: d.tables.bronze,
        status: d.tables.record?.status ?? '—',
        silver: d.tables.silver,
        quarantine: d.tables.quarantine,
        reported: reported.join(', ') || '—',
        as_expected: reported.join() === expected.join(),
      };
    });
}

export function cleanDaysLine(ev: ScenarioEvidence): string {
  const clean = ev.days.filter((d) => !d.incident);
  const noisy = clean.filter((d) => reportedOn(d).length > 0);
  return `${clean.length} clean days: ${noisy.length ? `${noisy.length} reported something (${noisy.map((d) => d.date).join(', ')})` : 'nothing reported on any of them'}`;
}

/** How the volume check and the two common rules did over the judged days. */
export function detectorTable(ev: ScenarioEvidence) {
  const row = (name: string, t: ReturnType<typeof detectorTally>) => ({ detector: name, judged_days: t.judgedDays, false_alarms: t.falseAlarms.length, missed: t.missed.length, first_false_alarm: t.falseAlarms[0] ?? '—' });
  return [
    row('same-weekday median, robust spread (the lab)', detectorTally(ev, (d) => d.anomaly)),
    ...Object.keys(NAIVE_RULES).map((name) => row(name, detectorTally(ev, (d) => d.naive?.[name] ?? null))),
  ];
}

export function qualityCharts(ev: ScenarioEvidence): ChartSpec[] {
  const arrived = ev.days.filter((d) => d.tables.bronze > 0);
  const label = (d: (typeof ev.days)[number]) => d.date.slice(5);
  // Every day in every series (0 where it is another series' day), so the x axis stays in date order.
  const bars = (name: string, pick: (d: (typeof ev.days)[number]) => boolean) => ({ name, points: ev.days.map((d) => ({ x: label(d), y: pick(d) ? d.tables.bronze : 0 })) });
  return [
    {
      kind: 'line',
      id: 'quality-volume',
      title: 'Rows per batch, and what the volume check expected (same-weekday median of the last 4 weeks)',
      x: 'day',
      y: 'rows',
      series: [
        { name: 'rows in bronze', points: arrived.map((d) => ({ x: d.day, y: d.tables.bronze })) },
        { name: 'expected', points: arrived.filter((d) => d.anomaly?.expected != null).map((d) => ({ x: d.day, y: d.anomaly!.expected! })) },
        { name: '7-day average (the ±10 % rule)', points: arrived.filter((d) => d.naive?.['ten-percent-of-7-day-avg']?.expected != null).map((d) => ({ x: d.day, y: d.naive!['ten-percent-of-7-day-avg']!.expected! })) },
      ],
    },
    {
      kind: 'bar',
      id: 'quality-incidents',
      title: 'Rows per batch, incidents marked (hover a bar for its day)',
      x: 'batch date',
      y: 'rows in bronze',
      series: [
        bars('clean', (d) => !d.incident),
        bars('incident, promoted (rows quarantined or alert)', (d) => !!d.incident && d.tables.record?.status === 'promoted'),
        bars('incident, blocked', (d) => !!d.incident && d.tables.record?.status === 'blocked'),
      ],
    },
  ];
}

export async function persistQuality(ev: ScenarioEvidence, out: PersistTarget): Promise<void> {
  await out.table(
    'quality_days',
    ev.days.map((d) => ({
      batch_date: d.date,
      weekday: WEEKDAYS[d.weekday],
      incident: d.incident,
      bronze_rows: d.tables.bronze,
      status: d.tables.record?.status ?? null,
      silver_rows: d.tables.silver,
      quarantined_rows: d.tables.quarantine,
      reported: reportedOn(d).join(','),
      expected: d.truth.reports.join(','),
      volume_expected: d.anomaly?.expected ?? null,
      volume_score: d.anomaly?.score ?? null,
    })),
  );
  await out.table('quality_quarantine', (ev.quarantined ?? []).map((r) => ({ ...r })));
  await out.table(
    'quality_expectation_results',
    ev.days.flatMap((d) => d.evaluation.results.map((r) => ({ batch_date: d.date, expectation: r.name, severity: r.severity, level: r.level, passed: r.passed, failed_rows: r.failedRows, null_rows: r.nullRows, observed: r.observed }))),
  );
}
