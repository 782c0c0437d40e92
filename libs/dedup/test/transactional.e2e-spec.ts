import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import type Redis from 'ioredis';
import type { DataSource, EntityManager } from 'typeorm';
import {
  currentTransactionManager,
  DedupConfigError,
  DedupMetrics,
  DuplicateInFlightError,
  Idempotent,
  IdempotencyService,
  Transactional,
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

interface OrderEvent {
  eventId: string;
  note: string;
}

@Injectable()
class OrderWriter {
  @Idempotent({ scope: 'orders-tx', transactional: true })
  async place(event: OrderEvent, manager?: EntityManager): Promise<string> {
    await manager?.query('INSERT INTO dedup_e2e_orders (event_id, note) VALUES ($1, $2)', [
      event.eventId,
      event.note,
    ]);
    return `placed ${event.eventId}`;
  }

  @Transactional()
  @Idempotent({ scope: 'orders-accessor' })
  async placeWithAccessor(event: OrderEvent): Promise<void> {
    await currentTransactionManager().query('INSERT INTO dedup_e2e_orders (event_id, note) VALUES ($1, $2)', [
      event.eventId,
      event.note,
    ]);
    if (event.note === 'boom') throw new Error('boom after the write');
  }
}

describe.each(['postgres', 'redis+postgres'] as DedupStoreMode[])('transactional mode on %s', (store) => {
  let redis: Redis;
  let dataSource: DataSource;
  let moduleRef: TestingModule;
  let service: IdempotencyService;

  const orders = async (eventId: string): Promise<number> =>
    Number(
      (await dataSource.query('SELECT count(*) AS n FROM dedup_e2e_orders WHERE event_id = $1', [eventId]))[0]
        .n,
    );
  const dedupRows = async (key: string, scope: string): Promise<number> =>
    Number(
      (
        await dataSource.query('SELECT count(*) AS n FROM dedup_records WHERE key = $1', [
          service.keyFor(key, scope),
        ])
      )[0].n,
    );
  const insertOrder = (manager: EntityManager | undefined, eventId: string) =>
    manager?.query('INSERT INTO dedup_e2e_orders (event_id, note) VALUES ($1, $2)', [eventId, store]);

  beforeAll(async () => {
    quietLogs();
    redis = openRedis();
    dataSource = await openDataSource();
    await dataSource.query(
      'CREATE TABLE IF NOT EXISTS dedup_e2e_orders (id serial PRIMARY KEY, event_id text, note text)',
    );
  });

  afterAll(async () => {
    await redis.quit();
    await dataSource.destroy();
  });

  beforeEach(async () => {
    moduleRef = await startModule(storeOptions(store, { redis, dataSource }), [OrderWriter]);
    service = moduleRef.get(IdempotencyService);
  });

  afterEach(() => moduleRef.close());

  it('rolls back the business row and the processed-event row together, then commits both on retry', async () => {
    const key = `tx-${store}-rollback`;
    await expect(
      service.run(
        key,
        async ({ manager }) => {
          await insertOrder(manager, key);
          throw new Error('fails after the business write');
        },
        { scope: 'tx', transactional: true },
      ),
    ).rejects.toThrow('fails after the business write');

    expect(await orders(key)).toBe(0);
    expect(await dedupRows(key, 'tx')).toBe(0);

    const retry = () =>
      service.run(key, async ({ manager }) => (await insertOrder(manager, key), 'ok'), {
        scope: 'tx',
        transactional: true,
      });
    await expect(retry()).resolves.toBe('ok');
    await expect(retry()).resolves.toBe('ok');

    expect(await orders(key)).toBe(1);
    expect(await dedupRows(key, 'tx')).toBe(1);
    expect(await service.get(key, { scope: 'tx' })).toMatchObject({ state: 'COMPLETED', result: 'ok' });
    expect(moduleRef.get(DedupMetrics).snapshot()).toMatchObject({
      released: 1,
      completed: 1,
      'duplicate-completed': 1,
    });
  });

  it('writes once for 50 concurrent transactional deliveries', async () => {
    const key = `tx-${store}-50`;
    // Postgres alone: duplicates wait on the first delivery's row lock. With Redis in front they
    // are turned away as in flight and, like SQS would, come back a little later.
    const deliver = async (): Promise<string> => {
      try {
        return await service.run(
          key,
          async ({ manager }) => {
            await insertOrder(manager, key);
            await sleep(100);
            return 'once';
          },
          { scope: 'tx', transactional: true },
        );
      } catch (error) {
        if (!(error instanceof DuplicateInFlightError)) throw error;
        await sleep(25);
        return deliver();
      }
    };

    const results = await Promise.all(Array.from({ length: 50 }, deliver));

    expect(results).toEqual(Array.from({ length: 50 }, () => 'once'));
    expect(await orders(key)).toBe(1);
  });

  it('passes the EntityManager to a decorated method as an extra argument and through the accessor', async () => {
    const writer = moduleRef.get(OrderWriter);
    const event = { eventId: `tx-${store}-decorated`, note: 'first' };

    await expect(writer.place(event)).resolves.toBe(`placed ${event.eventId}`);
    await expect(writer.place({ ...event, note: 'again' })).resolves.toBe(`placed ${event.eventId}`);
    expect(await orders(event.eventId)).toBe(1);

    const viaAccessor = { eventId: `tx-${store}-accessor`, note: 'boom' };
    await expect(writer.placeWithAccessor(viaAccessor)).rejects.toThrow('boom after the write');
    expect(await orders(viaAccessor.eventId)).toBe(0);
    expect(await dedupRows(viaAccessor.eventId, 'orders-accessor')).toBe(0);
    await writer.placeWithAccessor({ ...viaAccessor, note: 'fine' });
    await writer.placeWithAccessor({ ...viaAccessor, note: 'fine' });
    expect(await orders(viaAccessor.eventId)).toBe(1);
  });
});

describe('transactional mode on redis', () => {
  it('is refused: there is no transaction to join', async () => {
    quietLogs();
    const redis = openRedis();
    const moduleRef = await startModule({ store: 'redis', redis, keyPrefix: 'once:unused:' });
    try {
      await expect(
        moduleRef.get(IdempotencyService).run('k', async () => 1, { transactional: true }),
      ).rejects.toBeInstanceOf(DedupConfigError);
    } finally {
      await moduleRef.close();
      await redis.quit();
    }
  });
});
