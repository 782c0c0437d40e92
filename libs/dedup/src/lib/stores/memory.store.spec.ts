import fc from 'fast-check';
import type { ClaimRequest } from './dedup-store.interface';
import { MemoryStore } from './memory.store';

const req = (key: string, payloadHash?: string): ClaimRequest => ({
  storageKey: `p:s:${key}`,
  scope: 's',
  key,
  messageId: `m-${key}`,
  payloadHash,
});
const held = (key: string, token: string) => ({ ...req(key), token });

function clocked() {
  let now = 1_000_000;
  const store = new MemoryStore({ now: () => now, lockTimeoutMs: 700 });
  return { store, advance: (ms: number) => (now += ms) };
}

describe('MemoryStore: the DedupStore ownership rules', () => {
  it('claim succeeds on an absent key, reports a live claim in flight and a completed one with its result', async () => {
    const { store } = clocked();
    const [first] = await store.claim([req('a', 'h1')], 't1', 1000);
    expect(first).toMatchObject({ status: 'claimed' });
    await expect(store.claim([req('a')], 't2', 1000)).resolves.toEqual([
      { status: 'in-flight', retryAfterMs: 1000, payloadHash: 'h1' },
    ]);
    await expect(store.complete([{ ...held('a', 't1'), result: '"r"' }], 5000)).resolves.toEqual([true]);
    await expect(store.claim([req('a')], 't2', 1000)).resolves.toEqual([
      { status: 'completed', result: '"r"', expiresInMs: 5000, payloadHash: 'h1' },
    ]);
  });

  it('a lapsed lease or an expired record can be claimed again, with a new fence', async () => {
    const { store, advance } = clocked();
    const [first] = await store.claim([req('a')], 't1', 1000);
    advance(1000);
    const [second] = await store.claim([req('a')], 't2', 1000);
    expect(second?.status).toBe('claimed');
    expect(second).not.toEqual(first);
    await store.complete([held('a', 't2')], 2000);
    advance(2000);
    await expect(store.claim([req('a')], 't3', 1000)).resolves.toMatchObject([{ status: 'claimed' }]);
  });

  it('complete refuses a live record of another token, and recreates a record that vanished', async () => {
    const { store, advance } = clocked();
    await store.claim([req('a')], 't1', 1000);
    advance(1000);
    await store.claim([req('a')], 't2', 1000);
    await expect(store.complete([held('a', 't1')], 5000)).resolves.toEqual([false]);
    await expect(store.complete([held('b', 'tb')], 5000)).resolves.toEqual([true]);
    await expect(store.get('p:s:b')).resolves.toMatchObject({ state: 'COMPLETED', messageId: 'm-b' });
  });

  it('release deletes only an IN_PROGRESS record of the same token', async () => {
    const { store } = clocked();
    await store.claim([req('a'), req('b')], 't1', 1000);
    await store.complete([held('b', 't1')], 5000);
    await expect(store.release([held('a', 'other'), held('b', 't1')])).resolves.toEqual([false, false]);
    await expect(store.release([held('a', 't1')])).resolves.toEqual([true]);
    await expect(store.get('p:s:a')).resolves.toBeNull();
  });

  it("extend renews the same token's lease, re-takes an expired key, and refuses another owner's", async () => {
    const { store, advance } = clocked();
    await store.claim([req('a')], 't1', 1000);
    advance(900);
    await expect(store.extend([held('a', 't1')], 1000)).resolves.toEqual([true]);
    advance(900);
    await expect(store.claim([req('a')], 't2', 1000)).resolves.toMatchObject([{ status: 'in-flight' }]);
    await expect(store.extend([held('a', 't2')], 1000)).resolves.toEqual([false]);
    advance(1000);
    await expect(store.extend([held('a', 't3')], 1000)).resolves.toEqual([true]);
  });

  it('forget keeps a live IN_PROGRESS record without force, deletes it with force', async () => {
    const { store } = clocked();
    await store.claim([req('a')], 't1', 1000);
    await expect(store.forget('p:s:a', { force: false })).resolves.toBe('in-progress');
    await expect(store.forget('p:s:a', { force: true })).resolves.toBe('forgotten');
    await expect(store.forget('p:s:a', { force: true })).resolves.toBe('absent');
  });

  it('list pages live records of a prefix in key order', async () => {
    const { store } = clocked();
    await store.claim(
      ['c', 'a', 'b'].map((k) => req(k)),
      't',
      1000,
    );
    await store.complete([held('b', 't')], 5000);
    const first = await store.list({ prefix: 'p:s:', limit: 2 });
    expect(first.items.map((r) => r.key)).toEqual(['a', 'b']);
    const rest = await store.list({ prefix: 'p:s:', limit: 2, cursor: first.nextCursor });
    expect(rest).toMatchObject({ items: [{ key: 'c' }], nextCursor: undefined });
    await expect(store.list({ prefix: 'p:', state: 'COMPLETED', limit: 5 })).resolves.toMatchObject({
      items: [{ key: 'b' }],
    });
  });

  it('a transaction holds its keys until commit (stored with results) or rollback (restored)', async () => {
    const { store } = clocked();
    const tx = await store.begin([req('a'), req('b')], 't1', 1000, 5000);
    expect(tx.results.map((r) => r.status)).toEqual(['claimed', 'claimed']);
    await expect(store.claim([req('a')], 't2', 1000)).resolves.toMatchObject([
      { status: 'in-flight', retryAfterMs: 700 },
    ]);
    await tx.commit([{ ...held('a', 't1'), result: '1' }, held('b', 't1')]);
    await expect(store.get('p:s:a')).resolves.toMatchObject({ state: 'COMPLETED', result: '1' });

    const rolled = await store.begin([req('c')], 't3', 1000, 5000);
    await rolled.rollback(true);
    await expect(store.get('p:s:c')).resolves.toBeNull();
  });
});

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`memory.store.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

type Op =
  | { op: 'claim' | 'complete' | 'release' | 'extend'; owner: number }
  | { op: 'forget'; force: boolean }
  | { op: 'tick'; ms: number };

/** The rules of dedup-store.interface.ts for one key, as a plain state machine. */
interface Model {
  state: 'none' | 'IN_PROGRESS' | 'COMPLETED';
  owner?: number;
  until: number;
}

describe('MemoryStore against a model of the ownership rules (one key, three owners)', () => {
  it('answers every operation as the model says', async () => {
    const op: fc.Arbitrary<Op> = fc.oneof(
      fc.record({
        op: fc.constantFrom('claim', 'complete', 'release', 'extend'),
        owner: fc.nat(2),
      }) as fc.Arbitrary<Op>,
      fc.record({ op: fc.constant('forget'), force: fc.boolean() }) as fc.Arbitrary<Op>,
      fc.record({ op: fc.constant('tick'), ms: fc.integer({ min: 1, max: 1500 }) }) as fc.Arbitrary<Op>,
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const { store, advance } = clocked();
        let now = 0;
        const model: Model = { state: 'none', until: 0 };
        const live = () => model.state !== 'none' && model.until > now;
        const LEASE = 1000;
        const TTL = 3000;
        for (const step of ops) {
          if (step.op === 'tick') {
            advance(step.ms);
            now += step.ms;
            continue;
          }
          if (step.op === 'forget') {
            const expected = !live()
              ? 'absent'
              : model.state === 'IN_PROGRESS' && !step.force
                ? 'in-progress'
                : 'forgotten';
            expect(await store.forget('p:s:k', { force: step.force })).toBe(expected);
            if (expected === 'forgotten') model.state = 'none';
            continue;
          }
          const token = `t${step.owner}`;
          const mine = live() && model.owner === step.owner;
          if (step.op === 'claim') {
            const [result] = await store.claim([req('k')], token, LEASE);
            const claimable = !live();
            expect(result?.status).toBe(
              claimable ? 'claimed' : model.state === 'COMPLETED' ? 'completed' : 'in-flight',
            );
            if (claimable)
              Object.assign(model, { state: 'IN_PROGRESS', owner: step.owner, until: now + LEASE });
          } else if (step.op === 'complete') {
            const ok = !live() || mine;
            expect(await store.complete([held('k', token)], TTL)).toEqual([ok]);
            if (ok) Object.assign(model, { state: 'COMPLETED', owner: step.owner, until: now + TTL });
          } else if (step.op === 'release') {
            const ok = mine && model.state === 'IN_PROGRESS';
            expect(await store.release([held('k', token)])).toEqual([ok]);
            if (ok) model.state = 'none';
          } else {
            const ok = !live() || (mine && model.state === 'IN_PROGRESS');
            expect(await store.extend([held('k', token)], LEASE)).toEqual([ok]);
            if (ok) Object.assign(model, { state: 'IN_PROGRESS', owner: step.owner, until: now + LEASE });
          }
        }
      }),
      { seed, numRuns: 300 },
    );
  });
});
