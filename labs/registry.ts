import type { AnyLab } from './contract.ts';
import { smokeLab } from './smoke/lab.ts';

/** Every lab, in the order `npm start` runs them. */
export const LABS: readonly AnyLab[] = [smokeLab];

export function findLab(id: string): AnyLab | undefined {
  return LABS.find((l) => l.id === id);
}
