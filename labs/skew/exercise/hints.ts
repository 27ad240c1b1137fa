/** The skew exercise's hints (revealed one at a time by `npm run check -- skew --hint`) and per-claim nudges. */
export const skewHints: readonly string[] = [
  'Three kinds of rows: NULL keys, cold keys, hot keys. Cold keys go where plain hash partitioning sends them: partitionOf(key, 0, P) with salt 0.',
  'Big side (ctx.side === "fact"), hot key: pick ONE salt in [0, K) and emit once to partitionOf(key, salt, P). Small side, hot key: emit the row K times, once per salt.',
  'Where does the salt come from? Not ctx.rand(): a re-run map task must give each row the same salt. Hash the row’s identity: rowSalt(rows.ids[i], K).',
  'NULL keys never match. Inner join: emit nothing. Left join, big side: the row must still come out — emit it once, to any reducer (spreading by rowSalt(id, P) avoids piling all NULLs on one).',
];

export const skewNudges: Readonly<Record<string, string>> = {
  'detect-hot-keys': 'Detection runs before your function and does not depend on it: it fails only when your code throws — fix the error shown above.',
  'same-answer': 'Some joined rows are missing or doubled: does every salt of a hot key find the small-side row (copied once per salt)? Are NULL-key rows kept in a left join?',
  balance: 'Hot rows still pile up: spread each hot key over all K salts, and salt only the hot keys.',
  makespan: 'Benchmark only: run the lab itself to measure it.',
  'cost-of-k': 'Too many small-side copies: replicate only the hot keys’ rows, K times each — cold keys need no salt.',
  'retry-determinism': 'A retried map task sent rows elsewhere: derive the salt from the row’s identity (rowSalt(rows.ids[i], K)), not from ctx.rand().',
};
