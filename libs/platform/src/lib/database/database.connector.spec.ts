import { Logger } from '@nestjs/common';
import type { DataSource } from 'typeorm';
import { DatabaseConnector, isDatabaseUnavailable } from './database.connector';

describe('DatabaseConnector', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    jest.spyOn(Logger.prototype, 'log').mockImplementation(() => undefined);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  /** A DataSource whose first `failures` initializations fail; `hang`: the first never settles. */
  interface FakeDataSource {
    isInitialized: boolean;
    initialize: jest.Mock<Promise<unknown>, []>;
  }

  const dataSource = (failures: number, hang = false): FakeDataSource => {
    let calls = 0;
    const fake: FakeDataSource = {
      isInitialized: false,
      initialize: jest.fn(async (): Promise<unknown> => {
        calls++;
        if (hang && calls === 1) return new Promise(() => undefined);
        if (calls <= failures)
          throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        fake.isInitialized = true;
        return fake;
      }),
    };
    return fake;
  };

  it('connected at boot when Postgres answers', async () => {
    const fake = dataSource(0);
    const connector = new DatabaseConnector(fake as unknown as DataSource);
    await connector.onApplicationBootstrap();
    expect(connector.connected).toBe(true);
    expect(fake.initialize).toHaveBeenCalledTimes(1);
  });

  it('boot goes on without Postgres and the connector retries with backoff until it answers', async () => {
    const fake = dataSource(3);
    const connector = new DatabaseConnector(fake as unknown as DataSource);
    await connector.onApplicationBootstrap();
    expect(connector.connected).toBe(false);
    await jest.advanceTimersByTimeAsync(500 + 1000 + 2000);
    expect(fake.initialize).toHaveBeenCalledTimes(4);
    expect(connector.connected).toBe(true);
  });

  it('a first attempt that hangs holds boot up 5 s at most', async () => {
    const connector = new DatabaseConnector(dataSource(0, true) as unknown as DataSource);
    let booted = false;
    void connector.onApplicationBootstrap().then(() => (booted = true));
    await jest.advanceTimersByTimeAsync(4_999);
    expect(booted).toBe(false);
    await jest.advanceTimersByTimeAsync(1);
    expect(booted).toBe(true);
  });

  it('a connection whose boot migration failed is closed before the next attempt', async () => {
    const fake = dataSource(0);
    let first = true;
    const destroy = jest.fn(async () => {
      fake.isInitialized = false;
    });
    Object.assign(fake, { destroy });
    fake.initialize.mockImplementation(async () => {
      fake.isInitialized = true;
      if (first) {
        first = false;
        throw new Error('migration failed');
      }
      return fake;
    });
    const connector = new DatabaseConnector(fake as unknown as DataSource);
    await connector.onApplicationBootstrap();
    expect(destroy).toHaveBeenCalledTimes(1);
    expect(connector.connected).toBe(false);
    await jest.advanceTimersByTimeAsync(500);
    expect(connector.connected).toBe(true);
  });

  it('stops retrying at shutdown', async () => {
    const fake = dataSource(100);
    const connector = new DatabaseConnector(fake as unknown as DataSource);
    await connector.onApplicationBootstrap();
    connector.onApplicationShutdown();
    await jest.advanceTimersByTimeAsync(60_000);
    expect(fake.initialize).toHaveBeenCalledTimes(1);
  });
});

describe('isDatabaseUnavailable', () => {
  it.each([
    Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    Object.assign(new Error('terminating connection due to administrator command'), { code: '57P01' }),
    new Error('Driver not Connected'),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
  ])('%s: unavailable', (error) => expect(isDatabaseUnavailable(error)).toBe(true));

  it.each([
    new Error('relation "x" does not exist'),
    Object.assign(new Error('duplicate key value'), { code: '23505' }),
    'ECONNREFUSED',
    undefined,
  ])('%s: not an outage', (error) => expect(isDatabaseUnavailable(error)).toBe(false));
});
