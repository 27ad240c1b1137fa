import type { Pitfall } from '../contract.ts';
import type { SlotOptions } from '../../pipelines/smoke/index.ts';

export const smokePitfalls: Pitfall<SlotOptions>[] = [
  {
    name: 'slot-after-writes',
    title: 'creates the replication slot after the writes',
    description:
      'A logical slot starts at the WAL position where it is created; changes committed before that are not in it. ' +
      'Setting up CDC after the data is there, without an initial snapshot, silently misses every earlier change.',
    impl: { createSlotBeforeWrites: false },
  },
];
