import { createRequire } from 'node:module';

/** A key's Redis Cluster hash slot (0..16383, CRC16 of the key or of its hash tag). */
export type SlotOf = (key: string) => number;

let clusterKeySlot: SlotOf | undefined;

/**
 * The slot Redis Cluster gives `key`: cluster-key-slot, the function ioredis routes commands by
 * (hash-tag rule included: the first `{` with a non-empty `}` after it). Resolved through ioredis
 * (its dependency), on first use, so a Postgres-only app loads nothing.
 */
export const keySlot: SlotOf = (key) => {
  clusterKeySlot ??= createRequire(require.resolve('ioredis'))('cluster-key-slot') as SlotOf;
  return clusterKeySlot(key);
};

/** Indices of `keys` (request order) that share one slot; groups in order of first appearance. */
export interface SlotGroup {
  readonly slot: number;
  readonly indices: number[];
}

export function groupBySlot(keys: readonly string[], slotOf: SlotOf = keySlot): SlotGroup[] {
  const groups = new Map<number, SlotGroup>();
  keys.forEach((key, i) => {
    const slot = slotOf(key);
    const group = groups.get(slot);
    if (group) group.indices.push(i);
    else groups.set(slot, { slot, indices: [i] });
  });
  return [...groups.values()];
}

/** Candidates tried before giving up on a slot (about 170 000 cover all 16 384 slots). */
const MAX_CANDIDATES = 1_000_000;

/**
 * The fence counter of each slot on a Redis Cluster: a key in the same slot as the records it
 * numbers, so one script reads and increments both. The single-node key `${keyPrefix}~fence` stays
 * the counter of its own slot (a keyPrefix with a hash tag keeps its counter and every fence it
 * handed out); the other slots get `${keyPrefix}~fence{<tag>}`, the first base-36 tag found that
 * lands there (checked with the slot function, so keyPrefix braces are accounted for). Cached.
 */
export class SlotFenceKeys {
  private readonly bySlot = new Map<number, string>();
  private candidates = 0;

  constructor(
    private readonly keyPrefix: string,
    private readonly slotOf: SlotOf = keySlot,
  ) {
    const single = `${keyPrefix}~fence`;
    this.bySlot.set(slotOf(single), single);
  }

  /** The fence key of `slot`. */
  keyFor(slot: number): string {
    for (;;) {
      const key = this.bySlot.get(slot);
      if (key !== undefined) return key;
      if (this.candidates >= MAX_CANDIDATES)
        throw new Error(`no fence key in slot ${slot} for keyPrefix ${JSON.stringify(this.keyPrefix)}`);
      const candidate = `${this.keyPrefix}~fence{${(this.candidates++).toString(36)}}`;
      const candidateSlot = this.slotOf(candidate);
      if (!this.bySlot.has(candidateSlot)) this.bySlot.set(candidateSlot, candidate);
    }
  }
}
