import type { DataSource } from 'typeorm';
import { DedupMetrics } from '../dedup-metrics.service';
import { StoreConflictError, StoreUnavailableError } from '../dedup.errors';
import { PostgresStore } from './postgres.store';
import { isRedisDownError } from './redis.store';
import { withRetry } from './store.retry';

const replyError = (message: string) => Object.assign(new Error(message), { name: 'ReplyError' });
const pgError = (code: string) =>
  Object.assign(new Error(`pg ${code}`), { name: 'QueryFailedError', driverError: { code } });

describe('isRedisDownError', () => {
  it.each([
    "OOM command not allowed when used memory > 'maxmemory'.",
    "OOM command not allowed when used memory > 'maxmemory'. script: 2dc6, on @user_script:1.",
    'MISCONF Redis is configured to save RDB snapshots, but it is currently not able to persist on disk.',
    "READONLY You can't write against a read only replica.",
    'LOADING Redis is loading the dataset in memory',
    'NOREPLICAS Not enough good replicas to write.',
    'CLUSTERDOWN The cluster is down',
    'TRYAGAIN Multiple keys request during rehashing of slot',
    'MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to no',
    'BUSY Redis is busy running a script.',
    // Redis 6 wraps an error raised inside a script.
    "ERR Error running script (call to f_2dc6): @user_script:1: -OOM command not allowed when used memory > 'maxmemory'.",
  ])('counts %j as down', (message) => {
    expect(isRedisDownError(replyError(message))).toBe(true);
  });

  it.each([
    'ERR wrong number of arguments for command',
    'WRONGTYPE Operation against a key holding the wrong kind of value',
    'NOSCRIPT No matching script.',
    'ERR Error running script (call to f_1): @user_script:3: user_script:3: attempt to compare nil',
    'BUSYKEY Target key name already exists.',
    'ERR OOMish but not a code',
  ])('treats %j as a bug, not an outage', (message) => {
    expect(isRedisDownError(replyError(message))).toBe(false);
  });

  it('counts connection errors and non-reply errors as down', () => {
    expect(isRedisDownError(new Error('Connection is closed.'))).toBe(true);
    expect(isRedisDownError('not an error')).toBe(false);
  });
});

describe('withRetry', () => {
  it('stops at the attempt bound and rethrows the last error, waiting between attempts', async () => {
    let calls = 0;
    const started = Date.now();
    await expect(
      withRetry(
        { attempts: 3, baseDelayMs: 20, maxDelayMs: 40 },
        () => true,
        async (attempt) => {
          calls++;
          throw new Error(`attempt ${attempt}`);
        },
      ),
    ).rejects.toThrow('attempt 3');
    expect(calls).toBe(3);
    // Half of each delay is fixed: 10 + 20 ms at least, 20 + 40 ms at most (plus scheduling).
    expect(Date.now() - started).toBeGreaterThanOrEqual(28);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it('does not retry an error it is not told to', async () => {
    let calls = 0;
    await expect(
      withRetry(
        { attempts: 5, baseDelayMs: 1, maxDelayMs: 1 },
        () => false,
        async () => {
          calls++;
          throw new Error('bug');
        },
      ),
    ).rejects.toThrow('bug');
    expect(calls).toBe(1);
  });
});

describe('PostgresStore retries', () => {
  const item = { storageKey: 'k', scope: 's', key: 'k', token: 't' };
  const storeFailing = (errors: Error[], rows: unknown[] = [{ key: 'k' }]) => {
    const calls: unknown[] = [];
    const dataSource = {
      query: async (_sql: string, params: unknown[]) => {
        calls.push(params);
        const error = errors.shift();
        if (error) throw error;
        return rows;
      },
    } as unknown as DataSource;
    return { store: new PostgresStore(dataSource, new DedupMetrics()), calls };
  };

  it('retries a deadlocked claim and reports a persistent one as StoreConflictError (a StoreUnavailableError)', async () => {
    const once = storeFailing([pgError('40P01')], [{ key: 'k', claimed_fence: '7' }]);
    await expect(once.store.claim([item], 't', 1000)).resolves.toEqual([{ status: 'claimed', fence: 7 }]);
    expect(once.calls).toHaveLength(2);

    const always = storeFailing(Array.from({ length: 10 }, () => pgError('40001')));
    const error = await always.store.claim([item], 't', 1000).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreConflictError);
    expect(error).toBeInstanceOf(StoreUnavailableError);
    expect((error as StoreConflictError).sqlState).toBe('40001');
    expect(always.calls).toHaveLength(4);
  });

  it('does not retry a claim after a connection failure (it may have committed), but does a completion', async () => {
    const claim = storeFailing([pgError('57P01')]);
    await expect(claim.store.claim([item], 't', 1000)).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(claim.calls).toHaveLength(1);

    const complete = storeFailing([pgError('57P01'), pgError('08006')]);
    await expect(complete.store.complete([item], 1000)).resolves.toEqual([true]);
    expect(complete.calls).toHaveLength(3);
  });

  it('a retried release counts a key gone meanwhile as released; the first attempt does not', async () => {
    const release = storeFailing([pgError('ECONNRESET')]);
    await expect(release.store.release([item])).resolves.toEqual([true]);
    expect(release.calls.map((params) => (params as unknown[])[2])).toEqual([false, true]);
  });

  it('inside a caller transaction a deadlock is not retried: StoreConflictError at once', async () => {
    const { store, calls } = storeFailing([]);
    let statements = 0;
    const manager = {
      query: async () => {
        statements++;
        throw pgError('40P01');
      },
    } as never;
    await expect(store.claimInTransaction(manager, [item], 't', 1000)).rejects.toBeInstanceOf(
      StoreConflictError,
    );
    expect(statements).toBe(1);
    expect(calls).toHaveLength(0);
  });

  it('a SQL error that is neither is thrown as is, once', async () => {
    const { store, calls } = storeFailing([pgError('23502')]);
    await expect(store.complete([item], 1000)).rejects.toThrow('pg 23502');
    expect(calls).toHaveLength(1);
  });
});
