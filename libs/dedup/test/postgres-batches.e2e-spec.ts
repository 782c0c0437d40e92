import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { DedupMetrics } from '../src/lib/dedup-metrics.service';
import type { ClaimRequest } from '../src/lib/stores/dedup-store.interface';
import { PostgresStore } from '../src/lib/stores/postgres.store';
import { openDataSource, quietLogs, uniquePrefix } from './support/dedup.fixtures';

/** Seeded shuffle (mulberry32), so a failing order can be replayed with DEDUP_SHUFFLE_SEED. */
function shuffler(seed: number) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return <T>(items: readonly T[]): T[] => {
    const copy = [...items];
    for (let i = copy.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
    }
    return copy;
  };
}

const errorCodes = (results: PromiseSettledResult<unknown>[]) =>
  results.flatMap((r) => {
    if (r.status === 'fulfilled') return [];
    const error = r.reason as { code?: string; driverError?: { code?: string }; cause?: unknown };
    const cause = error.cause as { code?: string; driverError?: { code?: string } } | undefined;
    return [
      String(
        error.code ??
          error.driverError?.code ??
          cause?.code ??
          cause?.driverError?.code ??
          (error as Error).name,
      ),
    ];
  });

describe('Postgres batches under overlapping concurrency', () => {
  let dataSource: DataSource;
  let store: PostgresStore;
  const seed = Number(process.env.DEDUP_SHUFFLE_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const shuffle = shuffler(seed);

  beforeAll(async () => {
    quietLogs();
    console.log(`postgres-batches shuffle seed ${seed} (DEDUP_SHUFFLE_SEED to replay)`);
    dataSource = await openDataSource();
    store = new PostgresStore(dataSource, new DedupMetrics());
  });

  afterAll(() => dataSource.destroy());

  /** Postgres' own count of deadlocks detected in this database (retries would hide them from errors). */
  const deadlocks = async () =>
    Number(
      (
        await dataSource.query(
          'SELECT pg_stat_clear_snapshot(), deadlocks FROM pg_stat_database WHERE datname = current_database()',
        )
      )[0].deadlocks,
    );

  const requestsFor = (keys: readonly string[]): ClaimRequest[] =>
    keys.map((storageKey) => ({ storageKey, scope: 's', key: storageKey.slice(-8) }));

  const keysOf = (prefix: string, n: number) =>
    Array.from({ length: n }, (_, i) => `${prefix}k${String(i).padStart(3, '0')}`);

  it('20 concurrent claims, completes, releases and extends of 30 shuffled overlapping keys never deadlock', async () => {
    const before = await deadlocks();
    for (let round = 0; round < 3; round++) {
      const keys = keysOf(uniquePrefix(`pg-order-${round}`), 40);
      const batches = Array.from({ length: 20 }, (_, b) =>
        shuffle(keys.slice(b % 11, (b % 11) + 30)).map((k) => k),
      );
      const tokens = batches.map(() => randomUUID());

      // New keys (speculative inserts), then the same keys again while held (row locks on live rows).
      for (let pass = 0; pass < 2; pass++) {
        const claims = await Promise.allSettled(
          batches.map((batch, b) => store.claim(requestsFor(batch), tokens[b] as string, 60_000)),
        );
        expect(errorCodes(claims)).toEqual([]);
      }
      const holders = new Map<string, string>();
      const owned = await Promise.all(
        keys.map(async (key) => {
          const record = await store.get(key);
          return record ? [key] : [];
        }),
      );
      expect(owned.flat().length).toBe(keys.length);
      const rows: { key: string; token: string }[] = await dataSource.query(
        'SELECT key, token FROM dedup_records WHERE key = ANY($1::text[])',
        [keys],
      );
      for (const row of rows) holders.set(row.key, row.token);

      // Every batch extends/completes/releases its whole list, owned or not: overlapping row locks.
      const items = batches.map((batch, b) =>
        requestsFor(batch).map((request) => ({ ...request, token: tokens[b] as string })),
      );
      const extended = await Promise.allSettled(items.map((list) => store.extend(list, 60_000)));
      expect(errorCodes(extended)).toEqual([]);
      const ops = await Promise.allSettled(
        items.map((list, b) => (b % 2 === 0 ? store.complete(list, 60_000) : store.release(list))),
      );
      expect(errorCodes(ops)).toEqual([]);
    }
    await new Promise((resolve) => setTimeout(resolve, 600)); // stats are flushed about every 500 ms
    expect(await deadlocks()).toBe(before);
  });

  it('concurrent transactional claims of shuffled overlapping keys never deadlock', async () => {
    const before = await deadlocks();
    for (let round = 0; round < 3; round++) {
      const keys = keysOf(uniquePrefix(`pg-tx-${round}`), 40);
      // Half of the keys exist already, expired: the takeover UPDATE locks them too.
      await dataSource.query(
        `INSERT INTO dedup_records (key, scope, idem_key, state, token, fence, attempts, expires_at)
         SELECT k, 's', k, 'COMPLETED', 'old', nextval('dedup_fence_seq'), 1, now() - interval '1 second'
         FROM unnest($1::text[]) AS k`,
        [keys.filter((_, i) => i % 2 === 0)],
      );
      const batches = Array.from({ length: 12 }, (_, b) => shuffle(keys.slice(b % 11, (b % 11) + 30)));
      const results = await Promise.allSettled(
        batches.map(async (batch) => {
          const runner = dataSource.createQueryRunner();
          await runner.connect();
          try {
            await runner.startTransaction();
            await runner.query('SET LOCAL lock_timeout = 20000');
            const claimed = await store.claimInTransaction(
              runner.manager,
              requestsFor(batch),
              randomUUID(),
              60_000,
            );
            // Hold the locks a little so the batches overlap.
            await new Promise((resolve) => setTimeout(resolve, 20));
            await runner.commitTransaction();
            return claimed;
          } catch (error) {
            await runner.rollbackTransaction().catch(() => undefined);
            throw error;
          } finally {
            await runner.release();
          }
        }),
      );
      expect(errorCodes(results)).toEqual([]);
      // Each key was claimed by exactly one transaction.
      const claimedKeys = results.flatMap((r, b) =>
        r.status === 'fulfilled'
          ? (batches[b] as string[]).filter((_, i) => r.value[i]?.status === 'claimed')
          : [],
      );
      expect(new Set(claimedKeys).size).toBe(claimedKeys.length);
      expect(claimedKeys.length).toBe(keys.length);
    }
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(await deadlocks()).toBe(before);
  });

  it('a statement chosen as a deadlock victim is retried, not surfaced', async () => {
    const prefix = uniquePrefix('pg-deadlock');
    const [a, b] = [`${prefix}a`, `${prefix}b`];
    await store.claim(requestsFor([a, b]), 'seed', 60_000);
    const runner = dataSource.createQueryRunner();
    await runner.connect();
    try {
      await runner.startTransaction();
      await runner.query('SELECT 1 FROM dedup_records WHERE key = $1 FOR UPDATE', [b]);
      // The store locks a (key order), then waits for b; the outside transaction then waits for a.
      const extended = store.extend(
        requestsFor([b, a]).map((r) => ({ ...r, token: 'seed' })),
        60_000,
      );
      await new Promise((resolve) => setTimeout(resolve, 200));
      const outside = await runner.query('SELECT 1 FROM dedup_records WHERE key = $1 FOR UPDATE', [a]).then(
        () => 'locked',
        (error: { driverError?: { code?: string } }) => error.driverError?.code ?? 'error',
      );
      // Whichever side Postgres chose as the victim, the store's extend ends up done.
      expect(['locked', '40P01']).toContain(outside);
      if (outside === 'locked') await runner.commitTransaction();
      else await runner.rollbackTransaction();
      await expect(extended).resolves.toEqual([true, true]);
    } finally {
      if (runner.isTransactionActive) await runner.rollbackTransaction();
      await runner.release();
    }
  });
});
