import type { TestingModule } from '@nestjs/testing';
import Redis from 'ioredis';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import type { DataSource } from 'typeorm';
import { DedupMetrics, IdempotencyService, StoreUnavailableError, type DedupModuleOptions } from '../src';
import {
  deadRedis,
  openDataSource,
  openRedis,
  quietLogs,
  startModule,
  uniquePrefix,
  redisRecordState,
} from './support/dedup.fixtures';

describe('Redis down', () => {
  let dataSource: DataSource;
  let moduleRef: TestingModule | undefined;
  const clients: Redis[] = [];

  const start = async (options: DedupModuleOptions) => {
    moduleRef = await startModule(options);
    return { service: moduleRef.get(IdempotencyService), metrics: moduleRef.get(DedupMetrics) };
  };
  const client = (redis: Redis) => (clients.push(redis), redis);

  beforeAll(async () => {
    quietLogs();
    dataSource = await openDataSource();
  });

  afterEach(async () => {
    await moduleRef?.close();
    moduleRef = undefined;
    for (const redis of clients.splice(0)) redis.disconnect();
  });

  afterAll(() => dataSource.destroy());

  it("with onStoreDown 'fail' throws StoreUnavailableError and never runs the effect", async () => {
    const { service, metrics } = await start({
      store: 'redis+postgres',
      redis: client(deadRedis()),
      dataSource,
      keyPrefix: uniquePrefix('down-fail'),
      onStoreDown: 'fail',
    });
    let effects = 0;

    await expect(service.run('evt-1', async () => ++effects)).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(service.run('evt-1', async () => ++effects)).rejects.toBeInstanceOf(StoreUnavailableError);

    expect(effects).toBe(0);
    expect(await service.get('evt-1')).toBeNull();
    expect(metrics.snapshot()['store-down']).toBeGreaterThanOrEqual(2);
  });

  it("with onStoreDown 'bypass' falls through to Postgres, which still suppresses duplicates", async () => {
    const { service, metrics } = await start({
      store: 'redis+postgres',
      redis: client(deadRedis()),
      dataSource,
      keyPrefix: uniquePrefix('down-bypass'),
      onStoreDown: 'bypass',
    });
    let effects = 0;

    await expect(service.run('evt-1', async () => ++effects)).resolves.toBe(1);
    await expect(service.run('evt-1', async () => ++effects)).resolves.toBe(1);
    const concurrent = await Promise.allSettled(
      Array.from({ length: 20 }, () => service.run('evt-2', async () => ++effects)),
    );

    expect(effects).toBe(2);
    expect(concurrent.filter((r) => r.status === 'fulfilled' && r.value === 2).length).toBeGreaterThan(0);
    expect(await service.get('evt-1')).toMatchObject({ state: 'COMPLETED', result: 1 });
    expect(metrics.snapshot()['store-down']).toBeGreaterThanOrEqual(2);
    expect(metrics.snapshot()['duplicate-completed'] + metrics.snapshot()['duplicate-in-flight']).toBe(20);
  });

  it('a redis-only store fails closed', async () => {
    const { service, metrics } = await start({
      store: 'redis',
      redis: client(deadRedis()),
      keyPrefix: uniquePrefix('down-redis'),
    });
    let effects = 0;

    await expect(service.run('evt-1', async () => ++effects)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(effects).toBe(0);
    expect(metrics.snapshot()['store-down']).toBe(1);
  });

  it('after Redis comes back, a key completed during the outage is recognised and backfilled into Redis', async () => {
    const redis = client(openRedis());
    const keyPrefix = uniquePrefix('down-recover');
    const { service } = await start({
      store: 'redis+postgres',
      redis,
      dataSource,
      keyPrefix,
      onStoreDown: 'bypass',
      redisRetryAfterMs: 0,
    });
    await redis.ping();
    redis.disconnect();
    let effects = 0;

    await expect(service.run('evt-outage', async () => ++effects)).resolves.toBe(1);
    expect(await redis.exists(`${keyPrefix}default:evt-outage`).catch(() => 'unreachable')).toBe(
      'unreachable',
    );

    await redis.connect();
    await expect(service.run('evt-outage', async () => ++effects)).resolves.toBe(1);

    expect(effects).toBe(1);
    expect(await redisRecordState(redis, `${keyPrefix}default:evt-outage`)).toBe('COMPLETED');
  });

  it('counts a Redis that accepts connections but never answers as down after redisTimeoutMs', async () => {
    const sockets: Socket[] = [];
    const server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const hung = client(
        new Redis({
          host: '127.0.0.1',
          port: (server.address() as AddressInfo).port,
          enableReadyCheck: false,
          maxRetriesPerRequest: null,
          disconnectTimeout: 10,
        }),
      );
      const { service, metrics } = await start({
        store: 'redis+postgres',
        redis: hung,
        dataSource,
        keyPrefix: uniquePrefix('down-hung'),
        onStoreDown: 'bypass',
        redisTimeoutMs: 200,
      });
      let effects = 0;

      await expect(service.run('evt-hung', async () => ++effects)).resolves.toBe(1);
      await expect(service.run('evt-hung', async () => ++effects)).resolves.toBe(1);

      expect(effects).toBe(1);
      expect(metrics.snapshot()['store-down']).toBeGreaterThanOrEqual(1);
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
