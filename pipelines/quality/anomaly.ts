/**
 * Volume anomaly checks over the batch history (rows per arrived batch). Each detector judges
 * today's value against the history before today, and says whether it could judge at all.
 *
 * The reference fits a weekly series: today's expected volume is the median of the same weekday
 * over the last four weeks (a busy Friday is compared with Fridays, not with a quiet Sunday), and
 * the tolerance is a robust spread — 1.4826 × the median absolute deviation of the earlier days'
 * log-ratios to their own expectations — so one incident in the history moves neither. Today's
 * value is never in its own baseline.
 *
 * The two rules interview answers often give, kept to count how they do on the same series:
 * a 3-σ z-score over the last four values, and "±10 % of the 7-day average".
 */
export interface VolumePoint {
  date: string;
  /** 0 = Monday. */
  weekday: number;
  value: number;
}

export interface AnomalyVerdict {
  /** false while the history is too short to judge (then never flagged). */
  judged: boolean;
  flagged: boolean;
  expected: number | null;
  /** How far off, in the detector's own unit (spreads, σ, or relative deviation). */
  score: number | null;
}

export type VolumeDetector = (history: readonly VolumePoint[], today: VolumePoint) => AnomalyVerdict;

const NOT_JUDGED: AnomalyVerdict = { judged: false, flagged: false, expected: null, score: null };

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const DAY_MS = 86_400_000;
const daysBetween = (a: string, b: string) => Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY_MS);

export interface WeekdayOptions {
  /** Same-weekday values in the baseline (the last N weeks). */
  weeks: number;
  /** Fewer same-weekday values than this: not judged. */
  minWeeks: number;
  /** Flag beyond this many robust spreads. */
  threshold: number;
  /** Floor of the spread (log units): a very regular history must not turn noise into alarms. */
  minSpread: number;
}

export const WEEKDAY_DEFAULTS: WeekdayOptions = { weeks: 4, minWeeks: 2, threshold: 4, minSpread: 0.05 };

/** The reference: same-weekday median baseline, robust (MAD) spread of log-ratios, today excluded. */
export function weekdayRobustDetector(opts: WeekdayOptions = WEEKDAY_DEFAULTS): VolumeDetector {
  const expectedAt = (history: readonly VolumePoint[], p: VolumePoint): number | null => {
    const same = history.filter((h) => h.weekday === p.weekday && daysBetween(h.date, p.date) > 0 && daysBetween(h.date, p.date) <= 7 * opts.weeks);
    return same.length >= opts.minWeeks ? median(same.map((h) => h.value)) : null;
  };
  return (history, today) => {
    const expected = expectedAt(history, today);
    if (expected === null || expected <= 0) return NOT_JUDGED;
    const residuals: number[] = [];
    history.forEach((p, i) => {
      const e = expectedAt(history.slice(0, i), p);
      if (e !== null && e > 0) residuals.push(Math.log(p.value / e));
    });
    const spread = residuals.length ? Math.max(opts.minSpread, 1.4826 * median(residuals.map((r) => Math.abs(r - median(residuals))))) : opts.minSpread;
    const score = Math.log(today.value / expected) / spread;
    return { judged: true, flagged: Math.abs(score) > opts.threshold, expected, score };
  };
}

/**
 * z-score of today against the mean and sample σ of the last `window` values. `includeToday`: the
 * window ends with today's value (the pitfall): with n values, |z| can never exceed (n−1)/√n —
 * 1.5 for n = 4 — so a 3-σ rule on it never fires.
 */
export function zScoreDetector(opts: { window: number; threshold: number; includeToday: boolean }): VolumeDetector {
  return (history, today) => {
    const base = opts.includeToday ? [...history.slice(-(opts.window - 1)).map((h) => h.value), today.value] : history.slice(-opts.window).map((h) => h.value);
    if (base.length < opts.window) return NOT_JUDGED;
    const mean = base.reduce((a, b) => a + b, 0) / base.length;
    const sd = Math.sqrt(base.reduce((a, b) => a + (b - mean) ** 2, 0) / (base.length - 1));
    const score = sd === 0 ? 0 : (today.value - mean) / sd;
    return { judged: true, flagged: Math.abs(score) > opts.threshold, expected: mean, score };
  };
}

/** Flags today when it is more than `band` (0.1 = ±10 %) off the average of the last `window` values. */
export function fixedBandDetector(opts: { window: number; band: number }): VolumeDetector {
  return (history, today) => {
    if (history.length < opts.window) return NOT_JUDGED;
    const avg = history.slice(-opts.window).reduce((a, h) => a + h.value, 0) / opts.window;
    const score = today.value / avg - 1;
    return { judged: true, flagged: Math.abs(score) > opts.band, expected: avg, score };
  };
}

/** The two common rules the claim counts on the same series. */
export const NAIVE_RULES: Readonly<Record<string, VolumeDetector>> = {
  'zscore-3sigma-last-4': zScoreDetector({ window: 4, threshold: 3, includeToday: false }),
  'ten-percent-of-7-day-avg': fixedBandDetector({ window: 7, band: 0.1 }),
};

/** Runs `detector` over the series in date order: each day sees only the days before it. */
export function scanSeries(series: readonly VolumePoint[], detector: VolumeDetector): AnomalyVerdict[] {
  return series.map((p, i) => detector(series.slice(0, i), p));
}
