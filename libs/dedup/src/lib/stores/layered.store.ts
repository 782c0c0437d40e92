import type { Logger } from '@nestjs/common';
import { DedupConfigError, StoreUnavailableError } from '../dedup.errors';
import type { OnStoreDown } from '../dedup.types';
import type {
  ClaimRequest,
  ClaimTransaction,
  CompleteItem,
  HeldKey,
  StoreClaimResult,
  StoredRecord,
  StoreListPage,
  StoreListQuery,
  ForgetOptions,
  ForgetOutcome,
  TransactionalStore,
} from './dedup-store.interface';
import type { PostgresStore } from './postgres.store';
import type { RedisStore } from './redis.store';

/** Marks keys whose Redis step was skipped because Redis is down and `onStoreDown` is 'bypass'. */
export const BYPASSED = 'bypassed' as const;

/**
 * `redis+postgres`: Redis filters duplicates in one round trip; Postgres holds the durable record
 * and has the last word on ownership (complete, release and extend are decided there; Redis
 * follows on a best-effort basis: one attempt, skipped while its circuit is open, as a stale
 * Redis record only delays a duplicate until Postgres answers; a Redis in-flight answer is checked
 * against Postgres, so a completion Redis missed is still reported). Redis down: 'fail' throws
 * StoreUnavailableError, 'bypass' goes to Postgres alone. `forget` is the exception: it must
 * reach both layers. Keys of `redisOnlyScopes` skip Postgres while Redis answers: Redis decides
 * them as RedisStore does (settled writes with retries); Redis down, 'fail' throws and 'bypass'
 * claims them in Postgres alone, like every other key, and this process writes those claims'
 * outcomes there.
 */
export class LayeredStore implements TransactionalStore {
  private readonly redisOnlyPrefixes: readonly string[];
  /**
   * Tokens of redis-only claims made in Postgres while Redis was down (with when to forget them):
   * their writes go to Postgres as a layered key's do, and Redis learns the outcome best effort. The
   * process that claims is the one that writes, so this process's memory is enough.
   */
  private readonly claimedInPostgres = new Map<string, number>();

  /**
   * @param redisOnly Scopes whose records live in Redis alone (see `redisOnlyScopes`), with the
   * key prefix their stored keys start with.
   */
  constructor(
    readonly redis: RedisStore,
    readonly postgres: PostgresStore,
    private readonly onStoreDown: OnStoreDown,
    private readonly logger: Logger,
    redisOnly: { readonly keyPrefix: string; readonly scopes: readonly string[] } = {
      keyPrefix: '',
      scopes: [],
    },
  ) {
    this.redisOnlyPrefixes = redisOnly.scopes.map((scope) => `${redisOnly.keyPrefix}${scope}:`);
  }

  /** A key of a `redisOnlyScopes` scope: Redis alone decides it, as RedisStore does. */
  private isRedisOnly(storageKey: string): boolean {
    return this.redisOnlyPrefixes.some((prefix) => storageKey.startsWith(prefix));
  }

  /**
   * Runs `layered` on the items of layered scopes and `redisOnly` on those of `redisOnlyScopes`
   * (both at once), answers in input order. Without redis-only items, just `layered`.
   */
  private split<I extends { readonly storageKey: string }, R>(
    items: readonly I[],
    layered: (part: readonly I[]) => Promise<R[]>,
    redisOnly: (part: readonly I[]) => Promise<R[]>,
  ): Promise<R[]> {
    if (this.redisOnlyPrefixes.length === 0) return layered(items);
    return partition(items, (item) => this.isRedisOnly(item.storageKey), redisOnly, layered);
  }

  /** Redis is down and the store goes on in Postgres alone ('bypass'). */
  private bypasses(error: unknown): boolean {
    return error instanceof StoreUnavailableError && this.onStoreDown === 'bypass';
  }

  /** Remembers that `token`'s redis-only claims were made in Postgres (Redis was down), for a while. */
  private rememberInPostgres(token: string, leaseMs: number): void {
    const now = Date.now();
    for (const [known, until] of this.claimedInPostgres)
      if (until <= now) this.claimedInPostgres.delete(known);
    this.claimedInPostgres.set(token, now + Math.max(2 * leaseMs, 60_000));
  }

  private isClaimedInPostgres(token: string): boolean {
    const until = this.claimedInPostgres.get(token);
    return until !== undefined && until > Date.now();
  }

  /** The Redis filter step (shared with the transactional path), its in-flight answers checked against Postgres. */
  async claimFirstLayer(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<(StoreClaimResult | typeof BYPASSED)[]> {
    let results: StoreClaimResult[];
    try {
      results = await this.redis.claim(requests, token, leaseMs);
    } catch (error) {
      if (!this.bypasses(error)) throw error;
      this.logger.warn({ msg: 'redis down, claiming in postgres only', keys: requests.length });
      return requests.map(() => BYPASSED);
    }
    return this.confirmInFlight(requests, results);
  }

  /**
   * Redis reports keys in flight; Postgres, the record of truth, may already hold their
   * completion (the owner's Redis write was skipped or lost: Redis down, a late reply). Those
   * duplicates get the completion instead of waiting out a lease that no longer means anything.
   * One statement for all of them, taken before any transaction holds a connection of the pool.
   * If Postgres cannot answer, in flight stands: the answer that never claims more.
   */
  private async confirmInFlight(
    requests: readonly ClaimRequest[],
    results: StoreClaimResult[],
  ): Promise<StoreClaimResult[]> {
    const inFlight = requests.filter((_, i) => results[i]?.status === 'in-flight').map((r) => r.storageKey);
    if (inFlight.length === 0) return results;
    const records = await this.postgres.getMany(inFlight).catch(() => new Map<string, StoredRecord>());
    return results.map((result, i) => {
      const record = records.get((requests[i] as ClaimRequest).storageKey);
      if (result.status !== 'in-flight' || record?.state !== 'COMPLETED') return result;
      return {
        status: 'completed',
        result: record.result,
        expiresInMs: Math.max(1, record.expiresAt.getTime() - Date.now()),
        payloadHash: record.payloadHash ?? undefined,
      };
    });
  }

  /**
   * Settles the Redis side after Postgres answered: a key Postgres reports completed is marked
   * completed in Redis too, one Postgres reports in flight is let go in Redis.
   */
  async followSecondLayer(
    requests: readonly ClaimRequest[],
    token: string,
    results: readonly StoreClaimResult[],
  ): Promise<void> {
    const toRelease: HeldKey[] = [];
    await Promise.all(
      requests.map(async (request, i) => {
        const result = results[i];
        if (result?.status === 'completed') {
          await this.bestEffort(() =>
            this.redis.complete(
              [{ ...request, token, result: result.result, payloadHash: result.payloadHash }],
              Math.max(1, result.expiresInMs),
              'best-effort',
            ),
          );
        } else if (result?.status === 'in-flight') {
          toRelease.push({ storageKey: request.storageKey, token });
        }
      }),
    );
    await this.bestEffort(() => this.redis.release(toRelease, 'best-effort'));
  }

  async claim(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<StoreClaimResult[]> {
    if (!requests.some((request) => this.isRedisOnly(request.storageKey)))
      return this.claimLayered(requests, token, leaseMs);
    const claimed: HeldKey[] = [];
    const held = (part: readonly ClaimRequest[], results: StoreClaimResult[]) => {
      part.forEach((request, i) => {
        if (results[i]?.status === 'claimed') claimed.push({ storageKey: request.storageKey, token });
      });
      return results;
    };
    try {
      return await this.split(
        requests,
        async (part) => held(part, await this.claimLayered(part, token, leaseMs)),
        async (part) => held(part, await this.claimRedisOnly(part, token, leaseMs)),
      );
    } catch (error) {
      // One layer failed while the other claimed: give those keys back rather than hold them for a lease.
      if (claimed.length > 0) await this.release(claimed).catch(() => undefined);
      throw error;
    }
  }

  /**
   * Keys of `redisOnlyScopes`: claimed in Redis alone; Redis down with 'bypass', in Postgres alone
   * (as every key then is), and the token is remembered so the writes that follow go there too.
   */
  private async claimRedisOnly(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<StoreClaimResult[]> {
    try {
      return await this.redis.claim(requests, token, leaseMs);
    } catch (error) {
      if (!this.bypasses(error)) throw error;
      this.logger.warn({ msg: 'redis down, claiming redis-only scopes in postgres', keys: requests.length });
      const results = await this.postgres.claim(requests, token, leaseMs);
      this.rememberInPostgres(token, leaseMs);
      return results;
    }
  }

  /**
   * A write (complete, release, extend): layered keys go `layered` (Postgres decides, Redis
   * follows best effort); keys of `redisOnlyScopes` go to Redis alone, except claims this process
   * made in Postgres while Redis was down, which are written as layered keys are (so a duplicate
   * finds the outcome in Redis too).
   */
  private write<I extends HeldKey, R>(
    items: readonly I[],
    inRedis: (part: readonly I[]) => Promise<R[]>,
    layered: (part: readonly I[]) => Promise<R[]>,
  ): Promise<R[]> {
    return this.split(items, layered, (part) =>
      this.claimedInPostgres.size === 0
        ? inRedis(part)
        : partition(part, (item) => this.isClaimedInPostgres(item.token), layered, inRedis),
    );
  }

  private async claimLayered(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<StoreClaimResult[]> {
    const first = await this.claimFirstLayer(requests, token, leaseMs);
    const forward = requests.filter((_, i) => first[i] === BYPASSED || first[i]?.status === 'claimed');
    let second: StoreClaimResult[];
    try {
      second = await this.postgres.claim(forward, token, leaseMs);
    } catch (error) {
      // Postgres refused or failed: the Redis claims it made must not outlive this call (the
      // effect will not run), else duplicates would wait a whole lease. Settled, not best effort.
      const held = requests.filter((_, i) => first[i] !== BYPASSED && first[i]?.status === 'claimed');
      await this.bestEffort(() => this.redis.release(held.map((r) => ({ storageKey: r.storageKey, token }))));
      throw error;
    }
    await this.followSecondLayer(forward, token, second);
    const byKey = new Map(forward.map((request, i) => [request.storageKey, second[i]]));
    return requests.map((request, i) => {
      const own = first[i];
      return own === BYPASSED || own?.status === 'claimed'
        ? (byKey.get(request.storageKey) as StoreClaimResult)
        : (own as StoreClaimResult);
    });
  }

  complete(items: readonly CompleteItem[], ttlMs: number): Promise<boolean[]> {
    return this.write(
      items,
      (part) => this.redis.complete(part, ttlMs),
      (part) => this.completeLayered(part, ttlMs),
    );
  }

  private async completeLayered(items: readonly CompleteItem[], ttlMs: number): Promise<boolean[]> {
    const done = await this.postgres.complete(items, ttlMs);
    await this.bestEffort(() =>
      this.redis.complete(
        items.filter((_, i) => done[i]),
        ttlMs,
        'best-effort',
      ),
    );
    await this.bestEffort(() =>
      this.redis.release(
        items.filter((_, i) => !done[i]),
        'best-effort',
      ),
    );
    return done;
  }

  release(items: readonly HeldKey[]): Promise<boolean[]> {
    return this.write(
      items,
      (part) => this.redis.release(part),
      (part) => this.releaseLayered(part),
    );
  }

  private async releaseLayered(items: readonly HeldKey[]): Promise<boolean[]> {
    const released = await this.postgres.release(items);
    await this.bestEffort(() => this.redis.release(items, 'best-effort'));
    return released;
  }

  extend(items: readonly (HeldKey & ClaimRequest)[], leaseMs: number): Promise<boolean[]> {
    return this.write(
      items,
      (part) => this.redis.extend(part, leaseMs),
      (part) => {
        // A renewed claim made in Postgres is remembered as long as its new lease.
        for (const { token } of part)
          if (this.claimedInPostgres.has(token)) this.rememberInPostgres(token, leaseMs);
        return this.extendLayered(part, leaseMs);
      },
    );
  }

  private async extendLayered(
    items: readonly (HeldKey & ClaimRequest)[],
    leaseMs: number,
  ): Promise<boolean[]> {
    const renewed = await this.postgres.extend(items, leaseMs);
    await this.bestEffort(() =>
      this.redis.extend(
        items.filter((_, i) => renewed[i]),
        leaseMs,
        'best-effort',
      ),
    );
    return renewed;
  }

  /**
   * A redis-only scope's record from Redis, else (claimed while Redis was down) from Postgres;
   * Redis down, from Postgres with 'bypass'.
   */
  async get(storageKey: string): Promise<StoredRecord | null> {
    if (!this.isRedisOnly(storageKey)) return this.postgres.get(storageKey);
    let cached: StoredRecord | null;
    try {
      cached = await this.redis.get(storageKey);
    } catch (error) {
      if (!this.bypasses(error)) throw error;
      cached = null;
    }
    return cached ?? this.postgres.get(storageKey);
  }

  /**
   * Postgres decides (a live IN_PROGRESS row there is kept without force); then Redis must be
   * cleared too, or StoreUnavailableError: a record left in Redis would keep turning duplicates
   * away. Redis may hold a record Postgres does not (a claim between the two layers, or one
   * Postgres lost), so 'forgotten' means either layer had a live one.
   */
  /**
   * Redis first: a live claim it holds (without force) refuses before anything is deleted. Losing
   * only the Redis copy when Postgres then refuses is harmless (it is backfilled); the reverse
   * order could delete the durable record and still answer "in progress".
   */
  async forget(storageKey: string, options: ForgetOptions = {}): Promise<ForgetOutcome> {
    const cached = await this.redis.forget(storageKey, options);
    if (cached === 'in-progress') return cached;
    const durable = await this.postgres.forget(storageKey, options);
    if (durable === 'in-progress') return durable;
    return durable === 'forgotten' || cached === 'forgotten' ? 'forgotten' : 'absent';
  }

  /**
   * Postgres, except for a prefix inside one of the `redisOnlyScopes` (`<scope>:…`): that scope's
   * records are listed from Redis (a SCAN: see RedisStore.list). An unscoped list shows Postgres's.
   */
  list(query: StoreListQuery): Promise<StoreListPage> {
    return this.isRedisOnly(query.prefix) ? this.redis.list(query) : this.postgres.list(query);
  }

  /**
   * Transactional mode: Redis filters first, under a lease; Postgres decides inside the
   * transaction, and Redis follows it for the keys Postgres did not give.
   */
  async begin(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
    ttlMs: number,
  ): Promise<ClaimTransaction> {
    const redisOnly = requests.find((request) => this.isRedisOnly(request.storageKey));
    if (redisOnly)
      throw new DedupConfigError([
        `transactional mode needs a Postgres record: scope "${redisOnly.scope}" is in redisOnlyScopes`,
      ]);
    const first = await this.claimFirstLayer(requests, token, leaseMs);
    const forward: number[] = [];
    const held: HeldKey[] = [];
    first.forEach((result, i) => {
      if (result === BYPASSED || result.status === 'claimed') forward.push(i);
      if (result !== BYPASSED && result.status === 'claimed')
        held.push({ storageKey: (requests[i] as ClaimRequest).storageKey, token });
    });
    // Only what Redis really holds: a bypassed Redis is down, and releasing there would wait out its retries.
    const releaseHeld = async () => {
      if (held.length > 0) await this.bestEffort(() => this.redis.release(held));
    };
    let durable: ClaimTransaction;
    try {
      durable = await this.postgres.begin(
        forward.map((i) => requests[i] as ClaimRequest),
        token,
        leaseMs,
        ttlMs,
      );
    } catch (error) {
      await releaseHeld(); // e.g. a DataSource not initialised: leave no Redis claim behind
      throw error;
    }
    const results = first.map((result) => result as StoreClaimResult);
    forward.forEach((i, k) => (results[i] = durable.results[k] as StoreClaimResult));
    const lost = forward.filter((i) => results[i]?.status !== 'claimed');
    const follow = () =>
      this.followSecondLayer(
        lost.map((i) => requests[i] as ClaimRequest),
        token,
        lost.map((i) => results[i] as StoreClaimResult),
      );
    return {
      results,
      manager: durable.manager,
      renew: (items, renewMs) => this.bestEffort(() => this.redis.extend(items, renewMs, 'best-effort')),
      commit: (items) => durable.commit(items),
      afterCommit: async (items, completeTtlMs) => {
        await this.bestEffort(() => this.redis.complete(items, completeTtlMs, 'best-effort'));
        await follow();
      },
      rollback: async (ran) => {
        await durable.rollback(ran);
        if (ran) await releaseHeld();
        await follow();
      },
      abandon: async () => {
        await durable.abandon();
        await releaseHeld();
      },
      close: () => durable.close(),
    };
  }

  isRetryable(error: unknown): boolean {
    return this.postgres.isRetryable(error);
  }

  purgeExpired(limit: number): Promise<number> {
    return this.postgres.purgeExpired(limit);
  }

  /** Redis writes after Postgres decided: a Redis outage is already counted and logged by RedisStore. */
  private async bestEffort<T>(operation: () => Promise<T>): Promise<T | undefined> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof StoreUnavailableError) return undefined;
      throw error;
    }
  }
}

/**
 * Runs `whenTrue` on the items `test` accepts and `whenFalse` on the others (both at once), and
 * answers in input order. All on one side: that side alone. A failure of either side is thrown
 * once both have settled.
 */
async function partition<I, R>(
  items: readonly I[],
  test: (item: I) => boolean,
  whenTrue: (part: readonly I[]) => Promise<R[]>,
  whenFalse: (part: readonly I[]) => Promise<R[]>,
): Promise<R[]> {
  const yes: I[] = [];
  const no: I[] = [];
  const sides = items.map((item) => {
    const accepted = test(item);
    (accepted ? yes : no).push(item);
    return accepted;
  });
  if (no.length === 0) return whenTrue(items);
  if (yes.length === 0) return whenFalse(items);
  // Both sides settle before a failure is thrown, so a caller can undo what the other side did.
  const [first, second] = await Promise.allSettled([whenTrue(yes), whenFalse(no)]);
  if (first.status === 'rejected') throw first.reason;
  if (second.status === 'rejected') throw second.reason;
  const [a, b] = [first.value, second.value];
  let i = 0;
  let j = 0;
  return sides.map((accepted) => (accepted ? (a[i++] as R) : (b[j++] as R)));
}
