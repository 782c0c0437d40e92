import type { Logger } from '@nestjs/common';
import type Redis from 'ioredis';
import { StoreUnavailableError } from '../dedup.errors';
import { checkScanCursor } from '../list-cursor';
import type { DedupMetrics } from '../dedup-metrics.service';
import type { RecordState } from '../dedup.types';
import type {
  ClaimRequest,
  CompleteItem,
  DedupStore,
  HeldKey,
  StoreClaimResult,
  StoredRecord,
  StoreListPage,
  StoreListQuery,
  ForgetOptions,
  ForgetOutcome,
} from './dedup-store.interface';
import { CLAIM_SCRIPT, COMPLETE_SCRIPT, EXTEND_SCRIPT, FORGET_SCRIPT, RELEASE_SCRIPT } from './redis.scripts';
import { withRetry, type RetryPolicy } from './store.retry';

export interface RedisStoreOptions {
  keyPrefix: string;
  timeoutMs: number;
  retryAfterMs: number;
  /** Attempts of a settling write (complete, release, extend, forget); default 4. */
  writeAttempts?: number;
}

/**
 * How a write about work already claimed meets a failing Redis. `settle` (default): past the open
 * circuit, retried with backoff, StoreUnavailableError only when every attempt failed (the record
 * lives in Redis alone). `best-effort`: like a claim, fails fast while the circuit is open (for
 * redis+postgres, where Postgres already decided and Redis only follows).
 */
export type RedisWriteMode = 'settle' | 'best-effort';

interface PendingCall {
  readonly deadline: number;
  readonly reject: (error: Error) => void;
}

class RedisTimeoutError extends Error {
  override readonly name = 'RedisTimeoutError';
}

// Server replies that mean "this Redis cannot serve right now" rather than a bug in a script or
// command. Redis 7 passes an error raised inside a script through as is; Redis 6 wraps it in
// "ERR Error running script (…): @user_script:N: -CODE …".
const UNAVAILABLE_REPLY =
  /^(?:ERR Error running script[^\n]*?-)?(?:OOM|MISCONF|READONLY|LOADING|NOREPLICAS|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|BUSY)\b/;

/** Connection errors, timeouts and "unavailable" replies count as Redis down; other replies are bugs. */
export function isRedisDownError(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  if (error.name === 'ReplyError') return UNAVAILABLE_REPLY.test(error.message);
  return true;
}

/** Bounds one list call on a large shared Redis (each SCAN looks at ~500 keys). */
const MAX_SCANS_PER_PAGE = 50;

const escapeGlob = (value: string) => value.replace(/[*?[\]\\]/g, (char) => `\\${char}`);

/**
 * Records as Redis hashes, every multi-key operation one Lua script (one round trip, atomic).
 * IN_PROGRESS keys expire with their lease and COMPLETED keys with their TTL, so an expired
 * record is simply absent. A failing Redis opens a short circuit (`retryAfterMs`) during which
 * claims, get and list fail fast with StoreUnavailableError (each counted as `store-down`);
 * writes about work already claimed (complete, release, extend) and forget go past it and are
 * retried (see RedisWriteMode). Any successful call closes the circuit.
 * Not for Redis Cluster unless keyPrefix carries a hash tag (e.g. `{once}:dedup:`).
 */
export class RedisStore implements DedupStore {
  private downUntil = 0;
  private down = false;
  private readonly inFlight = new Set<PendingCall>();
  private watchdog?: NodeJS.Timeout;
  private readonly fenceKey: string;
  private readonly writePolicy: RetryPolicy;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisStoreOptions,
    private readonly metrics: DedupMetrics,
    private readonly logger: Logger,
  ) {
    this.fenceKey = `${options.keyPrefix}~fence`;
    // Worst case ≈ attempts × timeoutMs + (1 + 2 + 4) × timeoutMs / 4: a few timeouts, bounded.
    this.writePolicy = {
      attempts: options.writeAttempts ?? 4,
      baseDelayMs: Math.max(20, Math.floor(options.timeoutMs / 4)),
      maxDelayMs: options.timeoutMs,
    };
  }

  async claim(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<StoreClaimResult[]> {
    if (requests.length === 0) return [];
    const args: (string | number)[] = [token, leaseMs];
    for (const request of requests) args.push(request.messageId ?? '', request.payloadHash ?? '');
    let reply: (string | number)[];
    try {
      reply = (await this.call(() =>
        CLAIM_SCRIPT.run(this.redis, [...requests.map((r) => r.storageKey), this.fenceKey], args),
      )) as (string | number)[];
    } catch (error) {
      if (error instanceof StoreUnavailableError && error.cause instanceof RedisTimeoutError) {
        this.undoLateClaim(requests, token);
      }
      throw error;
    }
    return requests.map((_, i): StoreClaimResult => {
      const status = String(reply[i * 4]);
      const value = String(reply[i * 4 + 1]);
      const ms = Number(reply[i * 4 + 2]);
      const payloadHash = String(reply[i * 4 + 3]) || undefined;
      if (status === 'claimed') return { status, fence: Number(value) };
      if (status === 'completed')
        return { status, result: value === '' ? undefined : value, expiresInMs: ms, payloadHash };
      return { status: 'in-flight', retryAfterMs: Math.max(0, ms), payloadHash };
    });
  }

  async complete(
    items: readonly CompleteItem[],
    ttlMs: number,
    mode: RedisWriteMode = 'settle',
  ): Promise<boolean[]> {
    if (items.length === 0) return [];
    const args: (string | number)[] = [ttlMs];
    for (const item of items)
      args.push(item.token, item.result ?? '', item.messageId ?? '', item.payloadHash ?? '');
    const keys = [...items.map((i) => i.storageKey), this.fenceKey];
    const reply = (await this.write(mode, () => COMPLETE_SCRIPT.run(this.redis, keys, args))) as number[];
    return reply.map((value) => value === 1);
  }

  /**
   * A retried release whose earlier attempt may have run counts an absent key as released: the
   * key is free either way, which is what release is for.
   */
  async release(items: readonly HeldKey[], mode: RedisWriteMode = 'settle'): Promise<boolean[]> {
    if (items.length === 0) return [];
    const keys = items.map((i) => i.storageKey);
    const tokens = items.map((i) => i.token);
    const reply = (await this.write(mode, (attempt) =>
      RELEASE_SCRIPT.run(this.redis, keys, [attempt > 1 ? 1 : 0, ...tokens]),
    )) as number[];
    return reply.map((value) => value === 1);
  }

  async extend(
    items: readonly (HeldKey & ClaimRequest)[],
    leaseMs: number,
    mode: RedisWriteMode = 'settle',
  ): Promise<boolean[]> {
    if (items.length === 0) return [];
    const args: (string | number)[] = [leaseMs];
    for (const item of items) args.push(item.token, item.messageId ?? '', item.payloadHash ?? '');
    const keys = [...items.map((i) => i.storageKey), this.fenceKey];
    const reply = (await this.write(mode, () => EXTEND_SCRIPT.run(this.redis, keys, args))) as number[];
    return reply.map((value) => value === 1);
  }

  async get(storageKey: string): Promise<StoredRecord | null> {
    const [record] = await this.fetch([storageKey]);
    return record ?? null;
  }

  /** Deletes the record unless, without `force`, it is a live IN_PROGRESS claim (one Lua script). */
  async forget(storageKey: string, options: ForgetOptions = {}): Promise<ForgetOutcome> {
    const force = options.force ?? true;
    const reply = await this.write('settle', () =>
      FORGET_SCRIPT.run(this.redis, [storageKey], [force ? 1 : 0]),
    );
    return String(reply) as ForgetOutcome;
  }

  /**
   * SCAN-based, so it walks the whole keyspace: a page may hold more or fewer than `limit` records
   * (even none, with a cursor to continue), in no particular order. Use Postgres for the admin API.
   */
  async list(query: StoreListQuery): Promise<StoreListPage> {
    const items: StoredRecord[] = [];
    let cursor = query.cursor === undefined ? '0' : checkScanCursor(query.cursor);
    let scans = 0;
    do {
      const [next, keys] = await this.call(() =>
        this.redis.scan(cursor, 'MATCH', `${escapeGlob(query.prefix)}*`, 'COUNT', Math.max(query.limit, 500)),
      );
      cursor = next;
      const records = await this.fetch(keys.filter((key) => key !== this.fenceKey));
      items.push(...records.filter((record) => !query.state || record.state === query.state));
    } while (cursor !== '0' && items.length < query.limit && ++scans < MAX_SCANS_PER_PAGE);
    return { items, nextCursor: cursor === '0' ? undefined : cursor };
  }

  private async fetch(keys: readonly string[]): Promise<StoredRecord[]> {
    if (keys.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const key of keys) pipeline.hgetall(key).pttl(key);
    const replies = (await this.call(() => pipeline.exec())) ?? [];
    const records: StoredRecord[] = [];
    keys.forEach((storageKey, i) => {
      const [hashError, hash] = replies[i * 2] ?? [];
      const [, pttl] = replies[i * 2 + 1] ?? [];
      const fields = hash as Record<string, string> | undefined;
      if (hashError || !fields?.state) return;
      const ttl = Number(pttl);
      const scoped = storageKey.slice(this.options.keyPrefix.length);
      const colon = scoped.indexOf(':');
      records.push({
        storageKey,
        scope: scoped.slice(0, colon),
        key: scoped.slice(colon + 1),
        state: fields.state as RecordState,
        fence: Number(fields.fence ?? 0),
        messageId: fields.messageId || null,
        attempts: Number(fields.attempts ?? 1),
        result: fields.result,
        payloadHash: fields.payloadHash || null,
        leaseUntil: fields.leaseUntil ? new Date(Number(fields.leaseUntil)) : null,
        expiresAt: new Date(Date.now() + (ttl > 0 ? ttl : 0)),
        createdAt: new Date(Number(fields.createdAt ?? 0)),
        updatedAt: new Date(Number(fields.updatedAt ?? 0)),
      });
    });
    return records;
  }

  /**
   * A claim that timed out may still run later and leave IN_PROGRESS records nobody will settle
   * (duplicates would wait a whole lease). A release queued behind it on the same connection runs
   * after it, whenever that is; not awaited, as the caller has already been told the claim failed.
   */
  private undoLateClaim(requests: readonly ClaimRequest[], token: string): void {
    const keys = requests.map((r) => r.storageKey);
    RELEASE_SCRIPT.run(this.redis, keys, [0, ...keys.map(() => token)]).catch(() => undefined);
  }

  /** Runs one Redis operation under the timeout and the circuit. */
  private async call<T>(operation: () => Promise<T>): Promise<T> {
    if (Date.now() < this.downUntil) {
      this.metrics.increment('store-down', { store: 'redis' });
      throw new StoreUnavailableError('redis', 'failed recently, not retried yet');
    }
    try {
      return this.succeeded(await this.withTimeout(operation()));
    } catch (error) {
      if (!isRedisDownError(error)) throw error;
      throw this.failed(error as Error);
    }
  }

  /**
   * A write about work already claimed: in `settle` mode it ignores the circuit (opened maybe by
   * another key's slow reply) and retries, so a completion is not lost to a blip.
   */
  private write<T>(mode: RedisWriteMode, operation: (attempt: number) => Promise<T>): Promise<T> {
    if (mode === 'best-effort') return this.call(() => operation(1));
    return withRetry(this.writePolicy, isRedisDownError, (attempt) =>
      this.withTimeout(operation(attempt)),
    ).then(
      (result) => this.succeeded(result),
      (error: unknown) => {
        if (!isRedisDownError(error)) throw error;
        throw this.failed(error as Error);
      },
    );
  }

  private succeeded<T>(result: T): T {
    if (this.down) {
      this.down = false;
      this.downUntil = 0;
      this.logger.log({ msg: 'dedup store recovered', store: 'redis' });
    }
    return result;
  }

  private failed(error: Error): StoreUnavailableError {
    this.downUntil = Date.now() + this.options.retryAfterMs;
    this.metrics.increment('store-down', { store: 'redis' });
    if (!this.down) {
      this.down = true;
      this.logger.error({ msg: 'dedup store down', store: 'redis', error: error.message });
    }
    return new StoreUnavailableError('redis', error.message, { cause: error });
  }

  /** One shared watchdog instead of a timer per command (the hot path sends two commands per message). */
  private withTimeout<T>(operation: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const pending: PendingCall = { deadline: Date.now() + this.options.timeoutMs, reject };
      this.inFlight.add(pending);
      this.watch();
      operation.then(
        (value) => {
          this.inFlight.delete(pending);
          resolve(value);
        },
        (error: unknown) => {
          this.inFlight.delete(pending);
          reject(error);
        },
      );
    });
  }

  private watch(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(
      () => {
        const now = Date.now();
        for (const pending of this.inFlight) {
          if (pending.deadline > now) continue;
          this.inFlight.delete(pending);
          pending.reject(new RedisTimeoutError(`no reply within ${this.options.timeoutMs} ms`));
        }
        if (this.inFlight.size === 0) {
          clearInterval(this.watchdog);
          this.watchdog = undefined;
        }
      },
      Math.max(10, Math.floor(this.options.timeoutMs / 4)),
    );
    this.watchdog.unref();
  }
}
