import type { Message } from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import { OwnRedisCluster } from '@once/testing';
import Redis, { Cluster } from 'ioredis';
import type { DataSource, EntityManager } from 'typeorm';
import {
  DedupConfigError,
  type DedupModuleOptions,
  DedupMetrics,
  DuplicateInFlightError,
  Idempotent,
  IdempotencyService,
  PayloadMismatchError,
  RecordInFlightError,
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
import { IDEMPOTENCY_ENGINE } from '../src/lib/engine/engine.provider';
import type { IdempotencyEngine } from '../src/lib/engine/engine.types';
import { DEDUP_STORE } from '../src/lib/engine/store.provider';
import type { DedupStore } from '../src/lib/stores/dedup-store.interface';
import { encodeRedisRecord } from '../src/lib/stores/redis-record.codec';

/** 'redis-cluster': store 'redis' on a Redis Cluster of the suite's own (3 local masters). */
const STORES: (DedupStoreMode | 'redis-cluster')[] = ['redis', 'postgres', 'redis+postgres', 'redis-cluster'];
const LEASE_MS = 300;

/** Results that JSON can express but a store may refuse (Postgres jsonb: NUL, lone surrogates). */
const AWKWARD_RESULTS: [string, unknown][] = [
  ['a string with NUL', 'a\u0000b'],
  ['a lone surrogate', 'x\ud800y'],
  ['a truncated emoji', '😀'.slice(0, 1)],
  ['NUL inside an object key and value', { 'k\u0000': ['\u0000', { deep: '\udfff' }] }],
  ['a value that looks like the wrapper', { 'once:json': '"not really"' }],
];

/** Results that cannot be stored at all. */
const circular: Record<string, unknown> = {};
circular.self = circular;
const UNSTORABLE_RESULTS: [string, unknown][] = [
  ['a BigInt', 10n],
  ['a circular object', circular],
  ['a result over the size bound', 'x'.repeat(300 * 1024)],
];

describe.each(STORES)('the guarantee on %s (real stores)', (name) => {
  const store: DedupStoreMode = name === 'redis-cluster' ? 'redis' : name;
  let ownCluster: OwnRedisCluster | undefined;
  let redis: Redis | Cluster;
  let dataSource: DataSource;
  let moduleRef: TestingModule;
  let service: IdempotencyService;
  let engine: IdempotencyEngine;

  beforeAll(async () => {
    quietLogs();
    if (name === 'redis-cluster') {
      ownCluster = await OwnRedisCluster.start();
      redis = new Cluster([...ownCluster.nodes], { redisOptions: { maxRetriesPerRequest: 1 } });
      await new Promise((resolve) => redis.once('ready', resolve));
    } else redis = openRedis();
    dataSource = await openDataSource();
  });

  afterAll(async () => {
    await redis.quit();
    await ownCluster?.stop();
    await dataSource.destroy();
  });

  /** storeOptions with this suite's client (its connections type a single node; the options take both). */
  const options = (extra: Partial<DedupModuleOptions>) =>
    ({
      ...storeOptions(store, { redis: redis as Redis, dataSource }, extra),
      ...(store !== 'postgres' && { redis }),
    }) as DedupModuleOptions;

  beforeEach(async () => {
    moduleRef = await startModule(options({ leaseMs: LEASE_MS }));
    service = moduleRef.get(IdempotencyService);
    engine = moduleRef.get(IDEMPOTENCY_ENGINE);
  });

  afterEach(() => moduleRef.close());

  describe('results a store cannot hold as they are', () => {
    it.each(AWKWARD_RESULTS)(
      '%s: the effect runs once and duplicates get the same value',
      async (label, value) => {
        const key = `awkward-${label}`;
        let effects = 0;
        const effect = () => {
          effects += 1;
          return value;
        };

        await expect(service.run(key, effect)).resolves.toEqual(value);
        await sleep(LEASE_MS + 100); // past the lease: an uncompleted claim would be claimable again
        await expect(service.run(key, effect)).resolves.toEqual(value);

        expect(effects).toBe(1);
        expect(await service.get(key)).toMatchObject({ state: 'COMPLETED', result: value });
      },
    );

    it.each(UNSTORABLE_RESULTS)(
      '%s: the effect runs once; duplicates get no result',
      async (label, value) => {
        const key = `unstorable-${label}`;
        let effects = 0;
        const effect = () => {
          effects += 1;
          return value;
        };

        await expect(service.run(key, effect)).resolves.toBe(value);
        await sleep(LEASE_MS + 100);
        await expect(service.run(key, effect)).resolves.toBeUndefined();

        expect(effects).toBe(1);
        expect(await service.get(key)).toMatchObject({ state: 'COMPLETED' });
        expect(moduleRef.get(DedupMetrics).snapshot()['result-not-stored']).toBe(1);
      },
    );
  });

  it('a completion that fails after the effect ran is an incident, not a retry of the effect', async () => {
    const complete = jest.spyOn(engine, 'completeMany').mockRejectedValueOnce(new Error('store broke'));
    let effects = 0;
    await expect(service.run('complete-fails', () => ++effects)).resolves.toBe(1);
    complete.mockRestore();
    await expect(service.run('complete-fails', () => ++effects)).rejects.toBeInstanceOf(
      DuplicateInFlightError,
    );
    expect(effects).toBe(1);
    expect(moduleRef.get(DedupMetrics).snapshot()).toMatchObject({ 'completion-failed': 1, released: 0 });
  });

  describe('payload fingerprint', () => {
    it('keeps the payload hash and counts, warns and still dedupes a different payload (default warn)', async () => {
      let effects = 0;
      await service.run('fp-warn', () => ++effects, { scope: 'fp', payload: { amount: 10 } });
      const record = await service.get('fp-warn', { scope: 'fp' });
      expect(record?.payloadHash).toMatch(/^[A-Za-z0-9_-]{22}$/);

      await expect(
        service.run('fp-warn', () => ++effects, { scope: 'fp', payload: { amount: 10 } }),
      ).resolves.toBe(1);
      expect(moduleRef.get(DedupMetrics).snapshot()['payload-mismatch']).toBe(0);
      await expect(
        service.run('fp-warn', () => ++effects, { scope: 'fp', payload: { amount: 99 } }),
      ).resolves.toBe(1);
      expect(effects).toBe(1);
      expect(moduleRef.get(DedupMetrics).snapshot()['payload-mismatch']).toBe(1);
    });

    it("refuses a different payload with onPayloadMismatch 'dead-letter', in flight and completed", async () => {
      const opts = { scope: 'fp', onPayloadMismatch: 'dead-letter' as const };
      const held = await service.claim('fp-dl', { ...opts, payload: 'body-a' });
      expect(held.status).toBe('claimed');
      await expect(service.run('fp-dl', () => 1, { ...opts, payload: 'body-b' })).rejects.toBeInstanceOf(
        PayloadMismatchError,
      );
      await expect(service.run('fp-dl', () => 1, { ...opts, payload: 'body-a' })).rejects.toBeInstanceOf(
        DuplicateInFlightError,
      );
      if (held.status === 'claimed') await service.complete(held.claim, 'done');
      await expect(service.run('fp-dl', () => 2, { ...opts, payload: 'body-b' })).rejects.toBeInstanceOf(
        PayloadMismatchError,
      );
      await expect(service.run('fp-dl', () => 2, { ...opts, payload: 'body-a' })).resolves.toBe('done');
      await expect(
        service.run('fp-dl', () => 2, { ...opts, payload: 'body-b', onPayloadMismatch: 'ignore' }),
      ).resolves.toBe('done');
      expect(moduleRef.get(DedupMetrics).snapshot()['payload-mismatch']).toBe(3);
    });

    it('compares nothing when either side has no payload', async () => {
      await service.run('fp-none', () => 1, { scope: 'fp' });
      await service.run('fp-none', () => 1, { scope: 'fp', payload: 'x', onPayloadMismatch: 'dead-letter' });
      expect(moduleRef.get(DedupMetrics).snapshot()['payload-mismatch']).toBe(0);
    });
  });

  it('completes without the result when the store refuses the result itself', async () => {
    // Injected: today's JSON.stringify cannot build a result jsonb refuses beyond NUL and lone
    // surrogates (encoded above), but a store-side refusal must still not keep the key open.
    const store = moduleRef.get<DedupStore>(DEDUP_STORE);
    const refuse = jest
      .spyOn(store, 'complete')
      .mockRejectedValueOnce(Object.assign(new Error('stack depth limit exceeded'), { code: '54001' }));
    let effects = 0;
    await expect(service.run('refused-result', () => (effects++, { big: 'value' }))).resolves.toEqual({
      big: 'value',
    });
    refuse.mockRestore();
    await sleep(LEASE_MS + 100);
    await expect(service.run('refused-result', () => (effects++, 'again'))).resolves.toBeUndefined();
    expect(effects).toBe(1);
    expect(await service.get('refused-result')).toMatchObject({ state: 'COMPLETED' });
    expect(moduleRef.get(DedupMetrics).snapshot()).toMatchObject({
      'result-not-stored': 1,
      'completion-failed': 0,
    });
  });

  it('reads back a result whose JSON only looks like the wrapper (toJSON, undefined fields)', async () => {
    const shaped = { toJSON: () => ({ 'once:json': 'x' }) };
    await service.run('wrapper-shaped', () => shaped);
    await expect(service.run('wrapper-shaped', () => 'again')).resolves.toEqual({ 'once:json': 'x' });
    await service.run('wrapper-undefined', () => ({ 'once:json': 'y', other: undefined }));
    await expect(service.run('wrapper-undefined', () => 'again')).resolves.toEqual({ 'once:json': 'y' });
  });

  if (store === 'redis') {
    it('a lease extension that re-takes a key Redis forgot keeps the payload fingerprint', async () => {
      const held = await service.claim('fp-retake', { scope: 'fp', payload: 'body-a' });
      expect(held.status).toBe('claimed');
      await redis.del(service.keyFor('fp-retake', 'fp')); // a restart forgot the live claim
      if (held.status === 'claimed') await expect(service.extend(held.claim)).resolves.toBe(true);
      await expect(
        service.run('fp-retake', () => 1, {
          scope: 'fp',
          payload: 'body-b',
          onPayloadMismatch: 'dead-letter',
        }),
      ).rejects.toBeInstanceOf(PayloadMismatchError);
    });
  }

  if (store === 'redis+postgres') {
    it("a Redis backfill keeps the durable record's payload fingerprint, not the mismatching delivery's", async () => {
      const metrics = moduleRef.get(DedupMetrics);
      await service.run('fp-backfill', () => 1, { scope: 'fp', payload: 'body-a' });
      await redis.del(service.keyFor('fp-backfill', 'fp')); // a failover forgot it
      await service.run('fp-backfill', () => 2, { scope: 'fp', payload: 'body-b' });
      expect(metrics.snapshot()['payload-mismatch']).toBe(1);
      await service.run('fp-backfill', () => 3, { scope: 'fp', payload: 'body-a' });
      await service.run('fp-backfill', () => 4, { scope: 'fp', payload: 'body-a' });
      expect(metrics.snapshot()['payload-mismatch']).toBe(1);
    });

    it('forget without force refuses a live claim Redis still holds before deleting anything', async () => {
      await service.run('forget-stale-redis', () => 1, { scope: 'f' });
      // Redis was left with a live IN_PROGRESS copy (its completion step was skipped while it was down).
      const now = Date.now();
      await redis.set(
        service.keyFor('forget-stale-redis', 'f'),
        encodeRedisRecord({
          state: 'IN_PROGRESS',
          token: 'someone',
          fence: 1,
          attempts: 1,
          createdAt: now,
          updatedAt: now,
        }),
        'PX',
        60_000,
      );
      await expect(service.forget('forget-stale-redis', { scope: 'f' })).rejects.toBeInstanceOf(
        RecordInFlightError,
      );
      expect(await service.get('forget-stale-redis', { scope: 'f' })).toMatchObject({ state: 'COMPLETED' });
      await expect(service.forget('forget-stale-redis', { scope: 'f', force: true })).resolves.toBe(true);
      expect(await redis.exists(service.keyFor('forget-stale-redis', 'f'))).toBe(0);
    });
  }

  describe('forget', () => {
    it('refuses a live IN_PROGRESS record without force, and deletes it with force', async () => {
      const claimed = await service.claim('forget-live', { scope: 'f' });
      expect(claimed.status).toBe('claimed');

      await expect(service.forget('forget-live', { scope: 'f' })).rejects.toBeInstanceOf(RecordInFlightError);
      expect(await service.get('forget-live', { scope: 'f' })).toMatchObject({ state: 'IN_PROGRESS' });

      await expect(service.forget('forget-live', { scope: 'f', force: true })).resolves.toBe(true);
      expect(await service.get('forget-live', { scope: 'f' })).toBeNull();
      await expect(service.forget('forget-live', { scope: 'f' })).resolves.toBe(false);
    });

    it('forgets a COMPLETED record without force, so the next run runs again', async () => {
      let effects = 0;
      await service.run('forget-done', () => ++effects, { scope: 'f' });
      await expect(service.forget('forget-done', { scope: 'f' })).resolves.toBe(true);
      await service.run('forget-done', () => ++effects, { scope: 'f' });
      expect(effects).toBe(2);
    });
  });

  describe('leases', () => {
    it('refuses leaseMs and ttlMs that would overflow timers or outlast SQS visibility', async () => {
      for (const options of [
        { leaseMs: 2 ** 31 },
        { leaseMs: 12 * 3600_000 + 1 },
        { leaseMs: 50 },
        { ttlMs: Number.MAX_SAFE_INTEGER },
        { leaseMs: 1.5 },
      ]) {
        await expect(service.run(`bounds-${JSON.stringify(options)}`, () => 1, options)).rejects.toThrow(
          /leaseMs|ttlMs/,
        );
      }
      expect(() => options({ leaseMs: 2 ** 31, ttlMs: 2 ** 32 })).not.toThrow();
      await expect(startModule(options({ leaseMs: 2 ** 31, ttlMs: 2 ** 32 }))).rejects.toBeInstanceOf(
        DedupConfigError,
      );
    });

    it("still extends the messages' visibility when a lease extension fails", async () => {
      const extend = jest.spyOn(engine, 'extendMany').mockRejectedValue(new Error('store is failing'));
      let visibilityExtensions = 0;
      await engine.execute(
        [{ key: 'visibility-on-failed-extension', payload: 'message' }],
        engine.resolve({ scope: 'lease' }),
        async () => {
          await sleep(LEASE_MS * 0.7);
          return { acked: [true] };
        },
        { onHeartbeat: async () => void visibilityExtensions++ },
      );
      const extensionsTried = extend.mock.calls.length;
      extend.mockRestore();
      expect(extensionsTried).toBeGreaterThan(0);
      expect(visibilityExtensions).toBe(extensionsTried);
    });

    it('aborts the context signal before the lease lapses when extensions fail', async () => {
      // Extensions fail: the heartbeat cannot renew. The owner must learn it lost the lease no later
      // than the lease's end, before anybody else can claim the key.
      // A lease whose lapse margin (a fifth of it) outlasts a loaded machine's timer delays; with
      // LEASE_MS the margin was 60 ms, and a busy CI runner can fire the abort that late.
      const leaseMs = 2500;
      const extend = jest.spyOn(engine, 'extendMany').mockRejectedValue(new Error('store is failing'));
      let abortedAt: number | undefined;
      const started = Date.now();
      let secondOwnerAt: number | undefined;
      const holder = service.run(
        'lease-local-deadline',
        async (context) => {
          context.signal.addEventListener('abort', () => (abortedAt ??= Date.now()));
          while (!context.signal.aborted && Date.now() - started < leaseMs * 3) await sleep(10);
          return 'holder';
        },
        { scope: 'lease', leaseMs },
      );
      let holderDone = false;
      void holder.finally(() => (holderDone = true)).catch(() => undefined);
      // A second caller tries all along; it can only get the key after the lease lapsed.
      while (!holderDone && secondOwnerAt === undefined && Date.now() - started < leaseMs * 3) {
        try {
          await service.run('lease-local-deadline', () => (secondOwnerAt = Date.now()), {
            scope: 'lease',
            leaseMs,
          });
        } catch (error) {
          if (!(error instanceof DuplicateInFlightError)) throw error;
        }
        await sleep(10);
      }
      await holder.catch(() => undefined);
      const extensionsTried = extend.mock.calls.length;
      extend.mockRestore();

      expect(extensionsTried).toBeGreaterThan(0);
      expect(abortedAt).toBeDefined();
      expect((abortedAt as number) - started).toBeLessThan(leaseMs);
      if (secondOwnerAt !== undefined) expect(secondOwnerAt).toBeGreaterThan(abortedAt as number);
    });
  });
});

interface OrderEvent {
  eventId: string;
}

const message = (eventId: string, id = eventId): Message => ({
  MessageId: `m-${id}`,
  ReceiptHandle: `r-${id}`,
  Body: JSON.stringify({ eventId }),
  Attributes: { ApproximateReceiveCount: '1' },
});

const required = (manager: EntityManager | undefined): EntityManager => {
  if (!manager) throw new Error('transactional handler called without its EntityManager');
  return manager;
};

/** Handlers that acknowledge (or not) as a test tells them, writing a business row first. */
@Injectable()
class OrderConsumer {
  /** eventIds the handlers must not acknowledge. */
  readonly refuse = new Set<string>();

  @SqsMessageHandler('orders-single', false)
  @Idempotent({ scope: 'tx-single', transactional: true })
  async single(msg: Message, manager?: EntityManager): Promise<unknown> {
    const { eventId } = JSON.parse(msg.Body as string) as OrderEvent;
    await required(manager).query('INSERT INTO guarantee_orders (event_id) VALUES ($1)', [eventId]);
    // sqs-consumer: an object other than the message means "not acknowledged".
    return this.refuse.has(eventId) ? { acknowledged: false } : msg;
  }

  @SqsMessageHandler('orders-batch', true)
  @Idempotent({ scope: 'tx-batch', transactional: true })
  async batch(messages: Message[], manager?: EntityManager): Promise<Message[]> {
    for (const msg of messages) {
      const { eventId } = JSON.parse(msg.Body as string) as OrderEvent;
      await required(manager).query('INSERT INTO guarantee_orders (event_id) VALUES ($1)', [eventId]);
    }
    return messages.filter((msg) => !this.refuse.has((JSON.parse(msg.Body as string) as OrderEvent).eventId));
  }
}

describe.each(['postgres', 'redis+postgres'] as DedupStoreMode[])(
  'transactional mode is both-or-neither on %s',
  (store) => {
    let redis: Redis;
    let dataSource: DataSource;
    let moduleRef: TestingModule;
    let service: IdempotencyService;
    let consumer: OrderConsumer;

    const orders = async (eventId: string): Promise<number> =>
      Number(
        (
          await dataSource.query('SELECT count(*) AS n FROM guarantee_orders WHERE event_id = $1', [eventId])
        )[0].n,
      );

    beforeAll(async () => {
      quietLogs();
      redis = openRedis();
      dataSource = await openDataSource();
      await dataSource.query(
        'CREATE TABLE IF NOT EXISTS guarantee_orders (id serial PRIMARY KEY, event_id text)',
      );
    });

    afterAll(async () => {
      await redis.quit();
      await dataSource.destroy();
    });

    beforeEach(async () => {
      moduleRef = await startModule(storeOptions(store, { redis, dataSource }), [OrderConsumer]);
      service = moduleRef.get(IdempotencyService);
      consumer = moduleRef.get(OrderConsumer);
    });

    afterEach(() => moduleRef.close());

    it('a single handler that does not acknowledge writes nothing; its redelivery writes once', async () => {
      const eventId = `single-nack-${store}`;
      consumer.refuse.add(eventId);
      await consumer.single(message(eventId));
      expect(await orders(eventId)).toBe(0);
      expect(await service.get(eventId, { scope: 'tx-single' })).toBeNull();

      consumer.refuse.delete(eventId);
      await consumer.single(message(eventId));
      await consumer.single(message(eventId, `${eventId}-dup`));
      expect(await orders(eventId)).toBe(1);
    });

    it('a partially acknowledged batch keeps exactly the acknowledged writes', async () => {
      const ids = ['a', 'b', 'c', 'd'].map((s) => `batch-partial-${store}-${s}`);
      consumer.refuse.add(ids[1] as string);
      consumer.refuse.add(ids[3] as string);

      const acked = await consumer.batch(ids.map((id) => message(id)));
      expect(acked.map((m) => m.MessageId).sort()).toEqual([`m-${ids[0]}`, `m-${ids[2]}`]);
      expect(await Promise.all(ids.map(orders))).toEqual([1, 0, 1, 0]);
      expect(await service.get(ids[1] as string, { scope: 'tx-batch' })).toBeNull();

      // Redelivery of all four: the acknowledged two are duplicates, the other two now succeed.
      consumer.refuse.clear();
      const again = await consumer.batch(ids.map((id) => message(id, `${id}-again`)));
      expect(again).toHaveLength(4);
      expect(await Promise.all(ids.map(orders))).toEqual([1, 1, 1, 1]);
    });

    it('a batch that acknowledges nothing writes nothing', async () => {
      const ids = ['a', 'b'].map((s) => `batch-none-${store}-${s}`);
      ids.forEach((id) => consumer.refuse.add(id));
      const acked = await consumer.batch(ids.map((id) => message(id)));
      expect(acked).toEqual([]);
      expect(await Promise.all(ids.map(orders))).toEqual([0, 0]);
    });
  },
);
