import type { TestingModule } from '@nestjs/testing';
import { OwnRedisCluster, scanKeys } from '@once/testing';
import fc from 'fast-check';
import { Cluster } from 'ioredis';
import {
  type Claim,
  type DedupModuleOptions,
  IdempotencyService,
  InvalidListCursorError,
  StoreUnavailableError,
} from '../src';
import { DEDUP_STORE } from '../src/lib/engine/store.provider';
import type { DedupStore, StoreClaimResult } from '../src/lib/stores/dedup-store.interface';
import { keySlot } from '../src/lib/stores/redis-slots';
import { quietLogs, sleep, startModule, uniquePrefix } from './support/dedup.fixtures';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`redis-cluster.e2e-spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

const claimedOnly = (outcomes: { status: string }[]) => outcomes.every((o) => o.status === 'claimed');
const claimOf = (outcome: { status: string; claim?: Claim }): Claim => {
  if (outcome.status !== 'claimed' || !outcome.claim) throw new Error(`not claimed: ${outcome.status}`);
  return outcome.claim;
};

describe('the Redis store on a Redis Cluster (3 local masters)', () => {
  let ownCluster: OwnRedisCluster;
  let redis: Cluster;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    quietLogs();
    ownCluster = await OwnRedisCluster.start();
    redis = new Cluster([...ownCluster.nodes], { redisOptions: { maxRetriesPerRequest: 1 } });
    await new Promise((resolve, reject) => redis.once('ready', resolve).once('error', reject));
  });

  afterAll(async () => {
    redis?.disconnect();
    await ownCluster?.stop();
  });

  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
  });

  async function start(extra: Partial<DedupModuleOptions> = {}) {
    const keyPrefix = uniquePrefix('cluster');
    moduleRef = await startModule({ store: 'redis', redis, keyPrefix, ttlMs: 120_000, ...extra });
    return {
      keyPrefix,
      service: moduleRef.get(IdempotencyService),
      store: moduleRef.get<DedupStore>(DEDUP_STORE),
    };
  }

  /** Record keys under `keyPrefix` on each master (SCAN of each), fence counters apart. */
  async function keysPerMaster(keyPrefix: string): Promise<{ records: number; fences: number }[]> {
    return Promise.all(
      redis.nodes('master').map(async (node) => {
        const keys = await scanKeys(node, `${keyPrefix}*`);
        const records = keys.filter((key) => key.slice(keyPrefix.length).includes(':')).length;
        return { records, fences: keys.length - records };
      }),
    );
  }

  it('spreads 200 keys claimed in batches of 10 over all 3 masters, each fence counter in its records’ slot', async () => {
    const { service, keyPrefix } = await start();
    for (let batch = 0; batch < 20; batch++) {
      const items = Array.from({ length: 10 }, (_, i) => ({ key: `spread-${batch * 10 + i}` }));
      expect(claimedOnly(await service.claimMany(items, { scope: 'spread' }))).toBe(true);
    }
    const perMaster = await keysPerMaster(keyPrefix);
    console.log(`redis-cluster.e2e-spec: records per master ${perMaster.map((m) => m.records).join(', ')}`);
    expect(perMaster).toHaveLength(3);
    expect(perMaster.reduce((sum, m) => sum + m.records, 0)).toBe(200);
    for (const master of perMaster) {
      expect(master.records).toBeGreaterThan(20);
      expect(master.fences).toBeGreaterThan(0);
    }
    const records = await Promise.all([0, 1, 2].map((i) => service.get(`spread-${i}`, { scope: 'spread' })));
    expect(records.map((r) => r?.state)).toEqual(['IN_PROGRESS', 'IN_PROGRESS', 'IN_PROGRESS']);
  });

  it('runs the lifecycle across slots: 3 concurrent copies of 50 keys give 50 effects; claimMany, completeMany, releaseMany', async () => {
    const { service } = await start({ leaseMs: 5000 });
    const effects = new Map<string, number>();
    const runCopy = (key: string) =>
      service
        .run(key, () => {
          effects.set(key, (effects.get(key) ?? 0) + 1);
          return `done-${key}`;
        })
        .catch((error: unknown) => (error instanceof Error ? error.name : 'error'));
    const keys = Array.from({ length: 50 }, (_, i) => `life-${i}`);
    await Promise.all(keys.flatMap((key) => [runCopy(key), runCopy(key), runCopy(key)]));
    expect([...effects.values()].every((n) => n === 1)).toBe(true);
    expect(effects.size).toBe(50);
    await expect(Promise.all(keys.map((key) => service.run(key, () => 'again')))).resolves.toEqual(
      keys.map((key) => `done-${key}`),
    );

    const many = Array.from({ length: 20 }, (_, i) => ({ key: `many-${i}` }));
    expect(new Set(many.map(({ key }) => keySlot(service.keyFor(key)))).size).toBeGreaterThan(10);
    const claims = (await service.claimMany(many)).map(claimOf);
    const fences = claims.map((c) => c.fence);
    expect(claims.map((c) => c.key)).toEqual(many.map((m) => m.key)); // answers in request order
    expect(
      await service.completeMany(claims.slice(0, 10).map((claim) => ({ claim, result: claim.key }))),
    ).toEqual(Array(10).fill(true));
    expect(await service.releaseMany(claims.slice(10))).toEqual(Array(10).fill(true));
    const again = await service.claimMany(many);
    expect(again.slice(0, 10)).toEqual(
      many.slice(0, 10).map(({ key }) => ({ status: 'completed', result: key })),
    );
    const reclaimed = again.slice(10).map(claimOf);
    reclaimed.forEach((claim, i) => expect(claim.fence).toBeGreaterThan(fences[10 + i] as number));
  });

  it('fences of keys in different slots rise strictly per key and match a model (claim, release, complete, lease expiry)', async () => {
    const { service, store } = await start();
    const keys = ['fa', 'fb', 'fc', 'fd'].map((key) => service.keyFor(key, 'fence'));
    expect(new Set(keys.map(keySlot)).size).toBe(4);
    const request = (storageKey: string) => ({
      storageKey,
      scope: 'fence',
      key: storageKey.slice(storageKey.lastIndexOf(':') + 1),
    });
    type Held = { state: 'held'; token: string; fence: number };
    type Model = { state: 'absent' } | Held | { state: 'completed'; token: string; fence: number };
    const lastFence = new Map<string, number>();

    const command = fc.oneof(
      fc.record({
        op: fc.constant('claim' as const),
        keys: fc.subarray([0, 1, 2, 3], { minLength: 1 }),
        token: fc.constantFrom('t1', 't2'),
      }),
      fc.record({
        op: fc.constantFrom('release' as const, 'complete' as const, 'expire' as const),
        key: fc.nat(3),
        token: fc.constantFrom('t1', 't2'),
      }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 20 }), async (commands) => {
        await Promise.all(keys.map((key) => redis.del(key)));
        const model = new Map<string, Model>(keys.map((key) => [key, { state: 'absent' }]));
        const newFence = (key: string, fence: number) => {
          expect(fence).toBeGreaterThan(lastFence.get(key) ?? 0);
          lastFence.set(key, fence);
        };
        for (const c of commands) {
          if (c.op === 'claim') {
            const batch = c.keys.map((i) => keys[i] as string);
            const results = await store.claim(batch.map(request), c.token, 60_000);
            results.forEach((result: StoreClaimResult, i) => {
              const key = batch[i] as string;
              const before = model.get(key) as Model;
              if (before.state === 'absent') {
                expect(result.status).toBe('claimed');
                if (result.status === 'claimed') newFence(key, result.fence);
                model.set(key, { state: 'held', token: c.token, fence: lastFence.get(key) as number });
              } else expect(result.status).toBe(before.state === 'held' ? 'in-flight' : 'completed');
            });
            continue;
          }
          const key = keys[c.key] as string;
          const before = model.get(key) as Model;
          if (c.op === 'release') {
            const [released] = await store.release([{ storageKey: key, token: c.token }]);
            const owns = before.state === 'held' && before.token === c.token;
            expect(released).toBe(owns);
            if (owns) model.set(key, { state: 'absent' });
          } else if (c.op === 'complete') {
            const [completed] = await store.complete([{ ...request(key), token: c.token }], 60_000);
            const allowed = before.state === 'absent' || before.token === c.token;
            expect(completed).toBe(allowed);
            if (allowed) {
              const fence = (await store.get(key))?.fence as number;
              if (before.state === 'absent') newFence(key, fence);
              else expect(fence).toBe(before.fence);
              model.set(key, { state: 'completed', token: c.token, fence });
            }
          } else {
            await redis.pexpire(key, 1); // the lease (or TTL) runs out
            while ((await redis.exists(key)) === 1) await sleep(2);
            model.set(key, { state: 'absent' });
          }
          const stored = await store.get(key);
          const now = model.get(key) as Model;
          if (now.state === 'absent') expect(stored).toBeNull();
          else
            expect(stored).toMatchObject({
              state: now.state === 'held' ? 'IN_PROGRESS' : 'COMPLETED',
              fence: now.fence,
            });
        }
      }),
      { seed, numRuns: 30 },
    );
    expect(lastFence.size).toBe(4);
  });

  it('lists every record across the masters exactly once in small pages, and refuses a tampered cursor', async () => {
    const { service } = await start();
    const keys = Array.from({ length: 30 }, (_, i) => `list-${i}`);
    await Promise.all(keys.slice(0, 15).map((key) => service.run(key, () => key, { scope: 'list' })));
    await service.claimMany(
      keys.slice(15).map((key) => ({ key })),
      { scope: 'list' },
    );
    const seen: string[] = [];
    const cursors: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await service.list({ limit: 4, cursor, prefix: 'list:' });
      seen.push(...page.items.map((item) => item.key));
      cursor = page.nextCursor;
      if (cursor) cursors.push(cursor);
    } while (cursor);
    expect([...seen].sort()).toEqual([...keys].sort());
    // At least a page per master: each cursor names the master to go on with.
    const nodes = cursors.map((c) => Buffer.from(c, 'base64url').toString().split(' ')[0]);
    expect(new Set(nodes).size).toBeGreaterThanOrEqual(2);
    const completed = await service.list({ limit: 1000, prefix: 'list:', state: 'COMPLETED' });
    expect(completed.nextCursor).toBeUndefined();
    expect(completed.items.map((item) => item.key).sort()).toEqual(keys.slice(0, 15).sort());

    const [first] = cursors as [string];
    const decoded = Buffer.from(first, 'base64url').toString();
    for (const tampered of [
      `${first}x`,
      '12345',
      Buffer.from(decoded.replace(/:\d+ /, ':1 ')).toString('base64url'), // a node that is no master
      Buffer.from(decoded.replace(/ \d+$/, ' 18446744073709551616')).toString('base64url'),
    ])
      await expect(service.list({ limit: 4, cursor: tampered })).rejects.toBeInstanceOf(
        InvalidListCursorError,
      );
  });

  it('a claim touching a killed master fails as a whole, releases what other masters claimed, and live masters keep serving at once', async () => {
    const leaseMs = 1500;
    const retryAfterMs = 1000;
    const { service } = await start({ redisTimeoutMs: 500, redisRetryAfterMs: retryAfterMs, leaseMs });
    const victim = ownCluster.nodes[2] as { host: string; port: number };
    const ownerOf = (key: string) => (redis.slots[keySlot(service.keyFor(key))] ?? [])[0];
    const candidates = Array.from({ length: 120 }, (_, i) => `kill-${i}`);
    const onVictim = candidates.filter((key) => ownerOf(key) === `${victim.host}:${victim.port}`).slice(0, 4);
    const live = candidates.filter((key) => ownerOf(key) !== `${victim.host}:${victim.port}`);
    const elsewhere = live.slice(0, 6);
    const later = live.slice(6, 12); // claimed while the victim's circuit is open
    expect(onVictim).toHaveLength(4);
    expect(later).toHaveLength(6);
    const [fresh, ...tried] = onVictim as [string, ...string[]]; // fresh: never sent during the outage

    await ownCluster.killNode(2);
    const items = [...elsewhere.slice(0, 3), ...tried, ...elsewhere.slice(3)].map((key) => ({ key }));
    await expect(service.claimMany(items)).rejects.toBeInstanceOf(StoreUnavailableError);
    const failedAt = Date.now();
    // Each master has its own circuit: the live ones serve at once, the dead one's keys fail fast.
    expect(claimedOnly(await service.claimMany(later.map((key) => ({ key }))))).toBe(true);
    const askedAt = Date.now();
    await expect(service.claim(tried[0] as string)).rejects.toThrow(/not retried yet/);
    expect(Date.now() - askedAt).toBeLessThan(100); // the circuit, not a 500 ms timeout
    expect(askedAt - failedAt).toBeLessThan(retryAfterMs); // still inside the window
    // Nothing the caller was told is unclaimed stays held on the live masters: released, not left to the lease.
    expect(await Promise.all(elsewhere.map((key) => redis.exists(service.keyFor(key))))).toEqual(
      Array(6).fill(0),
    );

    await ownCluster.forgetNode(2); // its slots move to a live master, empty
    /** Claims `key` until the store answers (the client learns the new slot owner meanwhile). */
    const claimWhenServed = async (key: string) => {
      for (let attempt = 0; attempt < 50; attempt++) {
        try {
          return await service.claim(key);
        } catch (error) {
          if (!(error instanceof StoreUnavailableError)) throw error;
          await sleep(200);
        }
      }
      throw new Error(`${key} never served after the failover`);
    };
    expect((await claimWhenServed(fresh)).status).toBe('claimed');
    // A claim the store gave up on (timeout) may still be delivered by ioredis once the slot has a
    // master again; released behind itself at best, else it holds the key until its lease ends.
    // Either way nobody was told it owns the key, and the key is free within one lease.
    for (const key of tried) {
      const deadline = Date.now() + leaseMs + 2000;
      let outcome = await claimWhenServed(key);
      while (outcome.status === 'in-flight' && Date.now() < deadline) {
        expect(outcome.retryAfterMs).toBeLessThanOrEqual(leaseMs);
        await sleep(100);
        outcome = await claimWhenServed(key);
      }
      expect(outcome.status).toBe('claimed');
    }
  });
});
