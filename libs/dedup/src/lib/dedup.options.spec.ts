import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { DedupConfigError } from './dedup.errors';
import { resolveDedupOptions } from './dedup.options';

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
    });
  });

  it('names every problem at once', () => {
    let error: unknown;
    try {
      resolveDedupOptions({ store: 'redis+postgres', redis: prefixed, ttlMs: 10, leaseMs: 1000 });
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
    expect(() => resolveDedupOptions({ store: 'redis', redis, onStoreDown: 'bypass' })).toThrow(
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
});
