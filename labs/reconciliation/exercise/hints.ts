/** The reconciliation exercise's hints (revealed one at a time by `npm run check -- reconciliation --hint`) and per-claim nudges. */
export const reconciliationHints: readonly string[] = [
  'Start from the bounds: keyBounds(side, spec) on both sides gives row counts and min/max keys. The whole key range [min, max] of BOTH sides is the root segment — a key only the target has must fall inside it.',
  'segmentChecksums(side, spec, ranges, origin, width) returns, per segment index i (keys origin + i·width … origin + (i+1)·width − 1), the row count and the exact sum of row hashes — computed inside the database. Call it on both sides with the same arguments and compare (count, sum) per index; a segment missing on one side counts as (0, "0").',
  'Hash every row once: the first level covers the whole key range with no filter (pass ranges = []), with a power-of-two width such that a segment holds about fanout × fetchThreshold / 2 rows (firstWidth(span, rows, options) computes it) — one split then gives children small enough to fetch. Each level divides the width by fanout; power-of-two widths keep every child inside its parent.',
  'A differing segment with at most fetchThreshold rows on each side (or width 1) is a leaf: collect its range. Otherwise split it: the next level hashes only the differing ranges, at width / fanout.',
  'At the end, fetchRows(side, spec, leafRanges) on both sides and compareRowSets(spec, sourceRows, targetRows) gives the exact diffs — missing, extra, duplicate, and the differing columns, NULL-safe and within tolerance. Report stats.rowsFetched honestly: the check counts them.',
];

export const reconciliationNudges: Readonly<Record<string, string>> = {
  'finds-all-invents-none': 'Some injected difference is missing or an equal row is reported: make the root range cover both sides\' keys, treat a segment absent on one side as (0 rows, sum "0"), and compare leaves with compareRowSets.',
  'no-false-alarms': 'Equal data was reported as different: compare segment checksums (count and hash sum), not raw values, and compare fetched rows with compareRowSets (tolerances, trailing spaces).',
  'bisection-fetches-little': 'Too many rows moved: fetch only differing segments with at most fetchThreshold rows per side; split bigger ones and re-hash only those.',
  'fingerprint-order-independent-sensitive': 'This claim uses the shared fingerprint; if it fails, the row hash itself (pipelines/engines) changed.',
  'partition-days-named': 'This claim uses the reference partition level; if it fails, check the fixture and spec, not your bisection.',
};
