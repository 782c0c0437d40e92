import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { DataSource } from 'typeorm';
import { DEDUP_ENTITIES, DEDUP_MIGRATIONS } from '../src/typeorm';
import { DedupMetrics } from '../src/lib/dedup-metrics.service';
import { StoreUnavailableError } from '../src/lib/dedup.errors';
import type { ClaimRequest } from '../src/lib/stores/dedup-store.interface';
import { LayeredStore } from '../src/lib/stores/layered.store';
import { PostgresStore } from '../src/lib/stores/postgres.store';
import { RedisStore } from '../src/lib/stores/redis.store';
import {
  deadRedis,
  eventually,
  openDataSource,
  quietLogs,
  sleep,
  uniquePrefix,
  redisRecordState,
} from './support/dedup.fixtures';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address ? address.port : 0;
}

/** A redis-server of this file's own (never the shared one): it gets OOM'd, paused and killed. */
class PrivateRedis {
  private child?: ChildProcess;
  constructor(readonly port: number) {}

  async start(): Promise<void> {
    this.child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    await eventually(
      `redis-server on ${this.port}`,
      async () => {
        const probe = new Redis({
          port: this.port,
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        try {
          await probe.connect();
          return (await probe.ping()) === 'PONG';
        } catch {
          return false;
        } finally {
          probe.disconnect();
        }
      },
      10_000,
    );
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
}

const requests = (...storageKeys: string[]): ClaimRequest[] =>
  storageKeys.map((storageKey) => ({ storageKey, scope: 's', key: storageKey }));
const held = (token: string, ...storageKeys: string[]) =>
  requests(...storageKeys).map((r) => ({ ...r, token }));

describe('store faults after the effect ran', () => {
  let server: PrivateRedis;
  let admin: Redis;
  let client: Redis;
  let dataSource: DataSource;
  const logger = new Logger('store-faults');
  const clients: Redis[] = [];

  const redisStore = (redis: Redis, timeoutMs = 400, retryAfterMs = 60_000) =>
    new RedisStore(
      redis,
      { keyPrefix: uniquePrefix('faults'), timeoutMs, retryAfterMs },
      new DedupMetrics(),
      logger,
    );
  /** redis+postgres over `redis`, Postgres with metrics of its own; Redis down fails claims. */
  const failingLayered = (redis: RedisStore) =>
    new LayeredStore(redis, new PostgresStore(dataSource, new DedupMetrics()), 'fail', logger);
  const key = (label: string) => `${uniquePrefix('faults')}s:${label}`;

  beforeAll(async () => {
    quietLogs();
    server = new PrivateRedis(await freePort());
    await server.start();
    admin = new Redis({ port: server.port, maxRetriesPerRequest: null });
    client = new Redis({ port: server.port, maxRetriesPerRequest: 1 });
    clients.push(admin, client);
    dataSource = await openDataSource();
  });

  afterEach(async () => {
    await admin.config('SET', 'maxmemory', '0');
    await admin.client('UNPAUSE');
  });

  afterAll(async () => {
    for (const redis of clients) redis.disconnect();
    await server.kill();
    await dataSource.destroy();
  });

  it('after a claim timed out and opened the circuit, a complete of another claimed key still succeeds', async () => {
    const store = redisStore(client, 200);
    const [a, c, d] = [key('a'), key('c'), key('d')];
    await expect(store.claim(requests(a), 't-a', 60_000)).resolves.toMatchObject([{ status: 'claimed' }]);

    await admin.client('PAUSE', 500, 'ALL');
    await expect(store.claim(requests(c), 't-c', 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    // New claims fail fast while the circuit is open: refused without a command sent to Redis
    // (a clock here measured the machine's load, not the circuit)...
    const sent = jest.spyOn(client, 'sendCommand');
    await expect(store.claim(requests(d), 't-d', 60_000)).rejects.toThrow(/failed recently/);
    expect(sent).not.toHaveBeenCalled();
    sent.mockRestore();
    // ...but the completion of work already done goes past it and waits the pause out.
    await expect(store.complete(held('t-a', a), 60_000)).resolves.toEqual([true]);
    expect(await redisRecordState(client, a)).toBe('COMPLETED');
  });

  it('a claim that timed out leaves no IN_PROGRESS record once Redis catches up', async () => {
    const store = redisStore(client, 100);
    const late = key('late-claim');
    await admin.client('PAUSE', 400, 'ALL');
    await expect(store.claim(requests(late), 't-late', 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    await sleep(500);
    expect(await client.exists(late)).toBe(0);
  });

  it('a completion under a transient OOM succeeds after a retry; a release needs none (DEL is allowed)', async () => {
    const store = redisStore(client);
    const [a, b] = [key('oom-a'), key('oom-b')];
    await store.claim(requests(a, b), 't', 60_000);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');
    const recovered = sleep(150).then(() => admin.config('SET', 'maxmemory', '0'));

    await expect(store.complete(held('t', a), 60_000)).resolves.toEqual([true]);
    await recovered;
    expect(await redisRecordState(client, a)).toBe('COMPLETED');

    await admin.config('SET', 'maxmemory', '1');
    await expect(store.release(held('t', b))).resolves.toEqual([true]);
    expect(await client.exists(b)).toBe(0);
  });

  it('a persistent OOM reply is StoreUnavailableError (so it follows onStoreDown), within a bounded time', async () => {
    const metrics = new DedupMetrics();
    const store = new RedisStore(
      client,
      { keyPrefix: uniquePrefix('faults'), timeoutMs: 400, retryAfterMs: 0 },
      metrics,
      logger,
    );
    const a = key('oom-persistent');
    await store.claim(requests(a), 't', 60_000);
    await admin.config('SET', 'maxmemory-policy', 'noeviction');
    await admin.config('SET', 'maxmemory', '1');

    await expect(store.claim(requests(key('oom-new')), 't2', 60_000)).rejects.toBeInstanceOf(
      StoreUnavailableError,
    );
    // Bounded: the default 4 write attempts, each under redisTimeoutMs, then the error.
    const sent = jest.spyOn(client, 'sendCommand');
    await expect(store.complete(held('t', a), 60_000)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(sent.mock.calls.filter(([command]) => command.name === 'evalsha')).toHaveLength(4);
    sent.mockRestore();
    expect(metrics.snapshot()['store-down']).toBe(2);

    // redis+postgres with 'bypass': an OOM'd Redis is skipped like a dead one.
    const layered = new LayeredStore(store, new PostgresStore(dataSource, metrics), 'bypass', logger);
    await expect(layered.claim(requests(key('oom-layered')), 't3', 60_000)).resolves.toMatchObject([
      { status: 'claimed' },
    ]);
  });

  it('a completion survives Redis being killed and restarted under it', async () => {
    const store = redisStore(client);
    const a = key('restart');
    await store.claim(requests(a), 't', 60_000);
    await server.kill();
    const restarted = sleep(200).then(() => server.start());

    await expect(store.complete(held('t', a), 60_000)).resolves.toEqual([true]);
    await restarted;
    // The restart lost the IN_PROGRESS record; the completion recreated it as COMPLETED.
    expect(await redisRecordState(client, a)).toBe('COMPLETED');
  });

  it('Postgres complete is retried after its connection was terminated mid-statement', async () => {
    const app = `faults-${randomUUID().slice(0, 8)}`;
    const own = new DataSource({
      type: 'postgres',
      url: process.env.DATABASE_URL,
      entities: DEDUP_ENTITIES,
      migrations: DEDUP_MIGRATIONS,
      extra: { max: 2, application_name: app },
    });
    await own.initialize();
    try {
      const store = new PostgresStore(own, new DedupMetrics());
      const a = key('pg-terminated');
      await store.claim(requests(a), 't', 60_000);
      const locker = dataSource.createQueryRunner();
      await locker.connect();
      await locker.startTransaction();
      await locker.query('SELECT 1 FROM dedup_records WHERE key = $1 FOR UPDATE', [a]);
      const completed = store.complete(held('t', a), 60_000);
      await eventually('complete waits for the row lock', async () => {
        const rows = await dataSource.query(
          `SELECT pg_terminate_backend(pid) AS killed FROM pg_stat_activity
           WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [app],
        );
        return rows.length > 0;
      });
      await sleep(100);
      await locker.commitTransaction();
      await locker.release();
      await expect(completed).resolves.toEqual([true]);
      expect(await store.get(a)).toMatchObject({ state: 'COMPLETED' });
    } finally {
      await own.destroy();
    }
  });

  describe('forget', () => {
    it('Redis: keeps a live IN_PROGRESS record unless forced', async () => {
      const store = redisStore(client);
      const [live, done] = [key('f-live'), key('f-done')];
      await store.claim(requests(live, done), 't', 60_000);
      await store.complete(held('t', done), 60_000);

      await expect(store.forget(live, { force: false })).resolves.toBe('in-progress');
      expect(await redisRecordState(client, live)).toBe('IN_PROGRESS');
      await expect(store.forget(live, { force: true })).resolves.toBe('forgotten');
      await expect(store.forget(live, { force: false })).resolves.toBe('absent');
      await expect(store.forget(done, { force: false })).resolves.toBe('forgotten');
      expect(await client.exists(live, done)).toBe(0);
    });

    it('Postgres: one conditional DELETE; an expired claim is not live', async () => {
      const store = new PostgresStore(dataSource, new DedupMetrics());
      const [live, done, stale] = [key('pf-live'), key('pf-done'), key('pf-stale')];
      await store.claim(requests(live, done), 't', 60_000);
      await store.claim(requests(stale), 't', 1);
      await store.complete(held('t', done), 60_000);
      await sleep(5);

      await expect(store.forget(live, { force: false })).resolves.toBe('in-progress');
      expect(await store.get(live)).toMatchObject({ state: 'IN_PROGRESS' });
      await expect(store.forget(stale, { force: false })).resolves.toBe('absent');
      await expect(store.forget(done, { force: false })).resolves.toBe('forgotten');
      await expect(store.forget(live, { force: true })).resolves.toBe('forgotten');
      await expect(store.forget(live, { force: true })).resolves.toBe('absent');
      const rows = await dataSource.query('SELECT key FROM dedup_records WHERE key = ANY($1::text[])', [
        [live, done, stale],
      ]);
      expect(rows).toEqual([]);
    });

    it('redis+postgres: a record Redis alone holds counts; Redis unreachable is an error, never success', async () => {
      const redis = redisStore(client);
      const postgres = new PostgresStore(dataSource, new DedupMetrics());
      const layered = new LayeredStore(redis, postgres, 'fail', logger);
      const [onlyRedis, both] = [key('lf-redis'), key('lf-both')];
      await redis.claim(requests(onlyRedis), 't', 60_000);
      await layered.claim(requests(both), 't', 60_000);
      await layered.complete(held('t', both), 60_000);

      await expect(layered.forget(onlyRedis, { force: false })).resolves.toBe('in-progress');
      await expect(layered.forget(onlyRedis, { force: true })).resolves.toBe('forgotten');
      expect(await client.exists(onlyRedis)).toBe(0);

      const dead = deadRedis();
      clients.push(dead);
      const down = new RedisStore(
        dead,
        { keyPrefix: uniquePrefix('faults'), timeoutMs: 100, retryAfterMs: 0 },
        new DedupMetrics(),
        logger,
      );
      const unreachable = new LayeredStore(down, postgres, 'bypass', logger);
      await expect(unreachable.forget(both, { force: false })).rejects.toBeInstanceOf(StoreUnavailableError);
      // Postgres' row went; Redis' copy is still there, so a retry must report it forgotten.
      expect(await redisRecordState(client, both)).toBe('COMPLETED');
      await expect(layered.forget(both, { force: false })).resolves.toBe('forgotten');
      expect(await client.exists(both)).toBe(0);
      expect(await postgres.get(both)).toBeNull();
    });
  });

  it('redis+postgres: a key Postgres rejects leaves no IN_PROGRESS orphan in Redis', async () => {
    const redis = redisStore(client);
    const layered = failingLayered(redis);
    const bad = key('nul\u0000byte');
    const good = key('fine');

    await expect(layered.claim(requests(good, bad), 't', 60_000)).rejects.toThrow(/0x00|invalid byte/);
    expect(await client.exists(bad, good)).toBe(0);
  });

  it('redis+postgres: a duplicate of a key Postgres completed but Redis still holds gets the completion, not in flight', async () => {
    // FC_SEED=869147901 of the lifecycle model: the owner's Redis write was lost (a late reply), so
    // Redis kept its IN_PROGRESS record while Postgres, the record of truth, had the completion.
    const redis = redisStore(client);
    const layered = failingLayered(redis);
    const done = key('completed-in-postgres');
    const [first] = await layered.claim(requests(done), 'owner', 60_000);
    expect(first?.status).toBe('claimed');
    const lost = jest
      .spyOn(redis, 'complete')
      .mockRejectedValueOnce(new StoreUnavailableError('redis', 'no reply within 1000 ms'));
    await expect(
      layered.complete([{ ...requests(done)[0]!, token: 'owner', result: '"r1"' }], 60_000),
    ).resolves.toEqual([true]);
    expect(lost).toHaveBeenCalledTimes(1);
    expect(await redisRecordState(client, done)).toBe('IN_PROGRESS');

    const [duplicate] = await layered.claim(requests(done), 'duplicate', 60_000);
    expect(duplicate).toMatchObject({ status: 'completed', result: '"r1"' });
  });

  it('redis+postgres: a Redis in-flight answer stands when Postgres cannot be asked, even over a completion', async () => {
    const redis = redisStore(client);
    const postgres = new PostgresStore(dataSource, new DedupMetrics());
    const layered = new LayeredStore(redis, postgres, 'fail', logger);
    // Completed in Postgres, still IN_PROGRESS in Redis: only the check could tell, and it fails.
    const done = key('completed-unconfirmed');
    await layered.claim(requests(done), 'owner', 60_000);
    jest
      .spyOn(redis, 'complete')
      .mockRejectedValueOnce(new StoreUnavailableError('redis', 'no reply within 1000 ms'));
    await layered.complete([{ ...requests(done)[0]!, token: 'owner', result: '"r1"' }], 60_000);
    const check = jest.spyOn(postgres, 'getMany').mockRejectedValueOnce(new Error('postgres down'));
    const [duplicate] = await layered.claim(requests(done), 'duplicate', 60_000);
    expect(check).toHaveBeenCalledTimes(1);
    expect(duplicate?.status).toBe('in-flight');
  });
});
