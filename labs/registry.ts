import type { AnyLab } from './contract.ts';
import { smokeLab } from './smoke/lab.ts';
import { scd2Lab } from './scd2/lab.ts';
import { skewLab } from './skew/lab.ts';
import { reconciliationLab } from './reconciliation/lab.ts';
import { compactionLab } from './compaction/lab.ts';
import { cdcLab } from './cdc/lab.ts';
import { qualityLab } from './quality/lab.ts';
import { incrementalLab } from './incremental/lab.ts';
import { schemaEvolutionLab } from './schema-evolution/lab.ts';

/** Every lab, in the order `npm start` runs them. */
export const LABS: readonly AnyLab[] = [smokeLab, scd2Lab, skewLab, compactionLab, cdcLab, reconciliationLab, qualityLab, incrementalLab, schemaEvolutionLab];

export function findLab(id: string): AnyLab | undefined {
  return LABS.find((l) => l.id === id);
}
