import { Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { DedupMetrics } from '../src/lib/dedup-metrics.service';
import type { ClaimRequest } from '../src/lib/stores/dedup-store.interface';
import { RedisStore } from '../src/lib/stores/redis.store';
import { openRedis, quietLogs, sleep, uniquePrefix } from './support/dedup.fixtures';

/**
 * Records are strings now; Redis may still hold hashes written by an older version (a rolling
 * upgrade, COMPLETED records kept for their TTL). Both must read and behave alike.
 */
describe('Redis record format: strings, and hashes of older versions', () => {
  let redis: Redis;
  let store: RedisStore;
  let keyPrefix: string;

  beforeAll(() => {
    quietLogs();
    redis = openRedis();
  });
  afterAll(async () => {
    await redis.quit();
  });
  beforeEach(() => {
    keyPrefix = uniquePrefix('format');
    store = new RedisStore(
      redis,
      { keyPrefix, timeoutMs: 2000, retryAfterMs: 100 },
      new DedupMetrics(),
      new Logger('t'),
    );
  });

  const request = (key: string, extra: Partial<ClaimRequest> = {}): ClaimRequest => ({
    storageKey: `${keyPrefix}s:${key}`,
    scope: 's',
    key,
    ...extra,
  });

  /** A record as versions before the string format wrote it. */
  async function legacy(key: string, fields: Record<string, string | number>, ttlMs?: number) {
    const storageKey = `${keyPrefix}s:${key}`;
    await redis.hset(storageKey, fields);
    if (ttlMs) await redis.pexpire(storageKey, ttlMs);
    return storageKey;
  }

  it('keeps any messageId and result through claim, complete, get and list (Lua and Node agree on the bytes)', async () => {
    const messageId = 'msg|é:7|😀';
    const result = JSON.stringify({ note: 'a|b:c', emoji: '😀', n: 12 });
    const r = request('unicode', { messageId, payloadHash: 'abc123' });
    const [claimed] = await store.claim([r], 'tok-1', 30_000);
    expect(claimed).toMatchObject({ status: 'claimed' });
    const inFlight = await store.get(r.storageKey);
    expect(inFlight).toMatchObject({ state: 'IN_PROGRESS', messageId, payloadHash: 'abc123', attempts: 1 });
    expect(inFlight?.leaseUntil?.getTime()).toBeGreaterThan(Date.now() + 25_000);
    expect(await store.complete([{ ...r, token: 'tok-1', result }], 60_000)).toEqual([true]);
    const done = await store.get(r.storageKey);
    expect(done).toMatchObject({
      state: 'COMPLETED',
      messageId,
      result,
      payloadHash: 'abc123',
      leaseUntil: null,
    });
    expect(done?.fence).toBe(inFlight?.fence);
    expect(done?.createdAt).toEqual(inFlight?.createdAt);
    const [again] = await store.claim([request('unicode', { messageId: 'other' })], 'tok-2', 30_000);
    expect(again).toMatchObject({ status: 'completed', result, payloadHash: 'abc123' });
    const page = await store.list({ prefix: keyPrefix, limit: 10 });
    expect(page.items.map((item) => [item.key, item.messageId, item.result])).toEqual([
      ['unicode', messageId, result],
    ]);
  });

  it('a live claim answers in flight for the rest of its lease; the holder extends, completes twice, releases', async () => {
    const r = request('live');
    await store.claim([r], 'tok-a', 2000);
    const [dup] = await store.claim([r], 'tok-b', 2000);
    expect(dup?.status).toBe('in-flight');
    expect(dup?.status === 'in-flight' && dup.retryAfterMs).toBeGreaterThan(1000);
    expect(await store.extend([{ ...r, token: 'tok-b' }], 5000)).toEqual([false]);
    expect(await store.extend([{ ...r, token: 'tok-a' }], 5000)).toEqual([true]);
    expect(await redis.pttl(r.storageKey)).toBeGreaterThan(4000);
    expect(await store.release([{ storageKey: r.storageKey, token: 'tok-b' }])).toEqual([false]);
    expect(await store.complete([{ ...r, token: 'tok-a', result: '1' }], 60_000)).toEqual([true]);
    expect(await store.complete([{ ...r, token: 'tok-a', result: '1' }], 60_000)).toEqual([true]); // a retried completion
    expect(await store.complete([{ ...r, token: 'tok-b' }], 60_000)).toEqual([false]);
    expect(await store.release([{ storageKey: r.storageKey, token: 'tok-a' }])).toEqual([false]); // completed: kept
    const r2 = request('released');
    await store.claim([r2], 'tok-c', 2000);
    expect(await store.release([{ storageKey: r2.storageKey, token: 'tok-c' }])).toEqual([true]);
    expect(await redis.exists(r2.storageKey)).toBe(0);
  });

  it('an expired lease frees the key: the next claim takes it with a higher fence', async () => {
    const r = request('expiring');
    const [first] = await store.claim([r], 'tok-1', 150);
    await sleep(250);
    const [second] = await store.claim([r], 'tok-2', 5000);
    expect(second?.status).toBe('claimed');
    expect(second?.status === 'claimed' && first?.status === 'claimed' && second.fence > first.fence).toBe(
      true,
    );
    expect(await store.complete([{ ...r, token: 'tok-1' }], 60_000)).toEqual([false]); // the old holder is stale
  });

  it('reads a COMPLETED hash of an older version: duplicates get its result, get and list show it, forget deletes it', async () => {
    const key = await legacy(
      'old-done',
      {
        state: 'COMPLETED',
        token: 'old',
        fence: 41,
        messageId: 'm-old',
        attempts: 2,
        createdAt: 1000,
        updatedAt: 2000,
        result: '"r"',
        payloadHash: 'ff',
      },
      60_000,
    );
    const [dup] = await store.claim([request('old-done')], 'tok-new', 30_000);
    expect(dup).toMatchObject({ status: 'completed', result: '"r"', payloadHash: 'ff' });
    expect(await store.get(key)).toMatchObject({
      state: 'COMPLETED',
      fence: 41,
      messageId: 'm-old',
      attempts: 2,
      result: '"r"',
    });
    expect((await store.list({ prefix: keyPrefix, limit: 10 })).items.map((i) => i.key)).toEqual([
      'old-done',
    ]);
    expect(await store.complete([{ ...request('old-done'), token: 'tok-new' }], 60_000)).toEqual([false]);
    expect(await store.forget(key, { force: false })).toBe('forgotten');
    expect(await redis.exists(key)).toBe(0);
  });

  it('a live IN_PROGRESS hash of an older version is in flight, not ours to complete, release, extend or forget', async () => {
    const key = await legacy(
      'old-live',
      {
        state: 'IN_PROGRESS',
        token: 'old',
        fence: 5,
        leaseUntil: Date.now() + 60_000,
        attempts: 1,
        createdAt: 1,
      },
      60_000,
    );
    const [dup] = await store.claim([request('old-live')], 'tok', 30_000);
    expect(dup?.status).toBe('in-flight');
    expect(await store.complete([{ ...request('old-live'), token: 'tok' }], 60_000)).toEqual([false]);
    expect(await store.release([{ storageKey: key, token: 'old' }])).toEqual([false]);
    expect(await store.extend([{ ...request('old-live'), token: 'old' }], 5000)).toEqual([false]);
    expect(await store.forget(key, { force: false })).toBe('in-progress');
    expect(await store.get(key)).toMatchObject({ state: 'IN_PROGRESS', fence: 5 });
    expect(await store.forget(key, { force: true })).toBe('forgotten');
  });

  it('an IN_PROGRESS hash whose lease ended is taken over as a string record, attempts counted on', async () => {
    await legacy('old-stale', {
      state: 'IN_PROGRESS',
      token: 'old',
      fence: 5,
      leaseUntil: Date.now() - 1,
      attempts: 3,
      createdAt: 1,
    });
    const [claimed] = await store.claim([request('old-stale')], 'tok', 30_000);
    expect(claimed?.status).toBe('claimed');
    expect(await redis.type(`${keyPrefix}s:old-stale`)).toBe('string');
    expect(await store.get(`${keyPrefix}s:old-stale`)).toMatchObject({ state: 'IN_PROGRESS', attempts: 4 });
  });
});
