import fc from 'fast-check';
import { storageKeyFor } from '../idempotency-key.extractor';
import { groupBySlot, keySlot, SlotFenceKeys } from './redis-slots';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redis-slots.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/** Text with braces often enough to hit every branch of the hash-tag rule. */
const braced = fc.string({ unit: fc.constantFrom('a', 'b', '{', '}', ':', 'é'), maxLength: 12 });

describe('keySlot', () => {
  it('is the Redis Cluster slot (values from CLUSTER KEYSLOT)', () => {
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{}{bar}')).not.toBe(keySlot('bar')); // the first { with an empty } is no tag
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
  });
});

describe('SlotFenceKeys', () => {
  it('keeps the single-node fence key for its own slot', () => {
    const fences = new SlotFenceKeys('once:dedup:');
    expect(fences.keyFor(keySlot('once:dedup:~fence'))).toBe('once:dedup:~fence');
  });

  it("gives every record key a fence key in the record's slot, whatever braces prefix and key hold", () => {
    fc.assert(
      fc.property(braced, braced, braced, (prefix, scope, key) => {
        const recordKey = storageKeyFor(prefix, `s${scope.replace(/:/g, '')}`, `k${key}`);
        const fenceKey = new SlotFenceKeys(prefix).keyFor(keySlot(recordKey));
        expect(keySlot(fenceKey)).toBe(keySlot(recordKey));
        expect(fenceKey.startsWith(`${prefix}~fence`)).toBe(true);
        expect(fenceKey.slice(prefix.length)).not.toContain(':'); // never mistaken for a record
      }),
      { seed, numRuns: 200 },
    );
  });

  it('finds a fence key for each of the 16384 slots of a plain prefix, one per slot', () => {
    const fences = new SlotFenceKeys('once:dedup:');
    const keys = new Set<string>();
    for (let slot = 0; slot < 16384; slot++) {
      const key = fences.keyFor(slot);
      expect(keySlot(key)).toBe(slot);
      keys.add(key);
    }
    expect(keys.size).toBe(16384);
  });

  it('a keyPrefix with a hash tag has one slot, and its fence key is the single-node one', () => {
    const fences = new SlotFenceKeys('{once}:dedup:');
    const slot = keySlot(storageKeyFor('{once}:dedup:', 'scope', 'any{key}'));
    expect(fences.keyFor(slot)).toBe('{once}:dedup:~fence');
  });
});

describe('groupBySlot', () => {
  it('groups indices by slot, in request order, covering every index once', () => {
    fc.assert(
      fc.property(fc.uniqueArray(braced, { maxLength: 30 }), (keys) => {
        const groups = groupBySlot(keys);
        expect(groups.flatMap((g) => g.indices).sort((a, b) => a - b)).toEqual(keys.map((_, i) => i));
        for (const group of groups) {
          expect(group.indices).toEqual([...group.indices].sort((a, b) => a - b));
          for (const i of group.indices) expect(keySlot(keys[i] as string)).toBe(group.slot);
        }
        expect(new Set(groups.map((g) => g.slot)).size).toBe(groups.length);
      }),
      { seed, numRuns: 200 },
    );
  });
});
