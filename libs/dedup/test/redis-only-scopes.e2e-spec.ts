import type { TestingModule } from '@nestjs/testing';
import fc from 'fast-check';
import Redis from 'ioredis';
import { OwnRedisServer, waitFor } from '@once/testing';
import type { DataSource } from 'typeorm';
import {
  DedupConfigError,
  IdempotencyService,
  resolveDedupOptions,
  StoreUnavailableError,
  type DedupModuleOptions,
} from '../src';
import {
  deadRedis,
  openDataSource,
  openRedis,
  quietLogs,
  redisRecordState,
  startModule,
  uniquePrefix,
} from './support/dedup.fixtures';

/**
 * `redisOnlyScopes` (store redis+postgres): a scope whose effect keeps its own durable record (the
 * mail ledger) claims and completes in Redis alone, with no Postgres transaction; every other
 * scope keeps both layers. Real Redis and Postgres.
 */
describe('redisOnlyScopes: records of chosen scopes in Redis alone (redis+postgres)', () => {
  let redis: Redis;
  let dataSource: DataSource;
  let moduleRef: TestingModule | undefined;
  const clients: Redis[] = [];

  beforeAll(async () => {
    quietLogs();
    redis = openRedis();
    dataSource = await openDataSource();
  });

  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
    for (const client of clients.splice(0)) client.disconnect();
  });

  afterAll(async () => {
    await redis.quit();
    await dataSource.destroy();
  });

  const start = async (keyPrefix: string, extra: Partial<DedupModuleOptions> = {}) => {
    moduleRef = await startModule({
      store: 'redis+postgres',
      redis,
      dataSource,
      keyPrefix,
      ttlMs: 120_000,
      redisOnlyScopes: ['mailer'],
      ...extra,
    } as DedupModuleOptions);
    return moduleRef.get(IdempotencyService);
  };
  const postgresRows = async (keyPrefix: string): Promise<string[]> =>
    (
      (await dataSource.query(`SELECT key FROM dedup_records WHERE key LIKE $1 ORDER BY key`, [
        `${keyPrefix}%`,
      ])) as { key: string }[]
    ).map((row) => row.key);

  /** A `mailer` run of `key` whose effect throws: the error comes back to the caller. */
  const expectFailedRun = (service: IdempotencyService, key: string) =>
    expect(
      service.run(
        key,
        async () => {
          throw new Error('effect failed');
        },
        { scope: 'mailer' },
      ),
    ).rejects.toThrow('effect failed');

  it('runs a redis-only scope once with no Postgres row; other scopes still write Postgres; get, list and forget find it', async () => {
    const keyPrefix = uniquePrefix('redis-only');
    const service = await start(keyPrefix);
    let effects = 0;

    expect(await service.run('e-1', async () => ++effects, { scope: 'mailer' })).toBe(1);
    expect(await service.run('e-1', async () => ++effects, { scope: 'mailer' })).toBe(1);
    expect(await service.run('e-1', async () => ++effects, { scope: 'other' })).toBe(2);
    expect(effects).toBe(2);

    expect(await postgresRows(keyPrefix)).toEqual([`${keyPrefix}other:e-1`]);
    expect(await redisRecordState(redis, `${keyPrefix}mailer:e-1`)).toBe('COMPLETED');
    expect(await service.get('e-1', { scope: 'mailer' })).toMatchObject({ state: 'COMPLETED', attempts: 1 });

    const scoped = await service.list({ prefix: 'mailer:' });
    expect(scoped.items.map((item) => item.key)).toEqual(['e-1']);
    const unscoped = await service.list({});
    expect(unscoped.items.map((item) => `${item.scope}:${item.key}`)).toEqual(['other:e-1']);

    expect(await service.forget('e-1', { scope: 'mailer' })).toBe(true);
    expect(await service.run('e-1', async () => ++effects, { scope: 'mailer' })).toBe(3);
  });

  it('a claim in flight turns duplicates away and a failed run releases the key, all in Redis', async () => {
    const keyPrefix = uniquePrefix('redis-only-flight');
    const service = await start(keyPrefix);
    const claim = await service.claim('e-2', { scope: 'mailer', leaseMs: 5000 });
    expect(claim.status).toBe('claimed');
    expect((await service.claim('e-2', { scope: 'mailer' })).status).toBe('in-flight');
    if (claim.status === 'claimed') expect(await service.release(claim.claim)).toBe(true);
    await expectFailedRun(service, 'e-2');
    expect(await redisRecordState(redis, `${keyPrefix}mailer:e-2`)).toBeNull();
    expect(await service.run('e-2', async () => 'ran', { scope: 'mailer' })).toBe('ran');
    expect(await postgresRows(keyPrefix)).toEqual([]);
  });

  it("Redis down: 'bypass' claims and completes a redis-only key in Postgres (once), 'fail' throws", async () => {
    const dead = deadRedis();
    clients.push(dead);
    const keyPrefix = uniquePrefix('redis-only-down');
    const service = await start(keyPrefix, { redis: dead, onStoreDown: 'bypass' });
    let effects = 0;
    expect(await service.run('e-3', async () => ++effects, { scope: 'mailer' })).toBe(1);
    expect(await service.run('e-3', async () => ++effects, { scope: 'mailer' })).toBe(1);
    expect(await service.run('e-3', async () => ++effects, { scope: 'other' })).toBe(2);
    expect(effects).toBe(2);
    expect(await postgresRows(keyPrefix)).toEqual([`${keyPrefix}mailer:e-3`, `${keyPrefix}other:e-3`]);
    expect(await service.get('e-3', { scope: 'mailer' })).toMatchObject({ state: 'COMPLETED' });

    // A claim bypassed into Postgres is released there too, so a failed run can be retried.
    await expectFailedRun(service, 'e-3b');
    expect(await service.run('e-3b', async () => 'ran', { scope: 'mailer' })).toBe('ran');
    await moduleRef?.close();

    const failing = await start(uniquePrefix('redis-only-down-fail'), { redis: dead, onStoreDown: 'fail' });
    await expect(failing.run('e-3', async () => ++effects, { scope: 'mailer' })).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    expect(effects).toBe(2);
  });

  it('a key claimed in Postgres while Redis was down completes in Postgres (and Redis) once Redis is back', async () => {
    const server = await OwnRedisServer.start();
    const flaky = new Redis(server.url, {
      maxRetriesPerRequest: 0,
      enableOfflineQueue: false,
      retryStrategy: () => 50,
    });
    clients.push(flaky);
    try {
      const keyPrefix = uniquePrefix('redis-only-back');
      const service = await start(keyPrefix, {
        redis: flaky,
        onStoreDown: 'bypass',
        redisTimeoutMs: 300,
        redisRetryAfterMs: 200,
      });
      await server.kill();
      const claim = await service.claim('e-5', { scope: 'mailer', leaseMs: 10_000 });
      expect(claim.status).toBe('claimed');
      expect(await postgresRows(keyPrefix)).toEqual([`${keyPrefix}mailer:e-5`]);
      await server.restart();
      await waitFor('the client to reconnect', () => (flaky.status === 'ready' ? true : undefined));
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (claim.status !== 'claimed') throw new Error('not claimed');
      await expect(service.complete(claim.claim, 'sent')).resolves.toBeUndefined();
      const [row] = await dataSource.query(`SELECT state FROM dedup_records WHERE key = $1`, [
        `${keyPrefix}mailer:e-5`,
      ]);
      expect(row).toEqual({ state: 'COMPLETED' });
      expect(await redisRecordState(flaky, `${keyPrefix}mailer:e-5`)).toBe('COMPLETED');
      expect(await service.run('e-5', async () => 'again', { scope: 'mailer' })).toBe('sent');
    } finally {
      await server.stop();
    }
  });

  it('refuses transactional mode on a redis-only scope, and the option on stores other than redis+postgres', async () => {
    const service = await start(uniquePrefix('redis-only-tx'));
    await expect(
      service.run('e-4', async () => 1, { scope: 'mailer', transactional: true }),
    ).rejects.toBeInstanceOf(DedupConfigError);
    expect(() =>
      resolveDedupOptions({ store: 'redis', redis, redisOnlyScopes: ['mailer'] } as never),
    ).toThrow(/redisOnlyScopes: needs store "redis\+postgres"/);
    expect(() =>
      resolveDedupOptions({ store: 'redis+postgres', redis, dataSource, redisOnlyScopes: ['a:b'] }),
    ).toThrow(/redisOnlyScopes\.0/);
  });

  it('property: concurrent runs over both kinds of scope run each key once, and only layered scopes reach Postgres', async () => {
    const seed = Number(process.env.FC_SEED ?? Date.now() % 2 ** 31);
    console.log(`redis-only scopes property: FC_SEED=${seed}`);
    const keyPrefix = uniquePrefix('redis-only-prop');
    const service = await start(keyPrefix, { redisOnlyScopes: ['mailer', 'sms'] });
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({
            scope: fc.constantFrom('mailer', 'sms', 'other'),
            key: fc.constantFrom('a', 'b', 'c'),
          }),
          {
            minLength: 1,
            maxLength: 12,
          },
        ),
        async (calls) => {
          round += 1;
          const effects = new Map<string, number>();
          await Promise.all(
            calls.map(({ scope, key }) =>
              service
                .run(
                  `${round}-${key}`,
                  async () => effects.set(`${scope}:${key}`, (effects.get(`${scope}:${key}`) ?? 0) + 1),
                  {
                    scope,
                  },
                )
                .catch(() => undefined),
            ),
          );
          const wanted = new Set(calls.map(({ scope, key }) => `${scope}:${key}`));
          // Each distinct key ran exactly once: its first claim won, the concurrent repeats were turned away.
          expect([...effects.keys()].sort()).toEqual([...wanted].sort());
          for (const name of wanted) expect(effects.get(name)).toBe(1);
          const rows = (await postgresRows(keyPrefix)).filter(
            (row) =>
              row.endsWith(`:${round}-a`) || row.endsWith(`:${round}-b`) || row.endsWith(`:${round}-c`),
          );
          expect(rows.sort()).toEqual(
            [...wanted]
              .filter((name) => name.startsWith('other:'))
              .map((name) => `${keyPrefix}other:${round}-${name.slice('other:'.length)}`)
              .sort(),
          );
          for (const name of [...wanted].filter((n) => !n.startsWith('other:'))) {
            const [scope, key] = name.split(':');
            expect(await redisRecordState(redis, `${keyPrefix}${scope}:${round}-${key}`)).toBe('COMPLETED');
          }
        },
      ),
      { seed, numRuns: 30 },
    );
  });
});
