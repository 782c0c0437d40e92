import type { EntityManager } from 'typeorm';
import type { RecordState } from '../dedup.types';

/** One key to claim. */
export interface ClaimRequest {
  readonly storageKey: string;
  readonly scope: string;
  readonly key: string;
  readonly messageId?: string;
  /** Fingerprint of the payload, kept with a record it creates. */
  readonly payloadHash?: string;
}

/** A store's answer for one claimed key; `payloadHash` is the existing record's, if it has one. */
export type StoreClaimResult =
  | { readonly status: 'claimed'; readonly fence: number }
  /** `result` is the stored JSON text, if any. */
  | {
      readonly status: 'completed';
      readonly result?: string;
      readonly expiresInMs: number;
      readonly payloadHash?: string;
    }
  | { readonly status: 'in-flight'; readonly retryAfterMs: number; readonly payloadHash?: string };

/** A key held under a token. */
export interface HeldKey {
  readonly storageKey: string;
  readonly token: string;
}

/** A key to complete: the request fields are needed to recreate a record that vanished. */
export interface CompleteItem extends HeldKey, ClaimRequest {
  /** JSON text of the stored result. */
  readonly result?: string;
}

/** A record as a store returns it. */
export interface StoredRecord {
  readonly storageKey: string;
  readonly scope: string;
  readonly key: string;
  readonly state: RecordState;
  readonly fence: number;
  readonly messageId: string | null;
  readonly attempts: number;
  readonly result?: string;
  readonly payloadHash: string | null;
  readonly leaseUntil: Date | null;
  readonly expiresAt: Date;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

/** Options of `DedupStore.forget`. */
export interface ForgetOptions {
  /**
   * Also delete a live IN_PROGRESS record (whose owner may still be running the effect: a
   * redelivery could then run it a second time). Default `true` (the old behaviour) until every
   * caller passes it.
   */
  readonly force?: boolean;
}

/** `forgotten`: a live record was deleted; `absent`: there was none; `in-progress`: kept (no force). */
export type ForgetOutcome = 'forgotten' | 'absent' | 'in-progress';

export interface StoreListQuery {
  readonly state?: RecordState;
  /** Full stored-key prefix (keyPrefix included). */
  readonly prefix: string;
  readonly limit: number;
  readonly cursor?: string;
}

export interface StoreListPage {
  readonly items: StoredRecord[];
  readonly nextCursor?: string;
}

/**
 * Claim, complete, release and extend many keys per round trip. Arrays of results follow the
 * order of the input. Keys in one call must be distinct.
 *
 * Ownership rules (all stores):
 * - claim succeeds when the key is absent, expired, or IN_PROGRESS with an expired lease;
 * - complete succeeds unless another token holds a live record (then the claim is stale);
 * - release deletes only an IN_PROGRESS record of the same token;
 * - extend renews the lease of the same token (or re-takes an absent/expired key);
 * - forget deletes a record, but without `force` never a live IN_PROGRESS one (atomically).
 *
 * Writes about work already claimed (complete, release, extend) are retried on transient store
 * failures before StoreUnavailableError is thrown; a Redis circuit opened by a failed claim does
 * not stop them.
 */
export interface DedupStore {
  claim(requests: readonly ClaimRequest[], token: string, leaseMs: number): Promise<StoreClaimResult[]>;
  complete(items: readonly CompleteItem[], ttlMs: number): Promise<boolean[]>;
  release(items: readonly HeldKey[]): Promise<boolean[]>;
  extend(items: readonly (HeldKey & ClaimRequest)[], leaseMs: number): Promise<boolean[]>;
  get(storageKey: string): Promise<StoredRecord | null>;
  forget(storageKey: string, options?: ForgetOptions): Promise<ForgetOutcome>;
  list(query: StoreListQuery): Promise<StoreListPage>;
}

/**
 * One open transaction of transactional mode: the claims are decided inside it (row locks, no
 * lease), the work writes through `manager`, and the claims commit with those writes or not at all.
 * The engine calls exactly one of `commit` (then `afterCommit`), `rollback` or `abandon`, then `close`.
 */
export interface ClaimTransaction {
  /** Index for index with the requests `begin` was given. */
  readonly results: readonly StoreClaimResult[];
  /** Where the business writes go. */
  readonly manager: EntityManager;
  /**
   * Renews the leases a cache layer holds while the transaction runs (the row locks need none).
   * Best effort: `undefined` when nothing could be or needed to be renewed.
   */
  renew(items: readonly (HeldKey & ClaimRequest)[], leaseMs: number): Promise<boolean[] | undefined>;
  /** Stores the results of the claimed keys and commits. */
  commit(items: readonly CompleteItem[]): Promise<void>;
  /** After `commit`: a cache layer marks `items` completed and follows the durable answer for the rest. */
  afterCommit(items: readonly CompleteItem[], ttlMs: number): Promise<void>;
  /** Rolls back. `ran`: the work ran (and its claims are given up in every layer). */
  rollback(ran: boolean): Promise<void>;
  /** After a failure: rolls back if still open (a failed rollback is logged) and gives up every claim. */
  abandon(): Promise<void>;
  /** Hands the connection back. */
  close(): Promise<void>;
}

/**
 * A store with a durable SQL layer (postgres, redis+postgres): transactional mode and purging.
 * `begin` claims inside a new transaction; a key another transaction holds longer than the
 * store's lock timeout is reported in flight. Throws after giving up what it had claimed.
 */
export interface TransactionalStore extends DedupStore {
  begin(
    requests: readonly ClaimRequest[],
    token: string,
    leaseMs: number,
    ttlMs: number,
  ): Promise<ClaimTransaction>;
  /** A failure after which the whole transaction may simply run again (deadlock, serialization). */
  isRetryable(error: unknown): boolean;
  /** Deletes up to `limit` expired durable records; returns how many. */
  purgeExpired(limit: number): Promise<number>;
}

export function isTransactionalStore(store: DedupStore): store is TransactionalStore {
  return typeof (store as Partial<TransactionalStore>).begin === 'function';
}
