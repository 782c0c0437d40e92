import type { TestingModule } from '@nestjs/testing';
import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import {
  type Claim,
  DedupMetrics,
  DuplicateInFlightError,
  IdempotencyService,
  StaleClaimError,
  type DedupStoreMode,
} from '../src';
import {
  openDataSource,
  openRedis,
  quietLogs,
  sleep,
  startModule,
  storeOptions,
} from './support/dedup.fixtures';

const STORES: DedupStoreMode[] = ['redis', 'postgres', 'redis+postgres'];

describe.each(STORES)('IdempotencyService on %s (real stores)', (store) => {
  let redis: Redis;
  let dataSource: DataSource;
  let moduleRef: TestingModule;
  let service: IdempotencyService;
  let metrics: DedupMetrics;

  beforeAll(async () => {
    quietLogs();
    redis = openRedis();
    dataSource = await openDataSource();
  });

  afterAll(async () => {
    await redis.quit();
    await dataSource.destroy();
  });

  beforeEach(async () => {
    moduleRef = await startModule(storeOptions(store, { redis, dataSource }, { leaseMs: 2000 }));
    service = moduleRef.get(IdempotencyService);
    metrics = moduleRef.get(DedupMetrics);
  });

  afterEach(() => moduleRef.close());

  /** Runs like a redelivering queue would: an in-flight duplicate comes back a little later. */
  async function runUntilSettled<T>(key: string, fn: () => Promise<T>, scope = 'orders'): Promise<T> {
    for (;;) {
      try {
        return await service.run(key, fn, { scope });
      } catch (error) {
        if (!(error instanceof DuplicateInFlightError)) throw error;
        await sleep(25);
      }
    }
  }

  it('runs the effect exactly once for 50 concurrent deliveries of one key', async () => {
    let effects = 0;
    const effect = async () => {
      effects += 1;
      await sleep(100);
      return { effects };
    };

    const results = await Promise.all(Array.from({ length: 50 }, () => runUntilSettled('evt-50', effect)));

    expect(effects).toBe(1);
    expect(results).toEqual(Array.from({ length: 50 }, () => ({ effects: 1 })));
    const snapshot = metrics.snapshot();
    expect(snapshot.claimed).toBe(1);
    expect(snapshot.completed).toBe(1);
    expect(snapshot['duplicate-in-flight']).toBeGreaterThan(0);
    expect(snapshot['duplicate-completed']).toBe(49);
  });

  it('releases the claim when the function throws, so the retry runs and completes', async () => {
    let attempts = 0;
    const flaky = async () => {
      attempts += 1;
      if (attempts === 1) throw new Error('transient');
      return 'sent';
    };

    await expect(service.run('evt-flaky', flaky)).rejects.toThrow('transient');
    expect(await service.get('evt-flaky')).toBeNull();
    await expect(service.run('evt-flaky', flaky)).resolves.toBe('sent');
    await expect(service.run('evt-flaky', flaky)).resolves.toBe('sent');

    expect(attempts).toBe(2);
    expect(await service.get('evt-flaky')).toMatchObject({
      state: 'COMPLETED',
      result: 'sent',
      key: 'evt-flaky',
    });
    expect(metrics.snapshot()).toMatchObject({ released: 1, completed: 1, 'duplicate-completed': 1 });
  });

  it('lets a second worker take over after the lease expires and refuses the first one’s late complete', async () => {
    const first = await service.claim('evt-lease', { scope: 'lease', leaseMs: 300 });
    expect(first.status).toBe('claimed');
    await sleep(450);

    const second = await service.claim('evt-lease', { scope: 'lease', leaseMs: 10_000 });
    expect(second.status).toBe('claimed');
    const stale = (first as { claim: Claim }).claim;
    const owner = (second as { claim: Claim }).claim;
    expect(owner.fence).toBeGreaterThan(stale.fence);

    await expect(service.complete(stale, 'late')).rejects.toBeInstanceOf(StaleClaimError);
    await expect(service.release(stale)).resolves.toBe(false);
    await expect(service.extend(stale)).resolves.toBe(false);
    await service.complete(owner, 'on time');

    expect(await service.get('evt-lease', { scope: 'lease' })).toMatchObject({
      state: 'COMPLETED',
      result: 'on time',
    });
    expect(metrics.snapshot()['stale-token']).toBe(2);
  });

  it('keeps the lease alive while the function outlives it', async () => {
    let effects = 0;
    const slow = service.run(
      'evt-slow',
      async () => {
        effects += 1;
        await sleep(1200);
        return 'done';
      },
      { leaseMs: 300 },
    );
    await sleep(700);
    await expect(service.claim('evt-slow')).resolves.toMatchObject({ status: 'in-flight' });
    await expect(slow).resolves.toBe('done');

    expect(effects).toBe(1);
    expect(metrics.snapshot()['lease-extended']).toBeGreaterThanOrEqual(2);
    expect(metrics.snapshot()['stale-token']).toBe(0);
  });

  it('claims a batch of keys in one call, collapsing repeats', async () => {
    await service.run('b-done', async () => 42, { scope: 'batch' });

    const outcomes = await service.claimMany(
      [{ key: 'b-1' }, { key: 'b-2' }, { key: 'b-1' }, { key: 'b-done' }],
      { scope: 'batch' },
    );

    expect(outcomes.map((outcome) => outcome.status)).toEqual([
      'claimed',
      'claimed',
      'in-flight',
      'completed',
    ]);
    expect(outcomes[3]).toEqual({ status: 'completed', result: 42 });
    const claims = outcomes.flatMap((outcome) => (outcome.status === 'claimed' ? [outcome.claim] : []));
    await expect(service.completeMany(claims.map((claim) => ({ claim })))).resolves.toEqual([true, true]);
    await expect(service.claim('b-2', { scope: 'batch' })).resolves.toEqual({
      status: 'completed',
      result: undefined,
    });
  });

  it('lists, gets and forgets records', async () => {
    for (const key of ['a', 'b', 'c']) await service.run(key, async () => ({ key }), { scope: 'admin' });
    await service.claim('d', { scope: 'admin', messageId: 'm-d', leaseMs: 60_000 });
    await service.run('other', async () => 1, { scope: 'elsewhere' });

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await service.list({ prefix: 'admin:', limit: 2, cursor });
      seen.push(...page.items.map((record) => record.key));
      cursor = page.nextCursor;
    } while (cursor);
    expect(seen.sort()).toEqual(['a', 'b', 'c', 'd']);

    const inProgress = await service.list({ prefix: 'admin:', state: 'IN_PROGRESS', limit: 10 });
    expect(inProgress.items).toEqual([
      expect.objectContaining({ key: 'd', scope: 'admin', state: 'IN_PROGRESS', messageId: 'm-d' }),
    ]);

    expect(await service.forget('a', { scope: 'admin' })).toBe(true);
    expect(await service.get('a', { scope: 'admin' })).toBeNull();
    let reruns = 0;
    await service.run('a', async () => ++reruns, { scope: 'admin' });
    expect(reruns).toBe(1);
  });
});
