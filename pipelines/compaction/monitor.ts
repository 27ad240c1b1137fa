/**
 * File-count monitoring: what an on-call dashboard for a lake table shows — per partition, how
 * many files, how big, and a warning once small files pile up past a threshold.
 */
import { partitionKey, type DataFile, type Manifest } from './table.ts';

export interface PartitionFileStats {
  partition: string;
  files: number;
  small_files: number;
  rows: number;
  min_kb: number;
  median_kb: number;
  max_kb: number;
  total_kb: number;
  warning: string | null;
}

export interface MonitorOptions {
  /** Files under this size count as small. */
  smallFileBytes: number;
  /** Warn when a partition holds more small files than this. */
  maxSmallFiles: number;
}

const kb = (b: number) => Math.round((b / 1024) * 10) / 10;

export function fileStatsByPartition(m: Manifest, options: MonitorOptions): PartitionFileStats[] {
  const groups = new Map<string, DataFile[]>();
  for (const f of m.files) {
    const k = partitionKey(f);
    const g = groups.get(k) ?? [];
    g.push(f);
    groups.set(k, g);
  }
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([partition, files]) => {
      const sizes = files.map((f) => f.bytes).sort((a, b) => a - b);
      const small = sizes.filter((s) => s < options.smallFileBytes).length;
      return {
        partition,
        files: files.length,
        small_files: small,
        rows: files.reduce((s, f) => s + f.rows, 0),
        min_kb: kb(sizes[0]!),
        median_kb: kb(sizes[Math.floor(sizes.length / 2)]!),
        max_kb: kb(sizes[sizes.length - 1]!),
        total_kb: kb(sizes.reduce((s, x) => s + x, 0)),
        warning: small > options.maxSmallFiles ? `${small} small files (> ${options.maxSmallFiles}): compact` : null,
      };
    });
}

/** File-size histogram with power-of-two KB buckets ("<1 KB", "1–2 KB", "2–4 KB", …). */
export function fileSizeHistogram(files: readonly { bytes: number }[], maxBucketKb = 1024): { bucket: string; lowKb: number; files: number }[] {
  const buckets: { bucket: string; lowKb: number; files: number }[] = [{ bucket: '<1 KB', lowKb: 0, files: 0 }];
  for (let lo = 1; lo < maxBucketKb; lo *= 2) buckets.push({ bucket: `${lo}–${lo * 2} KB`, lowKb: lo, files: 0 });
  buckets.push({ bucket: `≥${maxBucketKb} KB`, lowKb: maxBucketKb, files: 0 });
  for (const f of files) {
    const k = f.bytes / 1024;
    let i = 0;
    while (i + 1 < buckets.length && k >= buckets[i + 1]!.lowKb) i++;
    buckets[i]!.files += 1;
  }
  return buckets;
}
