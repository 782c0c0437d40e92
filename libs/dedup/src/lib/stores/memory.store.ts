import type { EntityManager } from 'typeorm';
import type { RecordState } from '../dedup.types';
import { decodeKeyCursor, encodeKeyCursor } from '../list-cursor';
import type {
  ClaimRequest,
  ClaimTransaction,
  CompleteItem,
  ForgetOptions,
  ForgetOutcome,
  HeldKey,
  StoreClaimResult,
  StoredRecord,
  StoreListPage,
  StoreListQuery,
  TransactionalStore,
} from './dedup-store.interface';

/** Options of a {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /** Milliseconds since the epoch; default `Date.now`. A test moves it to expire leases. */
  readonly now?: () => number;
  /** How long a key locked by an open transaction is reported in flight for. Default 5000. */
  readonly lockTimeoutMs?: number;
  /** What transactions hand their work as `manager` (there is no database). */
  readonly manager?: EntityManager;
}

interface MemoryRecord {
  storageKey: string;
  scope: string;
  key: string;
  state: RecordState;
  token: string;
  fence: number;
  messageId: string | null;
  attempts: number;
  result?: string;
  payloadHash: string | null;
  leaseUntil: number | null;
  expiresAt: number;
  createdAt: number;
  updatedAt: number;
  /** Held by an open transaction (a row lock): others see it in flight. */
  locked?: boolean;
}

const NO_MANAGER = Object.freeze({ memory: true }) as unknown as EntityManager;

/**
 * The {@link DedupStore} rules in one process, for unit tests: records in a Map, time from an
 * injectable clock. Transactions hold their keys locked until commit or rollback.
 */
export class MemoryStore implements TransactionalStore {
  private readonly records = new Map<string, MemoryRecord>();
  private fence = 0;
  private readonly now: () => number;

  constructor(private readonly options: MemoryStoreOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  async claim(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
  ): Promise<StoreClaimResult[]> {
    return requests.map((request) => this.claimOne(request, token, leaseMs, 'IN_PROGRESS'));
  }

  async complete(items: readonly CompleteItem[], ttlMs: number): Promise<boolean[]> {
    const now = this.now();
    return items.map((item) => {
      const record = this.live(item.storageKey);
      if (record && record.token !== item.token) return false;
      this.records.set(item.storageKey, {
        ...(record ?? this.fresh(item, item.token, now)),
        state: 'COMPLETED',
        result: item.result,
        leaseUntil: null,
        expiresAt: now + ttlMs,
        updatedAt: now,
      });
      return true;
    });
  }

  async release(items: readonly HeldKey[]): Promise<boolean[]> {
    return items.map((item) => {
      // As in Redis, a claim whose lease lapsed is gone (Postgres would still find the row).
      const record = this.live(item.storageKey);
      if (!record || record.state !== 'IN_PROGRESS' || record.token !== item.token || record.locked)
        return false;
      this.records.delete(item.storageKey);
      return true;
    });
  }

  async extend(items: readonly (HeldKey & ClaimRequest)[], leaseMs: number): Promise<boolean[]> {
    const now = this.now();
    return items.map((item) => {
      const record = this.live(item.storageKey);
      if (record && (record.token !== item.token || record.state !== 'IN_PROGRESS' || record.locked))
        return false;
      const base = record ?? this.fresh(item, item.token, now);
      this.records.set(item.storageKey, {
        ...base,
        leaseUntil: now + leaseMs,
        expiresAt: now + leaseMs,
        updatedAt: now,
      });
      return true;
    });
  }

  async get(storageKey: string): Promise<StoredRecord | null> {
    const record = this.live(storageKey);
    return record ? toStored(record) : null;
  }

  async forget(storageKey: string, options: ForgetOptions = {}): Promise<ForgetOutcome> {
    const record = this.live(storageKey);
    if (!record) return 'absent';
    if (record.state === 'IN_PROGRESS' && !(options.force ?? true)) return 'in-progress';
    this.records.delete(storageKey);
    return 'forgotten';
  }

  async list(query: StoreListQuery): Promise<StoreListPage> {
    const after = query.cursor === undefined ? undefined : decodeKeyCursor(query.cursor);
    const keys = [...this.records.keys()]
      .filter((key) => key.startsWith(query.prefix) && (after === undefined || key > after))
      .sort();
    const items = keys
      .map((key) => this.live(key))
      .filter((record): record is MemoryRecord => !!record && (!query.state || record.state === query.state))
      .map(toStored);
    const page = items.slice(0, query.limit);
    const last = page.at(-1);
    return {
      items: page,
      nextCursor: items.length > query.limit && last ? encodeKeyCursor(last.storageKey) : undefined,
    };
  }

  async purgeExpired(limit: number): Promise<number> {
    const now = this.now();
    const expired = [...this.records.values()].filter((r) => r.expiresAt <= now && !r.locked).slice(0, limit);
    for (const record of expired) this.records.delete(record.storageKey);
    return expired.length;
  }

  /** Claims as COMPLETED rows held locked; commit stores the results, rollback restores what was there. */
  async begin(
    requests: readonly ClaimRequest[],
    token: string,
    _leaseMs: number,
    ttlMs: number,
  ): Promise<ClaimTransaction> {
    const before = new Map(requests.map((r) => [r.storageKey, this.records.get(r.storageKey)]));
    const results = requests.map((request) => this.claimOne(request, token, ttlMs, 'COMPLETED'));
    const mine = requests.filter((_, i) => results[i]?.status === 'claimed').map((r) => r.storageKey);
    for (const key of mine) (this.records.get(key) as MemoryRecord).locked = true;
    let open = true;
    const rollback = async () => {
      open = false;
      for (const key of mine) {
        const previous = before.get(key);
        if (previous) this.records.set(key, previous);
        else this.records.delete(key);
      }
    };
    return {
      results,
      manager: this.options.manager ?? NO_MANAGER,
      renew: async () => undefined,
      commit: async (items) => {
        const results = new Map(items.map((item) => [item.storageKey, item.result]));
        for (const key of mine) {
          const record = this.records.get(key) as MemoryRecord;
          record.locked = false;
          record.result = results.get(key);
        }
        open = false;
      },
      afterCommit: async () => undefined,
      rollback,
      abandon: async () => (open ? rollback() : undefined),
      close: async () => undefined,
    };
  }

  isRetryable(): boolean {
    return false;
  }

  private claimOne(request: ClaimRequest, token: string, ms: number, state: RecordState): StoreClaimResult {
    const now = this.now();
    const current = this.live(request.storageKey);
    const payloadHash = current?.payloadHash ?? undefined;
    if (current?.locked)
      return { status: 'in-flight', retryAfterMs: this.options.lockTimeoutMs ?? 5000, payloadHash };
    if (current?.state === 'COMPLETED')
      return {
        status: 'completed',
        result: current.result,
        expiresInMs: current.expiresAt - now,
        payloadHash,
      };
    if (current && (current.leaseUntil ?? 0) > now)
      return { status: 'in-flight', retryAfterMs: (current.leaseUntil ?? now) - now, payloadHash };
    const record: MemoryRecord = {
      ...this.fresh(request, token, now),
      attempts: current ? current.attempts + 1 : 1,
      state,
      leaseUntil: state === 'IN_PROGRESS' ? now + ms : null,
      expiresAt: now + ms,
    };
    this.records.set(request.storageKey, record);
    return { status: 'claimed', fence: record.fence };
  }

  /** The record of a key unless it expired (an IN_PROGRESS one whose lease ended is still there, claimable). */
  private live(storageKey: string): MemoryRecord | undefined {
    const record = this.records.get(storageKey);
    if (!record) return undefined;
    if (record.locked) return record;
    if (record.expiresAt <= this.now()) return undefined;
    if (record.state === 'IN_PROGRESS' && (record.leaseUntil ?? 0) <= this.now()) return undefined;
    return record;
  }

  private fresh(request: ClaimRequest, token: string, now: number): MemoryRecord {
    return {
      storageKey: request.storageKey,
      scope: request.scope,
      key: request.key,
      state: 'IN_PROGRESS',
      token,
      fence: ++this.fence,
      messageId: request.messageId ?? null,
      attempts: 1,
      payloadHash: request.payloadHash ?? null,
      leaseUntil: null,
      expiresAt: now,
      createdAt: now,
      updatedAt: now,
    };
  }
}

function toStored(record: MemoryRecord): StoredRecord {
  return {
    storageKey: record.storageKey,
    scope: record.scope,
    key: record.key,
    state: record.state,
    fence: record.fence,
    messageId: record.messageId,
    attempts: record.attempts,
    result: record.result,
    payloadHash: record.payloadHash,
    leaseUntil: record.leaseUntil === null ? null : new Date(record.leaseUntil),
    expiresAt: new Date(record.expiresAt),
    createdAt: new Date(record.createdAt),
    updatedAt: new Date(record.updatedAt),
  };
}
