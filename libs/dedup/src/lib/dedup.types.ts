import type { EntityManager } from 'typeorm';

/** Where idempotency records live. */
export type DedupStoreMode = 'redis' | 'postgres' | 'redis+postgres';

/** What to do when Redis is unreachable: throw so the message is retried, or use Postgres alone. */
export type OnStoreDown = 'fail' | 'bypass';

/** What to do with an SQS message without an idempotency key. */
export type MissingKeyPolicy = 'dead-letter' | 'throw';

/**
 * The same key arrived with a different payload: `warn` (default) logs and counts it and treats it
 * as the duplicate it is; `dead-letter` refuses it (an SQS message goes to its DLQ, `run` throws
 * PayloadMismatchError); `ignore` only counts it.
 */
export type PayloadMismatchPolicy = 'warn' | 'dead-letter' | 'ignore';

/** IN_PROGRESS (a leased claim) → COMPLETED (until the TTL) → gone. */
export type RecordState = 'IN_PROGRESS' | 'COMPLETED';

/** A live claim on a key: only its holder may complete, release or extend it. */
export interface Claim {
  readonly scope: string;
  readonly key: string;
  /** `keyPrefix + scope + ':' + key`: the key in Redis and Postgres. */
  readonly storageKey: string;
  /** Opaque owner token checked by complete, release and extend. */
  readonly token: string;
  /** Monotonic fencing number of this claim (Postgres sequence or Redis counter), for downstream fencing. */
  readonly fence: number;
  readonly leaseMs: number;
  readonly ttlMs: number;
  readonly messageId?: string;
  /** Fingerprint of the claimed payload, if one was given. */
  readonly payloadHash?: string;
}

/** Result of claiming one key. */
export type ClaimOutcome =
  | { readonly status: 'claimed'; readonly claim: Claim }
  /** Already done: `result` is the stored result (JSON round trip) or `undefined`. */
  | { readonly status: 'completed'; readonly result: unknown; readonly payloadMismatch?: boolean }
  /** Someone holds a live claim; try again in about `retryAfterMs`. */
  | { readonly status: 'in-flight'; readonly retryAfterMs: number; readonly payloadMismatch?: boolean };

export interface ClaimOptions {
  /** Defaults to `'default'`. Part of the stored key: keep it stable. */
  scope?: string;
  ttlMs?: number;
  leaseMs?: number;
  /** Logged and stored with the record. */
  messageId?: string;
  /**
   * What the key stands for (a string as is, anything else as its JSON). Its fingerprint is kept
   * with the record; a later claim of the key with a different payload is a payload mismatch.
   */
  payload?: unknown;
  /** Overrides the module's `onPayloadMismatch`. */
  onPayloadMismatch?: PayloadMismatchPolicy;
}

/** What a function run under a claim can see (also through `currentIdempotencyContext()`). */
export interface IdempotencyContext {
  /** Claims being worked on: one for `run` and single handlers, the fresh ones for a batch handler. */
  readonly claims: readonly Claim[];
  /** Set in transactional mode: write through it so the business rows commit with the dedup rows. */
  readonly manager?: EntityManager;
  /** Aborted when a claim is lost (taken over after its lease expired). */
  readonly signal: AbortSignal;
}

export interface RunOptions extends ClaimOptions {
  /** Insert the record in the same Postgres transaction as `ctx.manager`'s writes. */
  transactional?: boolean;
  /** Store the function's (JSON-serialisable) result and return it to duplicates. Default true. */
  storeResult?: boolean;
}

/** An idempotency record as the admin API shows it (the owner token is never exposed). */
export interface IdempotencyRecord {
  readonly storageKey: string;
  readonly scope: string;
  readonly key: string;
  readonly state: RecordState;
  readonly fence: number;
  readonly messageId: string | null;
  /** Claims taken on the key since the record was created (takeovers after an expired lease add one). */
  readonly attempts: number;
  readonly result: unknown;
  /** Fingerprint (SHA-256, base64url, 128 bits) of the payload the record was made for. */
  readonly payloadHash: string | null;
  readonly leaseUntil: Date | null;
  readonly expiresAt: Date;
  readonly createdAt: Date;
  readonly updatedAt: Date;
}

export interface ListQuery {
  state?: RecordState;
  /** Prefix of `scope + ':' + key` (the module's keyPrefix is implied). */
  prefix?: string;
  /** Page size, 1–1000 (default 50). */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

export interface ListPage {
  readonly items: IdempotencyRecord[];
  /** Absent on the last page. */
  readonly nextCursor?: string;
}
