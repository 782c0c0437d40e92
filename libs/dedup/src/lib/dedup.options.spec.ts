import Redis, { Cluster } from 'ioredis';
import { DataSource } from 'typeorm';
import { DedupConfigError } from './dedup.errors';
import { type DedupModuleOptions, resolveDedupOptions } from './dedup.options';

/** Options as a JavaScript caller may pass them: the types would refuse them, the runtime check must too. */
const untyped = (options: Record<string, unknown>) => options as unknown as DedupModuleOptions;

describe('resolveDedupOptions', () => {
  const redis = new Redis({ lazyConnect: true });
  const prefixed = new Redis({ lazyConnect: true, keyPrefix: 'app:' });
  const dataSource = new DataSource({ type: 'postgres' });

  afterAll(() => {
    redis.disconnect();
    prefixed.disconnect();
  });

  it('applies defaults', () => {
    expect(resolveDedupOptions({ store: 'redis', redis })).toMatchObject({
      ttlMs: 86_400_000,
      leaseMs: 30_000,
      keyPrefix: 'once:dedup:',
      onStoreDown: 'fail',
      missingKey: 'dead-letter',
      manageVisibility: true,
      maxRetryDeferrals: 10,
    });
  });

  it('refuses a maxRetryDeferrals that is negative, fractional or unbounded, naming it', () => {
    for (const maxRetryDeferrals of [-1, 1.5, 1001, Number.POSITIVE_INFINITY])
      expect(() => resolveDedupOptions({ store: 'redis', redis, maxRetryDeferrals })).toThrow(
        /maxRetryDeferrals/,
      );
    expect(resolveDedupOptions({ store: 'redis', redis, maxRetryDeferrals: 0 }).maxRetryDeferrals).toBe(0);
  });

  it('takes an ioredis Cluster, and refuses one with its own keyPrefix (on the cluster or its nodes)', () => {
    const nodes = [{ host: '127.0.0.1', port: 1 }];
    const cluster = new Cluster(nodes, { lazyConnect: true });
    const prefixedCluster = new Cluster(nodes, { lazyConnect: true, keyPrefix: 'app:' });
    const prefixedNodes = new Cluster(nodes, { lazyConnect: true, redisOptions: { keyPrefix: 'app:' } });
    try {
      expect(resolveDedupOptions({ store: 'redis', redis: cluster }).redis).toBe(cluster);
      for (const client of [prefixedCluster, prefixedNodes])
        expect(() => resolveDedupOptions({ store: 'redis', redis: client })).toThrow(
          /redis: the ioredis client has its own keyPrefix/,
        );
    } finally {
      for (const client of [cluster, prefixedCluster, prefixedNodes]) client.disconnect();
    }
  });

  it('names every problem at once', () => {
    let error: unknown;
    try {
      resolveDedupOptions(untyped({ store: 'redis+postgres', redis: prefixed, ttlMs: 10, leaseMs: 1000 }));
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(DedupConfigError);
    expect((error as DedupConfigError).issues).toEqual([
      'dataSource: required for store "redis+postgres"',
      'redis: the ioredis client has its own keyPrefix; use DedupModule keyPrefix instead',
      'ttlMs: must be at least leaseMs',
    ]);
  });

  it("allows onStoreDown 'bypass' only with a durable store behind Redis", () => {
    expect(() => resolveDedupOptions(untyped({ store: 'redis', redis, onStoreDown: 'bypass' }))).toThrow(
      /onStoreDown: "bypass" needs store "redis\+postgres"/,
    );
    expect(
      resolveDedupOptions({ store: 'redis+postgres', redis, dataSource, onStoreDown: 'bypass' }).onStoreDown,
    ).toBe('bypass');
  });

  it('rejects things that are not connections', () => {
    expect(() => resolveDedupOptions({ store: 'postgres', dataSource: {} as DataSource })).toThrow(
      /dataSource: must be a TypeORM DataSource/,
    );
  });

  it('types each store with the connections it needs, and only those', () => {
    const typed: DedupModuleOptions[] = [
      { store: 'redis', redis, redisTimeoutMs: 500 },
      { store: 'postgres', dataSource, lockTimeoutMs: 1000 },
      { store: 'redis+postgres', redis, dataSource, onStoreDown: 'bypass' },
    ];
    const refused: DedupModuleOptions[] = [
      // @ts-expect-error a redis store needs `redis`, and takes no dataSource
      { store: 'redis', dataSource },
      // @ts-expect-error a postgres store takes no Redis tuning
      { store: 'postgres', dataSource, redisTimeoutMs: 500 },
      // @ts-expect-error 'bypass' needs Postgres behind Redis
      { store: 'redis', redis, onStoreDown: 'bypass' },
      // @ts-expect-error a redis+postgres store needs both connections
      { store: 'redis+postgres', redis },
    ];
    expect(typed.map((options) => resolveDedupOptions(options).store)).toEqual([
      'redis',
      'postgres',
      'redis+postgres',
    ]);
    // At run time (JS callers) a missing connection or 'bypass' fails boot; a field the store does not read is ignored.
    expect(refused.map((options) => problemsOf(options))).toEqual([
      ['redis: required for store "redis"'],
      [],
      ['onStoreDown: "bypass" needs store "redis+postgres" (there is nothing durable to fall back to)'],
      ['dataSource: required for store "redis+postgres"'],
    ]);
  });
});

function problemsOf(options: DedupModuleOptions): readonly string[] {
  try {
    resolveDedupOptions(options);
    return [];
  } catch (error) {
    if (error instanceof DedupConfigError) return error.issues;
    throw error;
  }
}
