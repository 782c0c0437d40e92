import { Inject, Injectable } from '@nestjs/common';
import type {
  Claim,
  ClaimOptions,
  ClaimOutcome,
  IdempotencyContext,
  IdempotencyRecord,
  ListPage,
  ListQuery,
  RunOptions,
} from './dedup.types';
import { StaleClaimError } from './dedup.errors';
import type { IdempotencyEngine } from './engine/engine.types';
import { IDEMPOTENCY_ENGINE } from './engine/engine.provider';

/**
 * Exactly-once execution keyed by idempotency keys: claim (a lease with an owner token) →
 * complete (optionally with a result returned to duplicates) or release. `run` wraps a function;
 * `claim`/`complete`/`release`/`extend` are the building blocks; `get`/`forget`/`list` serve the
 * admin API. Stored keys are `keyPrefix + scope + ':' + key`.
 */
@Injectable()
export class IdempotencyService {
  constructor(@Inject(IDEMPOTENCY_ENGINE) private readonly engine: IdempotencyEngine) {}

  /** The stored key of `key` in `scope`: `keyPrefix + scope + ':' + key`. */
  keyFor(key: string, scope?: string): string {
    return this.engine.keyFor(key, scope);
  }

  /**
   * Runs `fn` at most once per key (per scope) until the record expires. A duplicate of a
   * completed key gets the stored result (JSON round trip; `undefined` if none) without running.
   * @throws DuplicateInFlightError while another caller holds the key.
   * @throws StaleClaimError if the lease expired, another caller took over, and then this one finished.
   * @throws PayloadMismatchError for another payload under `onPayloadMismatch: 'dead-letter'`.
   * Whatever `fn` throws, after releasing the claim.
   */
  run<T>(
    key: string,
    fn: (context: IdempotencyContext) => T | Promise<T>,
    options: RunOptions = {},
  ): Promise<T> {
    return this.engine.run(key, fn, options);
  }

  /** Claims one key. */
  async claim(key: string, options: ClaimOptions = {}): Promise<ClaimOutcome> {
    const [outcome] = await this.claimMany(
      [{ key, messageId: options.messageId, payload: options.payload }],
      options,
    );
    return outcome as ClaimOutcome;
  }

  /**
   * Claims many keys in one store round trip. A key repeated in `items` is claimed once; its
   * repeats are reported `in-flight` (held by the first).
   */
  claimMany(
    items: readonly { key: string; messageId?: string; payload?: unknown; payloadHash?: string }[],
    options: Omit<ClaimOptions, 'messageId' | 'payload'> = {},
  ): Promise<ClaimOutcome[]> {
    return this.engine.claimMany(items, options);
  }

  /**
   * Marks a claim completed, storing `result` (JSON) for duplicates.
   * @throws StaleClaimError if another owner holds the key now.
   */
  async complete(claim: Claim, result?: unknown): Promise<void> {
    const [done] = await this.completeMany([{ claim, result }]);
    if (!done) throw new StaleClaimError(claim.scope, claim.key, claim.messageId);
  }

  /** Completes many claims (one round trip per TTL); `false` marks a stale claim. */
  completeMany(entries: readonly { claim: Claim; result?: unknown }[]): Promise<boolean[]> {
    return this.engine.completeMany(entries);
  }

  /** Gives a claim up (only its owner can) so the key can be claimed again at once. */
  async release(claim: Claim): Promise<boolean> {
    const [released] = await this.releaseMany([claim]);
    return released ?? false;
  }

  releaseMany(claims: readonly Claim[]): Promise<boolean[]> {
    return this.engine.releaseMany(claims);
  }

  /** Renews a claim's lease by its `leaseMs`; `false` means the claim was lost. */
  async extend(claim: Claim): Promise<boolean> {
    const [renewed] = await this.extendMany([claim]);
    return renewed ?? false;
  }

  extendMany(claims: readonly Claim[]): Promise<boolean[]> {
    return this.engine.extendMany(claims);
  }

  /** The live record of a key (`null` when absent or expired). With redis+postgres, Postgres answers (Redis first for `redisOnlyScopes`). */
  get(key: string, options: { scope?: string } = {}): Promise<IdempotencyRecord | null> {
    return this.engine.get(key, options);
  }

  /**
   * Deletes a key's record (from every layer) so the next delivery runs again. Returns `false` when
   * there was none.
   * @throws RecordInFlightError for a live IN_PROGRESS record unless `force` (its owner may still be
   * running the effect; forgetting it would let a second owner start).
   * @throws StoreUnavailableError when a layer could not be reached (nothing is reported forgotten
   * while any layer may still hold the record).
   */
  forget(key: string, options: { scope?: string; force?: boolean } = {}): Promise<boolean> {
    return this.engine.forget(key, options);
  }

  /**
   * Pages through live records of this module's keyPrefix. Postgres (and redis+postgres): key
   * order, exact pages. Redis only: SCAN order, pages of roughly `limit`.
   * @throws InvalidListCursorError for a `cursor` that is not the `nextCursor` of a page.
   */
  list(query: ListQuery = {}): Promise<ListPage> {
    return this.engine.list(query);
  }

  /** Deletes up to `limit` expired Postgres records (Redis expires its own). Returns how many. */
  purgeExpired(limit = 1000): Promise<number> {
    return this.engine.purgeExpired(limit);
  }
}
