/** The scd2 exercise's hints (revealed one at a time by `npm run check -- scd2 --hint`) and per-claim nudges. */
export const scd2Hints: readonly string[] = [
  'Work out each key\'s action first (the change set): FULL OUTER JOIN the snapshot with the current versions (is_current) on customer_id. No current row → open; no snapshot row → close as deleted; a Type 2 value differs → close and open; only email differs → Type 1 overwrite; otherwise nothing.',
  'Compare with IS DISTINCT FROM (db.dialect.distinct(a, b)), never <> : NULL <> \'gold\' is NULL, so a NULL → value change would look like "no change".',
  'One MERGE can close and open: feed it each changed key twice — once with merge_key = customer_id (matches the current row → UPDATE valid_to = d, is_current = FALSE) and once with merge_key = NULL (never matches → INSERT the new version from d to 9999-12-31).',
  'Decide everything from the state before the load, in one statement: then a second run of the same snapshot finds nothing changed. Rules of the form "insert where valid_to = today" are true again on a re-run.',
  'New surrogate keys: (SELECT COALESCE(MAX(customer_sk), 0) FROM dim) + ROW_NUMBER() OVER (ORDER BY customer_id). Type 1 (email): UPDATE every version of the key whose email IS DISTINCT FROM the snapshot\'s. Wrap it all in db.transaction.',
];

export const scd2Nudges: Readonly<Record<string, string>> = {
  'point-in-time': 'The as-of query disagrees with the snapshot: a change was missed, a version was closed on the wrong date, or a new/re-appearing key got no version.',
  'one-current-row': 'Close the current version (valid_to = d, is_current = FALSE) in the same transaction that opens the next one, and close it for keys missing from the snapshot.',
  idempotent: 'A second run of the same snapshot must find nothing to do: decide from the current versions, not from "rows closed today".',
  'no-spurious-versions': 'Only a Type 2 difference (IS DISTINCT FROM) opens a version — not every row of the snapshot.',
  'type1-vs-type2': 'email is Type 1: UPDATE it on every version of the key; segment/city are Type 2: compare them NULL-safely.',
  'facts-join-right-version': 'Windows are half-open: valid_from <= d AND d < valid_to, and the version closed on d must end exactly where the next begins.',
  'atomic-apply':
    'Run every statement of the apply inside one db.transaction(async (tx) => …) and use tx, not db, in it: a failure then rolls all of it back. ' +
    "On --engine spark (Delta Lake) a transaction groups nothing, each statement commits alone: there the apply must be one MERGE (db.dialect.atomicity === 'statement').",
};
