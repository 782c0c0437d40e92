import type { Logger } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import { StoreUnavailableError } from '../dedup.errors';
import {
  checkScanCursor,
  decodeClusterScanCursor,
  encodeClusterScanCursor,
  InvalidListCursorError,
} from '../list-cursor';
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
import { RedisCircuits, SINGLE_NODE } from './redis.circuits';
import { decodeRedisRecord, type RedisRecordFields } from './redis-record.codec';
import { groupBySlot, keySlot, SlotFenceKeys } from './redis-slots';
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

/** A single Redis (or a primary with replicas) or a Redis Cluster, as ioredis connects to them. */
export type RedisClient = Redis | Cluster;

/** Keys of one script call (all in one slot on a cluster), their indices in the request, their fence counter. */
interface KeyGroup {
  readonly indices: readonly number[];
  readonly fenceKey: string;
  /** The circuit the call goes through: its node's. */
  readonly node: string;
}

/** Each group's answers (`undefined` for a failed one) and the first failure, once every group settled. */
interface GroupedReplies<T> {
  readonly groups: readonly KeyGroup[];
  readonly replies: readonly (readonly T[] | undefined)[];
  readonly failure?: { readonly error: unknown };
}

/** The groups' answers put back in request order. */
function inRequestOrder<T>(
  count: number,
  groups: readonly KeyGroup[],
  replies: readonly (readonly T[] | undefined)[],
): T[] {
  const out = new Array<T>(count);
  groups.forEach((group, g) => group.indices.forEach((index, j) => (out[index] = replies[g]?.[j] as T)));
  return out;
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

/** A claim's answer from the record holding the key (in flight while IN_PROGRESS: it lives as long as its lease). */
function existing(storageKey: string, raw: string, pttl: number): StoreClaimResult {
  const record = decodeRedisRecord(raw);
  if (!record) throw new Error(`dedup record ${storageKey} in Redis is not in a format this version reads`);
  if (record.state === 'COMPLETED')
    return { status: 'completed', result: record.result, expiresInMs: pttl, payloadHash: record.payloadHash };
  return { status: 'in-flight', retryAfterMs: Math.max(0, pttl), payloadHash: record.payloadHash };
}

const isWrongType = (error: unknown) => error instanceof Error && error.message.startsWith('WRONGTYPE');

/** A record of an older version (a hash of its fields), in today's fields, its lease end kept. */
function legacyFields(
  hash: Record<string, string> | null,
): (RedisRecordFields & { leaseUntil?: number }) | undefined {
  if (!hash?.state) return undefined;
  return {
    state: hash.state as RecordState,
    token: hash.token ?? '',
    fence: Number(hash.fence ?? 0),
    attempts: Number(hash.attempts ?? 1),
    createdAt: Number(hash.createdAt ?? 0),
    updatedAt: Number(hash.updatedAt ?? 0),
    payloadHash: hash.payloadHash || undefined,
    messageId: hash.messageId || undefined,
    result: hash.result,
    leaseUntil: hash.leaseUntil ? Number(hash.leaseUntil) : undefined,
  };
}

/** Bounds one list call on a large shared Redis (each SCAN looks at ~500 keys). */
const MAX_SCANS_PER_PAGE = 50;

const escapeGlob = (value: string) => value.replace(/[*?[\]\\]/g, (char) => `\\${char}`);

/**
 * Records as one string each (see redis-record.codec.ts; hashes of older versions are still read),
 * every multi-key operation one Lua script (one round trip, atomic).
 * IN_PROGRESS keys expire with their lease and COMPLETED keys with their TTL, so an expired
 * record is simply absent. A failing Redis opens a short circuit (`retryAfterMs`) during which
 * claims, get and list fail fast with StoreUnavailableError (each counted as `store-down`);
 * writes about work already claimed (complete, release, extend) and forget go past it and are
 * retried (see RedisWriteMode). Any successful call closes the circuit (see RedisCircuits).
 *
 * On a Redis Cluster (an ioredis `Cluster`), each record lives in its key's own slot; a batch runs
 * one script per slot (in parallel), each with that slot's fence counter, so fences increase per
 * key (not across keys) and no script touches two slots. A claim of which one slot's call failed
 * throws StoreUnavailableError after releasing (best effort) what the other slots claimed. Each
 * master has its own circuit (by the address serving the slot), so a dead master turns away only
 * the keys of its slots.
 */
export class RedisStore implements DedupStore {
  private readonly circuits: RedisCircuits;
  private readonly inFlight = new Set<PendingCall>();
  private watchdog?: NodeJS.Timeout;
  private readonly fenceKey: string;
  private readonly slotFences?: SlotFenceKeys;
  private readonly writePolicy: RetryPolicy;

  constructor(
    private readonly redis: RedisClient,
    private readonly options: RedisStoreOptions,
    metrics: DedupMetrics,
    logger: Logger,
  ) {
    this.fenceKey = `${options.keyPrefix}~fence`;
    this.circuits = new RedisCircuits(options.retryAfterMs, metrics, logger);
    if (redis.isCluster) this.slotFences = new SlotFenceKeys(options.keyPrefix);
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
    const { groups, replies, failure } = await this.perGroup(
      requests.map((r) => r.storageKey),
      (group) => this.claimGroup(group, requests, token, leaseMs),
    );
    if (!failure)
      return groups.length === 1
        ? (replies[0] as StoreClaimResult[])
        : inRequestOrder(requests.length, groups, replies);
    // Another slot's call failed: the caller hears "unavailable" for the whole claim, so nothing
    // this call claimed may stay held (what a release cannot reach expires with its lease).
    const claimed = groups.flatMap((group, g) =>
      group.indices.filter((_, j) => replies[g]?.[j]?.status === 'claimed'),
    );
    await this.releaseQuietly(
      claimed.map((i) => (requests[i] as ClaimRequest).storageKey),
      token,
    );
    throw failure.error;
  }

  private async claimGroup(
    group: KeyGroup,
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<StoreClaimResult[]> {
    const members = group.indices.map((i) => requests[i] as ClaimRequest);
    const args: (string | number)[] = [token, leaseMs, Date.now()];
    for (const request of members) args.push(request.messageId ?? '', request.payloadHash ?? '');
    let reply: (string | number)[];
    try {
      reply = (await this.call(
        () => CLAIM_SCRIPT.run(this.redis, [...members.map((r) => r.storageKey), group.fenceKey], args),
        group.node,
      )) as (string | number)[];
    } catch (error) {
      if (error instanceof StoreUnavailableError && error.cause instanceof RedisTimeoutError) {
        this.undoLateClaim(members, token);
      }
      throw error;
    }
    return members.map((member, i): StoreClaimResult => {
      const status = String(reply[i * 4]);
      const value = String(reply[i * 4 + 1]);
      const ms = Number(reply[i * 4 + 2]);
      const payloadHash = String(reply[i * 4 + 3]) || undefined;
      if (status === 'claimed') return { status, fence: Number(value) };
      if (status === 'record') return existing(member.storageKey, value, ms);
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
    return this.writeGroups(items, mode, (members, group) => {
      const args: (string | number)[] = [ttlMs, Date.now()];
      for (const item of members)
        args.push(item.token, item.result ?? '', item.messageId ?? '', item.payloadHash ?? '');
      const keys = [...members.map((i) => i.storageKey), group.fenceKey];
      return () => COMPLETE_SCRIPT.run(this.redis, keys, args);
    });
  }

  /**
   * A retried release whose earlier attempt may have run counts an absent key as released: the
   * key is free either way, which is what release is for.
   */
  async release(items: readonly HeldKey[], mode: RedisWriteMode = 'settle'): Promise<boolean[]> {
    return this.writeGroups(items, mode, (members) => {
      const keys = members.map((i) => i.storageKey);
      const tokens = members.map((i) => i.token);
      return (attempt) => RELEASE_SCRIPT.run(this.redis, keys, [attempt > 1 ? 1 : 0, ...tokens]);
    });
  }

  async extend(
    items: readonly (HeldKey & ClaimRequest)[],
    leaseMs: number,
    mode: RedisWriteMode = 'settle',
  ): Promise<boolean[]> {
    return this.writeGroups(items, mode, (members, group) => {
      const args: (string | number)[] = [leaseMs, Date.now()];
      for (const item of members) args.push(item.token, item.messageId ?? '', item.payloadHash ?? '');
      const keys = [...members.map((i) => i.storageKey), group.fenceKey];
      return () => EXTEND_SCRIPT.run(this.redis, keys, args);
    });
  }

  /**
   * A settling write of held keys (complete, release, extend): per group, `prepare` builds the
   * script call once, {@link write} runs it (retried per its mode), and a reply of 1 means done.
   */
  private async writeGroups<I extends HeldKey>(
    items: readonly I[],
    mode: RedisWriteMode,
    prepare: (members: I[], group: KeyGroup) => (attempt: number) => Promise<unknown>,
  ): Promise<boolean[]> {
    if (items.length === 0) return [];
    return this.grouped(
      items.map((i) => i.storageKey),
      async (group) => {
        const run = prepare(
          group.indices.map((i) => items[i] as I),
          group,
        );
        const reply = (await this.write(mode, run, group.node)) as number[];
        return reply.map((value) => value === 1);
      },
    );
  }

  async get(storageKey: string): Promise<StoredRecord | null> {
    const [record] = await this.fetch([storageKey], this.nodeOfKey(storageKey));
    return record ?? null;
  }

  /** Deletes the record unless, without `force`, it is a live IN_PROGRESS claim (one Lua script). */
  async forget(storageKey: string, options: ForgetOptions = {}): Promise<ForgetOutcome> {
    const force = options.force ?? true;
    const reply = await this.write(
      'settle',
      () => FORGET_SCRIPT.run(this.redis, [storageKey], [force ? 1 : 0]),
      this.nodeOfKey(storageKey),
    );
    return String(reply) as ForgetOutcome;
  }

  /**
   * SCAN-based, so it walks the whole keyspace (every master of a cluster, one after the other): a
   * page may hold more or fewer than `limit` records (even none, with a cursor to continue), in no
   * particular order. Use Postgres for the admin API.
   */
  async list(query: StoreListQuery): Promise<StoreListPage> {
    if (this.redis.isCluster) return this.listCluster(this.redis as Cluster, query);
    const items: StoredRecord[] = [];
    let cursor = query.cursor === undefined ? '0' : checkScanCursor(query.cursor);
    let scans = 0;
    do {
      const [next, records] = await this.scanPage(this.redis as Redis, SINGLE_NODE, cursor, query);
      cursor = next;
      items.push(...records);
    } while (cursor !== '0' && items.length < query.limit && ++scans < MAX_SCANS_PER_PAGE);
    return { items, nextCursor: cursor === '0' ? undefined : cursor };
  }

  /** Masters in address order, each scanned to its end before the next; the cursor names the master. */
  private async listCluster(cluster: Cluster, query: StoreListQuery): Promise<StoreListPage> {
    const masters = new Map<string, Redis>(
      cluster.nodes('master').map((node) => [`${node.options.host}:${node.options.port}`, node]),
    );
    const addresses = [...masters.keys()].sort();
    if (addresses.length === 0)
      throw this.circuits.failed(SINGLE_NODE, new Error('the cluster client knows no master (yet)'));
    const start = query.cursor === undefined ? undefined : decodeClusterScanCursor(query.cursor);
    let index = start ? addresses.indexOf(start.node) : 0;
    if (index < 0) throw new InvalidListCursorError('its node is no longer a master of the cluster');
    let scan = start?.scan ?? '0';
    const items: StoredRecord[] = [];
    for (let scans = 1; index < addresses.length; scans++) {
      const node = addresses[index] as string;
      const [next, records] = await this.scanPage(masters.get(node) as Redis, node, scan, query);
      items.push(...records);
      scan = next;
      if (next === '0') index += 1;
      if (index < addresses.length && (items.length >= query.limit || scans >= MAX_SCANS_PER_PAGE))
        return { items, nextCursor: encodeClusterScanCursor({ node: addresses[index] as string, scan }) };
    }
    return { items };
  }

  /** One SCAN step on one node, and the records of the keys it returned. */
  private async scanPage(
    client: Redis,
    node: string,
    cursor: string,
    query: StoreListQuery,
  ): Promise<[string, StoredRecord[]]> {
    const [next, keys] = await this.call(
      () => client.scan(cursor, 'MATCH', `${escapeGlob(query.prefix)}*`, 'COUNT', Math.max(query.limit, 500)),
      node,
    );
    // Record keys are keyPrefix + scope + ':' + key; the fence counters have no ':' after keyPrefix.
    const recordKeys = keys.filter((key) => key.slice(this.options.keyPrefix.length).includes(':'));
    const records = await this.fetch(recordKeys, node);
    return [next, records.filter((record) => !query.state || record.state === query.state)];
  }

  private async fetch(keys: readonly string[], node: string): Promise<StoredRecord[]> {
    if (keys.length === 0) return [];
    const replies = await this.call(() => this.readRecords(keys), node);
    const records: StoredRecord[] = [];
    const now = Date.now();
    keys.forEach((storageKey, i) => {
      const [error, value] = replies[i * 2] ?? [];
      const [, pttl] = replies[i * 2 + 1] ?? [];
      const ttl = Math.max(0, Number(pttl));
      const fields: (RedisRecordFields & { leaseUntil?: number }) | undefined =
        typeof value === 'string'
          ? decodeRedisRecord(value)
          : error
            ? undefined
            : legacyFields(value as Record<string, string> | null);
      if (!fields) return;
      const scoped = storageKey.slice(this.options.keyPrefix.length);
      const colon = scoped.indexOf(':');
      records.push({
        storageKey,
        scope: scoped.slice(0, colon),
        key: scoped.slice(colon + 1),
        state: fields.state,
        fence: fields.fence,
        messageId: fields.messageId ?? null,
        attempts: fields.attempts,
        result: fields.result,
        payloadHash: fields.payloadHash ?? null,
        leaseUntil: fields.state === 'IN_PROGRESS' ? new Date(fields.leaseUntil ?? now + ttl) : null,
        expiresAt: new Date(now + ttl),
        createdAt: new Date(fields.createdAt),
        updatedAt: new Date(fields.updatedAt),
      });
    });
    return records;
  }

  /**
   * GET and PTTL of each key, as [error, reply] pairs, a record of an older version (a hash) read
   * with HGETALL instead. One pipeline on a single node; on a cluster, calls per key (ioredis sends
   * each to its slot's master), as a pipeline must not mix slots.
   */
  private async readRecords(keys: readonly string[]): Promise<[Error | null, unknown][]> {
    const replies = await this.readEach(keys, (client, key) => [client.get(key), client.pttl(key)]);
    const legacy = keys.flatMap((_, i) => (isWrongType(replies[i * 2]?.[0]) ? [i] : []));
    if (legacy.length === 0) return replies;
    const hashes = await this.readEach(
      legacy.map((i) => keys[i] as string),
      (client, key) => [client.hgetall(key)],
    );
    legacy.forEach((i, j) => (replies[i * 2] = hashes[j] ?? [null, null]));
    return replies;
  }

  /** `read`'s commands for each key, their [error, reply] pairs in order: a pipeline, or calls per key on a cluster. */
  private async readEach(
    keys: readonly string[],
    read: (client: Pick<Redis, 'get' | 'pttl' | 'hgetall'>, key: string) => Promise<unknown>[],
  ): Promise<[Error | null, unknown][]> {
    if (!this.redis.isCluster) {
      const pipeline = this.redis.pipeline();
      for (const key of keys) read(pipeline as unknown as Redis, key);
      return (await pipeline.exec()) ?? [];
    }
    const settle = async (reply: Promise<unknown>): Promise<[Error | null, unknown]> => {
      try {
        return [null, await reply];
      } catch (error) {
        if (isRedisDownError(error)) throw error;
        return [error as Error, null];
      }
    };
    return Promise.all(keys.flatMap((key) => read(this.redis, key).map(settle)));
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

  /** Releases `keys` of `token`, one script per slot, past the circuit, each bounded by the timeout; errors ignored. */
  private async releaseQuietly(keys: readonly string[], token: string): Promise<void> {
    if (keys.length === 0) return;
    await this.perGroup(keys, async (group) => {
      const members = group.indices.map((i) => keys[i] as string);
      await this.withTimeout(RELEASE_SCRIPT.run(this.redis, members, [0, ...members.map(() => token)]));
      return [];
    });
  }

  /** The script calls a batch needs: all keys in one on a single node, one per slot on a cluster. */
  private groups(keys: readonly string[]): KeyGroup[] {
    const fences = this.slotFences;
    if (!fences) return [{ indices: keys.map((_, i) => i), fenceKey: this.fenceKey, node: SINGLE_NODE }];
    return groupBySlot(keys).map(({ slot, indices }) => ({
      indices,
      fenceKey: fences.keyFor(slot),
      node: this.nodeOfSlot(slot),
    }));
  }

  /** The master serving `slot` as the cluster client last learnt it ("host:port"), if it knows. */
  private nodeOfSlot(slot: number): string {
    return (this.redis as Cluster).slots[slot]?.[0] ?? SINGLE_NODE;
  }

  private nodeOfKey(key: string): string {
    return this.redis.isCluster ? this.nodeOfSlot(keySlot(key)) : SINGLE_NODE;
  }

  /** Runs `run` for each group, in parallel, and waits for all of them (also when one fails). */
  private async perGroup<T>(
    keys: readonly string[],
    run: (group: KeyGroup) => Promise<readonly T[]>,
  ): Promise<GroupedReplies<T>> {
    const groups = this.groups(keys);
    // The usual case (one node, or a batch within one slot): no allSettled, no reordering.
    if (groups.length === 1) {
      try {
        return { groups, replies: [await run(groups[0] as KeyGroup)] };
      } catch (error) {
        return { groups, replies: [undefined], failure: { error } };
      }
    }
    const settled = await Promise.allSettled(groups.map(run));
    const rejected = settled.find((result) => result.status === 'rejected');
    return {
      groups,
      replies: settled.map((result) => (result.status === 'fulfilled' ? result.value : undefined)),
      failure: rejected && { error: rejected.reason as unknown },
    };
  }

  /** {@link perGroup}, answers in request order; throws the first failure once every group settled. */
  private async grouped<T>(
    keys: readonly string[],
    run: (group: KeyGroup) => Promise<readonly T[]>,
  ): Promise<T[]> {
    const { groups, replies, failure } = await this.perGroup(keys, run);
    if (failure) throw failure.error;
    // One group holds every key in request order.
    if (groups.length === 1) return replies[0] as T[];
    return inRequestOrder(keys.length, groups, replies);
  }

  /** Runs one Redis operation under the timeout and `node`'s circuit. */
  private async call<T>(operation: () => Promise<T>, node: string): Promise<T> {
    this.circuits.check(node);
    let result: T;
    try {
      result = await this.withTimeout(operation());
    } catch (error) {
      if (!isRedisDownError(error)) throw error;
      throw this.circuits.failed(node, error as Error);
    }
    this.circuits.succeeded(node);
    return result;
  }

  /**
   * A write about work already claimed: in `settle` mode it ignores the circuit (opened maybe by
   * another key's slow reply) and retries, so a completion is not lost to a blip.
   */
  private write<T>(
    mode: RedisWriteMode,
    operation: (attempt: number) => Promise<T>,
    node: string,
  ): Promise<T> {
    if (mode === 'best-effort') return this.call(() => operation(1), node);
    return withRetry(this.writePolicy, isRedisDownError, (attempt) =>
      this.withTimeout(operation(attempt)),
    ).then(
      (result) => {
        this.circuits.succeeded(node);
        return result;
      },
      (error: unknown) => {
        if (!isRedisDownError(error)) throw error;
        throw this.circuits.failed(node, error as Error);
      },
    );
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
