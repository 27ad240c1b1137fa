/** The compaction exercise's hints (revealed one at a time by `npm run check -- compaction --hint`) and per-claim nudges. */
export const compactionHints: readonly string[] = [
  'Start from the manifest you read, not from the directory: `planCompaction(base, options)` lists per partition the small files to merge and skips partitions with fewer than two.',
  'Never touch the files the manifest names. Write the new files next to them with `rewrite(db, …)` (default `rewritePartition`) under a prefix unique to this attempt — until a manifest names them, no reader can see them.',
  'Before committing, compare per partition what you read (`stagePartition(...).fingerprint`) with what you wrote (`describeWrittenFiles(...).fingerprint`): rows AND checksum. On a mismatch throw and delete what you wrote.',
  'Commit once, at the end: `commitManifest(tableDir, base, { operation, files: untouched + written, removed: base.removed + replaced (with removedAt), sourceOffset })`. Do not delete the replaced files — vacuum does, after the retention period.',
  'Call `options.checkpoint?.({ n, kind: "written", partition, files })` after each partition is written: the crash test kills your process at the third checkpoint.',
];

export const compactionNudges: Readonly<Record<string, string>> = {
  'fewer-files': 'Merge every partition that has two or more small files, and let the rewrite cut files at options.targetBytes.',
  'same-data': 'Compare rows AND checksum of what you read with what you wrote, per partition, before the commit — and use options.rewrite.',
  atomic: 'Readers see every manifest you commit: commit exactly once, after all new files exist, and never delete a live file.',
  'crash-safe': 'Until the single commit, only add new files; a kill at any point must leave the old manifest and its files intact.',
  idempotent: 'Skip partitions with fewer than two small files; commit nothing when there is nothing to do.',
};
