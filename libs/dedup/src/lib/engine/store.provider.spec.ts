import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import { DedupConfigError } from '../dedup.errors';
import { DedupMetrics } from '../dedup-metrics.service';
import { LayeredStore } from '../stores/layered.store';
import { PostgresStore } from '../stores/postgres.store';
import { RedisStore } from '../stores/redis.store';
import type { StoreSettings } from './dedup.settings';
import { createDedupStore } from './store.provider';

// Loading either package here fails the suite: the store factory must need neither at runtime.
jest.mock('typeorm', () => {
  throw new Error('typeorm loaded');
});
jest.mock('ioredis', () => {
  throw new Error('ioredis loaded');
});

const redis = {} as Redis;
const dataSource = {} as DataSource;
const settings = (overrides: Partial<StoreSettings>): StoreSettings => ({
  mode: 'redis',
  keyPrefix: 'p:',
  onStoreDown: 'fail',
  redisOnlyScopes: [],
  redisTimeoutMs: 1000,
  redisRetryAfterMs: 1000,
  lockTimeoutMs: 5000,
  ...overrides,
});

describe('createDedupStore', () => {
  it('builds the store of the chosen mode from its connections only', () => {
    const metrics = new DedupMetrics();
    expect(createDedupStore(settings({ mode: 'redis', redis, dataSource }), metrics)).toBeInstanceOf(
      RedisStore,
    );
    expect(createDedupStore(settings({ mode: 'postgres', redis, dataSource }), metrics)).toBeInstanceOf(
      PostgresStore,
    );
    expect(createDedupStore(settings({ mode: 'redis+postgres', redis, dataSource }), metrics)).toBeInstanceOf(
      LayeredStore,
    );
  });

  it('refuses a mode whose connection is missing', () => {
    expect(() => createDedupStore(settings({ mode: 'redis+postgres', redis }), new DedupMetrics())).toThrow(
      DedupConfigError,
    );
  });
});
