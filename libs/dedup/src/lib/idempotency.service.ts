import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DEDUP_OPTIONS, DEFAULT_SCOPE } from './dedup.constants';
import {
  DedupConfigError,
  DuplicateInFlightError,
  PayloadMismatchError,
  RecordInFlightError,
  StaleClaimError,
  StoreConflictError,
  StoreUnavailableError,
} from './dedup.errors';
import { DedupMetrics } from './dedup-metrics.service';
import type { ResolvedDedupOptions } from './dedup.options';
import type {
  Claim,
  ClaimOptions,
  ClaimOutcome,
  IdempotencyContext,
  IdempotencyRecord,
  ListPage,
  ListQuery,
  PayloadMismatchPolicy,
  RunOptions,
} from './dedup.types';
import { runInIdempotencyContext } from './idempotency.context';
import { payloadFingerprint } from './payload.fingerprint';
import { assertValidScope, storageKeyFor, validateListPrefix } from './idempotency-key.extractor';
import { LeaseDeadline, LeaseHeartbeat } from './lease.heartbeat';
import { IdempotentHandlerRunner, type IdempotentCall } from './sqs/idempotent-handler.runner';
import { SqsQueueOps } from './sqs/sqs-queue.ops';
import type {
  ClaimRequest,
  DedupStore,
  HeldKey,
  StoreClaimResult,
  StoredRecord,
} from './stores/dedup-store.interface';
import { BYPASSED, LayeredStore } from './stores/layered.store';
import { isConflictError, isLockTimeoutError, PostgresStore } from './stores/postgres.store';
import { type RetryPolicy, withRetry } from './stores/store.retry';
import { RedisStore } from './stores/redis.store';

/** Per-call options with the module defaults applied. @internal */
export interface ResolvedRunOptions {
  readonly scope: string;
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly transactional: boolean;
  readonly storeResult: boolean;
  readonly onPayloadMismatch: PayloadMismatchPolicy;
  /** The caller counts `duplicate-*` itself, with their cause (the SQS runner). @internal */
  readonly callerCountsDuplicates?: boolean;
}

/** One unit of idempotent work (a key and what to hand the worker for it). @internal */
export interface ExecUnit<P> {
  readonly key: string;
  readonly messageId?: string;
  /** See {@link payloadFingerprint}. */
  readonly payloadHash?: string;
  readonly payload: P;
}

/** What the worker says about the fresh units it was given, index for index. @internal */
export interface WorkResult {
  readonly acked: readonly boolean[];
  readonly results?: readonly unknown[];
}

/** How one unit ended. `not-acked`: ran, but the handler did not acknowledge it, so it was released. @internal */
export type ExecOutcome =
  | { readonly status: 'executed' | 'not-acked' | 'stale' }
  | { readonly status: 'completed'; readonly result: unknown; readonly payloadMismatch?: boolean }
  | { readonly status: 'in-flight'; readonly retryAfterMs: number; readonly payloadMismatch?: boolean };

/** @internal */
export interface ExecHooks<P> {
  /** Runs on every heartbeat with the fresh payloads (the SQS runner extends their visibility). */
  onHeartbeat?: (fresh: readonly P[]) => Promise<void>;
}

/**
 * The context of one run. Its AbortSignal is created only if someone reads it or the lease is
 * lost: an AbortController per message is measurable on the hot path.
 */
class RunContext implements IdempotencyContext {
  private controller?: AbortController;

  constructor(
    readonly claims: readonly Claim[],
    readonly manager?: IdempotencyContext['manager'],
  ) {}

  get signal(): AbortSignal {
    this.controller ??= new AbortController();
    return this.controller.signal;
  }

  lose(reason: Error): void {
    if (!this.signal.aborted) this.controller?.abort(reason);
  }
}

/** A result's JSON text is stored inside `{ "once:json": text }` when a store could not hold it as is. */
const RESULT_WRAPPER = 'once:json';
/** Results above this many UTF-8 bytes are not stored (the effect still completes). */
export const MAX_RESULT_BYTES = 256 * 1024;
/**
 * JSON.stringify writes NUL and unpaired surrogates as `\u0000` / `\udXXX` escapes, which Postgres
 * jsonb refuses (a refused completion would leave the claim open and the effect would run again).
 * A false positive (an escaped backslash before "u0000") only wraps a result that needed no wrapping.
 */
const JSONB_UNSAFE = /\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

const isWrapper = (value: unknown): value is Record<typeof RESULT_WRAPPER, string> =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  typeof (value as Record<string, unknown>)[RESULT_WRAPPER] === 'string' &&
  Object.keys(value).length === 1;

/** The JSON text to store for `result`, or why it cannot be stored. */
export function encodeResult(result: unknown): { text: string } | { unstorable: string } {
  let text: string | undefined;
  try {
    text = JSON.stringify(result);
  } catch (error) {
    return { unstorable: `not JSON-serialisable (${(error as Error).name})` };
  }
  if (text === undefined) return { unstorable: 'not JSON-serialisable' };
  // Decided on the JSON text (a toJSON or an undefined field can make a wrapper-shaped text).
  if (JSONB_UNSAFE.test(text) || text.startsWith(`{"${RESULT_WRAPPER}"`))
    text = JSON.stringify({ [RESULT_WRAPPER]: text });
  if (Buffer.byteLength(text, 'utf8') > MAX_RESULT_BYTES) {
    return { unstorable: `larger than ${MAX_RESULT_BYTES} bytes` };
  }
  return { text };
}

/** The value of a stored result text (see {@link encodeResult}); `undefined` if none or unreadable. */
export function decodeResult(json: string | undefined): unknown {
  if (json === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(json);
    return isWrapper(value) ? JSON.parse(value[RESULT_WRAPPER]) : value;
  } catch {
    return undefined;
  }
}

/** Longest lease: SQS' longest visibility timeout (12 h), well inside a timer's 2^31-1 ms. */
export const MAX_LEASE_MS = 12 * 3600_000;
/** Longest ttl: ten years. */
export const MAX_TTL_MS = 10 * 365 * 24 * 3600_000;

/** A transaction that failed with a deadlock or serialization failure: 3 attempts in all. */
const TRANSACTION_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 40, maxDelayMs: 160 };

/** A deadlock or serialization failure, raw or as the store raised it: the transaction may simply be run again. */
const isTransientTransactionError = (error: unknown): boolean =>
  error instanceof StoreConflictError || isConflictError(error);

/** How long before the local lease deadline the owner gives up: a fifth of the lease, at most 1 s. */
const leaseMargin = (leaseMs: number) => Math.min(1000, Math.floor(leaseMs / 5));

/**
 * Exactly-once execution keyed by idempotency keys: claim (a lease with an owner token) →
 * complete (optionally with a result returned to duplicates) or release. `run` wraps a function;
 * `claim`/`complete`/`release`/`extend` are the building blocks; `get`/`forget`/`list` serve the
 * admin API. Stored keys are `keyPrefix + scope + ':' + key`.
 */
@Injectable()
export class IdempotencyService {
  private readonly logger = new Logger('Idempotency');
  private readonly store: DedupStore;
  private readonly postgres?: PostgresStore;
  private readonly layered?: LayeredStore;
  private readonly handlers: IdempotentHandlerRunner;

  constructor(
    @Inject(DEDUP_OPTIONS) private readonly options: ResolvedDedupOptions,
    private readonly metrics: DedupMetrics,
    queueOps: SqsQueueOps,
  ) {
    if (options.metricsListener) metrics.addListener(options.metricsListener);
    // Only the connections the chosen store uses: a DataSource passed with store 'redis' stays unused.
    const redis =
      options.store !== 'postgres' &&
      options.redis &&
      new RedisStore(
        options.redis,
        {
          keyPrefix: options.keyPrefix,
          timeoutMs: options.redisTimeoutMs,
          retryAfterMs: options.redisRetryAfterMs,
        },
        metrics,
        this.logger,
      );
    this.postgres =
      options.store !== 'redis' && options.dataSource
        ? new PostgresStore(options.dataSource, metrics)
        : undefined;
    if (options.store === 'redis' && redis) this.store = redis;
    else if (options.store === 'postgres' && this.postgres) this.store = this.postgres;
    else if (redis && this.postgres) {
      this.layered = new LayeredStore(redis, this.postgres, options.onStoreDown, this.logger);
      this.store = this.layered;
    } else {
      throw new DedupConfigError([`store "${options.store}" is missing its connection`]);
    }
    this.handlers = new IdempotentHandlerRunner(this, queueOps, metrics, options);
  }

  /** The stored key of `key` in `scope`: `keyPrefix + scope + ':' + key`. */
  keyFor(key: string, scope: string = DEFAULT_SCOPE): string {
    return storageKeyFor(this.options.keyPrefix, scope, key);
  }

  /**
   * Runs `fn` at most once per key (per scope) until the record expires. A duplicate of a
   * completed key gets the stored result (JSON round trip; `undefined` if none) without running.
   * @throws DuplicateInFlightError while another caller holds the key.
   * @throws StaleClaimError if the lease expired, another caller took over, and then this one finished.
   * Whatever `fn` throws, after releasing the claim.
   */
  async run<T>(
    key: string,
    fn: (context: IdempotencyContext) => T | Promise<T>,
    options: RunOptions = {},
  ): Promise<T> {
    const opts = this.resolve(options);
    let value: T | undefined;
    const [outcome] = await this.execute<undefined>(
      [
        {
          key,
          messageId: options.messageId,
          payloadHash: payloadFingerprint(options.payload),
          payload: undefined,
        },
      ],
      opts,
      async (_fresh, context) => {
        value = await fn(context);
        return { acked: [true], results: [value] };
      },
    );
    if (
      outcome &&
      'payloadMismatch' in outcome &&
      outcome.payloadMismatch &&
      opts.onPayloadMismatch === 'dead-letter'
    )
      throw new PayloadMismatchError(opts.scope, key, options.messageId);
    switch (outcome?.status) {
      case 'executed':
        return value as T;
      case 'completed':
        return outcome.result as T;
      case 'in-flight':
        throw new DuplicateInFlightError(opts.scope, key, outcome.retryAfterMs, options.messageId);
      default:
        throw new StaleClaimError(opts.scope, key, options.messageId);
    }
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
  async claimMany(
    items: readonly { key: string; messageId?: string; payload?: unknown; payloadHash?: string }[],
    options: Omit<ClaimOptions, 'messageId' | 'payload'> = {},
  ): Promise<ClaimOutcome[]> {
    const opts = this.resolve(options);
    const token = randomUUID();
    const requests = items.map((item) =>
      this.request(
        opts.scope,
        item.key,
        item.messageId,
        item.payloadHash ?? payloadFingerprint(item.payload),
      ),
    );
    const first = new Map<string, number>();
    const unique: ClaimRequest[] = [];
    for (const request of requests) {
      if (!first.has(request.storageKey)) {
        first.set(request.storageKey, unique.length);
        unique.push(request);
      }
    }
    const results = await this.store.claim(unique, token, opts.leaseMs);
    return requests.map((request) => {
      const index = first.get(request.storageKey) as number;
      const own = unique[index] === request;
      const result: StoreClaimResult = own
        ? (results[index] as StoreClaimResult)
        : { status: 'in-flight', retryAfterMs: opts.leaseMs };
      return this.noteClaim(request, result, token, opts);
    });
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
  async completeMany(entries: readonly { claim: Claim; result?: unknown }[]): Promise<boolean[]> {
    return this.grouped(
      entries,
      (entry) => entry.claim.ttlMs,
      async (group, ttlMs) => {
        const items = group.map(({ claim, result }) => ({
          ...this.requestOf(claim),
          token: claim.token,
          result: this.serialize(claim, result),
        }));
        let done: boolean[];
        try {
          done = await this.store.complete(items, ttlMs);
        } catch (error) {
          // A store that refuses a result (say, JSON nested deeper than jsonb takes) must not keep
          // the key from completing: once more without results. An unreachable store is no such case.
          if (error instanceof StoreUnavailableError || items.every((item) => item.result === undefined))
            throw error;
          for (const item of items.filter((entry) => entry.result !== undefined)) {
            this.metrics.increment('result-not-stored', { scope: item.scope });
            this.logger.warn({
              msg: 'result not stored',
              scope: item.scope,
              idempotencyKey: item.key,
              messageId: item.messageId,
              reason: `refused by the store: ${(error as Error).message}`,
            });
          }
          done = await this.store.complete(
            items.map((item) => ({ ...item, result: undefined })),
            ttlMs,
          );
        }
        group.forEach(({ claim }, i) => {
          if (done[i]) {
            this.metrics.increment('completed', { scope: claim.scope });
          } else {
            this.metrics.increment('stale-token', { scope: claim.scope });
            this.logger.warn({ msg: 'stale claim refused', ...this.fields(claim) });
          }
        });
        return done;
      },
    );
  }

  /** Gives a claim up (only its owner can) so the key can be claimed again at once. */
  async release(claim: Claim): Promise<boolean> {
    const [released] = await this.releaseMany([claim]);
    return released ?? false;
  }

  async releaseMany(claims: readonly Claim[]): Promise<boolean[]> {
    const released = await this.store.release(claims);
    claims.forEach((claim, i) => {
      if (released[i]) this.metrics.increment('released', { scope: claim.scope });
    });
    return released;
  }

  /** Renews a claim's lease by its `leaseMs`; `false` means the claim was lost. */
  async extend(claim: Claim): Promise<boolean> {
    const [renewed] = await this.extendMany([claim]);
    return renewed ?? false;
  }

  async extendMany(claims: readonly Claim[]): Promise<boolean[]> {
    return this.grouped(
      claims,
      (claim) => claim.leaseMs,
      async (group, leaseMs) => {
        const renewed = await this.store.extend(
          group.map((claim) => ({ ...this.requestOf(claim), token: claim.token })),
          leaseMs,
        );
        group.forEach((claim, i) => {
          this.metrics.increment(renewed[i] ? 'lease-extended' : 'stale-token', { scope: claim.scope });
          if (!renewed[i]) this.logger.warn({ msg: 'lease lost', ...this.fields(claim) });
        });
        return renewed;
      },
    );
  }

  /** The live record of a key (`null` when absent or expired). With redis+postgres, Postgres answers. */
  async get(key: string, options: { scope?: string } = {}): Promise<IdempotencyRecord | null> {
    const record = await this.store.get(this.keyFor(key, options.scope));
    return record && this.toPublic(record);
  }

  /**
   * Deletes a key's record (from every layer) so the next delivery runs again. Returns `false` when
   * there was none.
   * @throws RecordInFlightError for a live IN_PROGRESS record unless `force` (its owner may still be
   * running the effect; forgetting it would let a second owner start).
   * @throws StoreUnavailableError when a layer could not be reached (nothing is reported forgotten
   * while any layer may still hold the record).
   */
  async forget(key: string, options: { scope?: string; force?: boolean } = {}): Promise<boolean> {
    const scope = options.scope ?? DEFAULT_SCOPE;
    const outcome = await this.store.forget(this.keyFor(key, scope), { force: options.force ?? false });
    if (outcome === 'in-progress') throw new RecordInFlightError(scope, key);
    return outcome === 'forgotten';
  }

  /**
   * Pages through live records of this module's keyPrefix. Postgres (and redis+postgres): key
   * order, exact pages. Redis only: SCAN order, pages of roughly `limit`.
   * @throws InvalidListCursorError for a `cursor` that is not the `nextCursor` of a page.
   */
  async list(query: ListQuery = {}): Promise<ListPage> {
    const problem = query.prefix === undefined ? undefined : validateListPrefix(query.prefix);
    if (problem) throw new TypeError(`Invalid list prefix: ${problem}`);
    const limit = Math.min(1000, Math.max(1, Math.floor(query.limit ?? 50)));
    const page = await this.store.list({
      state: query.state,
      prefix: this.options.keyPrefix + (query.prefix ?? ''),
      limit,
      cursor: query.cursor,
    });
    return { items: page.items.map((record) => this.toPublic(record)), nextCursor: page.nextCursor };
  }

  /** Deletes up to `limit` expired Postgres records (Redis expires its own). Returns how many. */
  async purgeExpired(limit = 1000): Promise<number> {
    return this.postgres ? this.postgres.purgeExpired(limit) : 0;
  }

  /** Entry point of `@Idempotent` wrappers. @internal */
  invoke(call: IdempotentCall): Promise<unknown> {
    if (!this.options.enabled)
      return Promise.resolve().then(() => call.original.apply(call.thisArg, [...call.args]));
    return this.handlers.invoke(call);
  }

  /** Applies module defaults to per-call options. @internal */
  resolve(options: RunOptions): ResolvedRunOptions {
    const scope = options.scope ?? DEFAULT_SCOPE;
    assertValidScope(scope);
    const leaseMs = options.leaseMs ?? this.options.leaseMs;
    const ttlMs = options.ttlMs ?? this.options.ttlMs;
    if (!Number.isInteger(leaseMs) || leaseMs < 100 || leaseMs > MAX_LEASE_MS)
      throw new TypeError(`leaseMs must be an integer from 100 to ${MAX_LEASE_MS}`);
    if (!Number.isInteger(ttlMs) || ttlMs < leaseMs || ttlMs > MAX_TTL_MS)
      throw new TypeError(`ttlMs must be an integer from leaseMs to ${MAX_TTL_MS}`);
    if (options.transactional && !this.postgres) {
      throw new DedupConfigError([
        `transactional mode needs store "postgres" or "redis+postgres", not "${this.options.store}"`,
      ]);
    }
    return {
      scope,
      leaseMs,
      ttlMs,
      transactional: options.transactional ?? false,
      storeResult: options.storeResult ?? true,
      onPayloadMismatch: options.onPayloadMismatch ?? this.options.onPayloadMismatch,
      // Internal: survives when execute() hands its resolved options back through claimMany().
      callerCountsDuplicates: (options as Partial<ResolvedRunOptions>).callerCountsDuplicates,
    };
  }

  /**
   * Claims every unit in one round trip, hands the fresh ones to `work` (under a lease heartbeat,
   * or inside one Postgres transaction), then completes what `work` acknowledged and releases the
   * rest. If `work` throws, every fresh claim is released (rolled back) and the error rethrown.
   * Unit keys must be distinct. @internal
   */
  execute<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: (fresh: P[], context: IdempotencyContext) => Promise<WorkResult>,
    hooks: ExecHooks<P> = {},
  ): Promise<ExecOutcome[]> {
    return opts.transactional
      ? this.executeInTransaction(units, opts, work, hooks)
      : this.executeWithClaims(units, opts, work, hooks);
  }

  private async executeWithClaims<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: (fresh: P[], context: IdempotencyContext) => Promise<WorkResult>,
    hooks: ExecHooks<P>,
  ): Promise<ExecOutcome[]> {
    const claimedAt = Date.now();
    const claimed = await this.claimMany(units, opts);
    const outcomes: ExecOutcome[] = claimed.map((outcome) =>
      outcome.status === 'claimed' ? { status: 'executed' } : outcome,
    );
    const fresh = claimed.flatMap((outcome, i) => (outcome.status === 'claimed' ? [i] : []));
    if (fresh.length === 0) return outcomes;

    const claims = fresh.map((i) => (claimed[i] as { claim: Claim }).claim);
    const payloads = fresh.map((i) => (units[i] as ExecUnit<P>).payload);
    const context = new RunContext(claims);
    const deadline = new LeaseDeadline(claimedAt, opts.leaseMs, leaseMargin(opts.leaseMs), () => {
      const [first] = claims;
      for (const claim of claims) {
        this.metrics.increment('lease-expired', { scope: claim.scope });
        this.logger.warn({ msg: 'lease about to lapse: extensions failed', ...this.fields(claim) });
      }
      if (first) context.lose(new StaleClaimError(first.scope, first.key, first.messageId));
    });
    const heartbeat = this.startHeartbeat(
      opts.leaseMs,
      claims,
      context,
      (held) => this.extendMany(held),
      () => (hooks.onHeartbeat ? hooks.onHeartbeat(payloads) : Promise.resolve()),
      deadline,
    );
    let done: WorkResult;
    try {
      done = await runInIdempotencyContext(context, () => work(payloads, context));
    } catch (error) {
      await heartbeat.stop();
      deadline.stop();
      await this.releaseAfterFailure(claims, error);
      throw error;
    }
    await heartbeat.stop();
    deadline.stop();

    const acked = claims.flatMap((claim, j) =>
      done.acked[j] ? [{ claim, result: opts.storeResult ? done.results?.[j] : undefined, j }] : [],
    );
    let completed: boolean[];
    try {
      completed = await this.completeMany(acked);
    } catch (error) {
      // The effect ran: retrying it would run it twice. The message is acknowledged, and the
      // record is left to its lease; this is an incident for an operator, never a silent re-open.
      for (const { claim } of acked) {
        this.metrics.increment('completion-failed', { scope: claim.scope });
        this.logger.error({
          msg: 'completion failed after the effect ran; the record expires with its lease',
          ...this.fields(claim),
          error: (error as Error)?.message,
        });
      }
      completed = acked.map(() => true);
    }
    const unacked = claims.filter((_, j) => !done.acked[j]);
    if (unacked.length > 0) await this.releaseAfterFailure(unacked, 'not acknowledged');
    const completedByIndex = new Map(acked.map(({ j }, k) => [j, completed[k]]));
    fresh.forEach((unitIndex, j) => {
      outcomes[unitIndex] = {
        status: !done.acked[j] ? 'not-acked' : completedByIndex.get(j) ? 'executed' : 'stale',
      };
    });
    return outcomes;
  }

  /**
   * One Postgres transaction for the claims and the business writes: both commit or neither does.
   * A handler that acknowledges only some units has written for all of them in the same
   * transaction, so it is rolled back whole and the acknowledged units run once more, alone, in a
   * fresh one (`rerunAcked`); the rest are released. A deadlock or serialization failure rolls back
   * and retries the whole transaction a bounded number of times.
   */
  private async executeInTransaction<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: (fresh: P[], context: IdempotencyContext) => Promise<WorkResult>,
    hooks: ExecHooks<P>,
    rerunAcked = true,
  ): Promise<ExecOutcome[]> {
    const { outcomes, rerun } = await withRetry(
      TRANSACTION_RETRY,
      (error) => {
        const retried = isTransientTransactionError(error);
        if (retried) this.logger.warn({ msg: 'transaction retried', error: (error as Error).message });
        return retried;
      },
      () => this.transactionOnce(units, opts, work, hooks),
    );
    if (rerun.length === 0 || !rerunAcked) return outcomes;
    // Outside the retries: the re-run has retries of its own, and repeating the whole batch after
    // it started would run the handler (and any effect outside the database) again.
    const again = await this.executeInTransaction(
      rerun.map((i) => units[i] as ExecUnit<P>),
      opts,
      work,
      hooks,
      false,
    );
    rerun.forEach((i, k) => (outcomes[i] = again[k] as ExecOutcome));
    return outcomes;
  }

  /** One transaction; `rerun` lists the units acknowledged in a partially acknowledged (rolled back) run. */
  private async transactionOnce<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: (fresh: P[], context: IdempotencyContext) => Promise<WorkResult>,
    hooks: ExecHooks<P>,
  ): Promise<{ outcomes: ExecOutcome[]; rerun: number[] }> {
    const postgres = this.postgres as PostgresStore;
    const dataSource = this.options.dataSource as NonNullable<ResolvedDedupOptions['dataSource']>;
    const token = randomUUID();
    const requests = units.map((unit) =>
      this.request(opts.scope, unit.key, unit.messageId, unit.payloadHash),
    );
    const results: StoreClaimResult[] = new Array(requests.length);

    // redis+postgres: Redis filters first, under a lease; Postgres decides inside the transaction.
    const forward: number[] = [];
    const heldInRedis: HeldKey[] = [];
    if (this.layered) {
      const first = await this.layered.claimFirstLayer(requests, token, opts.leaseMs);
      first.forEach((result, i) => {
        if (result === BYPASSED || result.status === 'claimed') forward.push(i);
        else results[i] = result;
        if (result !== BYPASSED && result.status === 'claimed')
          heldInRedis.push({ storageKey: (requests[i] as ClaimRequest).storageKey, token });
      });
    } else {
      forward.push(...requests.keys());
    }
    const forwarded = forward.map((i) => requests[i] as ClaimRequest);
    // Only what Redis really holds: a bypassed Redis is down, and releasing there would wait out its retries.
    const releaseRedis = async () => {
      const redis = this.layered?.redis;
      if (redis && heldInRedis.length > 0) await this.redisBestEffort(() => redis.release(heldInRedis));
    };

    let runner: ReturnType<typeof dataSource.createQueryRunner>;
    try {
      runner = dataSource.createQueryRunner();
    } catch (error) {
      await releaseRedis(); // e.g. a DataSource not initialised: leave no Redis claim behind
      throw error;
    }
    let heartbeat: { stop(): Promise<void> } | undefined;
    const claims: Claim[] = [];
    let working = false;
    try {
      await runner.connect();
      await runner.startTransaction();
      await runner.query(`SET LOCAL lock_timeout = ${Math.floor(this.options.lockTimeoutMs)}`);
      let second: StoreClaimResult[];
      try {
        second = await postgres.claimInTransaction(runner.manager, forwarded, token, opts.ttlMs);
      } catch (error) {
        if (!isLockTimeoutError(error)) throw error;
        second = forwarded.map(() => ({ status: 'in-flight', retryAfterMs: this.options.lockTimeoutMs }));
      }
      forward.forEach((i, k) => (results[i] = second[k] as StoreClaimResult));
      const outcomes: ExecOutcome[] = requests.map((request, i) => {
        const outcome = this.noteClaim(request, results[i] as StoreClaimResult, token, opts);
        if (outcome.status !== 'claimed') return outcome;
        claims.push(outcome.claim);
        return { status: 'executed' };
      });
      // Redis follows Postgres for the keys Postgres did not give us.
      const lost = forward.filter((i) => results[i]?.status !== 'claimed');
      const settleRedis = () =>
        this.layered
          ? this.layered.followSecondLayer(
              lost.map((i) => requests[i] as ClaimRequest),
              token,
              lost.map((i) => results[i] as StoreClaimResult),
            )
          : Promise.resolve();

      const fresh = requests.flatMap((_, i) => (results[i]?.status === 'claimed' ? [i] : []));
      if (fresh.length === 0) {
        await runner.rollbackTransaction();
        await settleRedis();
        return { outcomes, rerun: [] };
      }

      const payloads = fresh.map((i) => (units[i] as ExecUnit<P>).payload);
      const context = new RunContext(claims, runner.manager);
      heartbeat = this.startHeartbeat(
        opts.leaseMs,
        claims,
        context,
        (held) => this.extendRedisOnly(held),
        () => (hooks.onHeartbeat ? hooks.onHeartbeat(payloads) : Promise.resolve()),
      );
      working = true;
      const done = await runInIdempotencyContext(context, () => work(payloads, context));
      await heartbeat.stop();

      if (!claims.every((_, j) => done.acked[j])) {
        // Not acknowledged (all or some): the handler's writes cannot be told apart, so none stay.
        await runner.rollbackTransaction();
        working = false;
        await releaseRedis();
        await settleRedis();
        for (const claim of claims) {
          this.metrics.increment('released', { scope: claim.scope });
          this.logger.log({ msg: 'transaction rolled back: not acknowledged', ...this.fields(claim) });
        }
        fresh.forEach((unitIndex) => (outcomes[unitIndex] = { status: 'not-acked' }));
        return { outcomes, rerun: fresh.filter((_, j) => done.acked[j]) };
      }

      const stored = claims.map((claim, j) => ({
        ...this.requestOf(claim),
        token,
        result: opts.storeResult ? this.serialize(claim, done.results?.[j]) : undefined,
      }));
      await postgres.finishInTransaction(runner.manager, token, stored, []);
      await runner.commitTransaction();
      working = false;

      for (const item of stored) this.metrics.increment('completed', { scope: item.scope });
      if (this.layered) {
        const redis = this.layered.redis;
        await this.redisBestEffort(() => redis.complete(stored, opts.ttlMs, 'best-effort'));
      }
      await settleRedis();
      return { outcomes, rerun: [] };
    } catch (error) {
      await heartbeat?.stop();
      if (runner.isTransactionActive) {
        await runner
          .rollbackTransaction()
          .catch((rollbackError: Error) =>
            this.logger.error({ msg: 'rollback failed', error: rollbackError.message }),
          );
      }
      await releaseRedis();
      if (working) {
        for (const claim of claims) {
          this.metrics.increment('released', { scope: claim.scope });
          this.logger.warn({
            msg: 'transaction rolled back after failure',
            ...this.fields(claim),
            error: (error as Error)?.name,
          });
        }
      }
      throw error;
    } finally {
      await runner.release();
    }
  }

  /**
   * Every `leaseMs / 3` while a claim is held: extends the claims and, side by side, runs `after`
   * (the SQS runner extends the messages' visibility). A claim reported lost aborts the context at
   * once and is no longer extended. An extension that failed (store error) or is slow does not hold
   * back visibility: the work goes on until `deadline` says the lease may lapse, and a redelivery
   * meanwhile would only meet an in-flight record.
   */
  private startHeartbeat(
    leaseMs: number,
    claims: readonly Claim[],
    lease: RunContext,
    extend: (held: Claim[]) => Promise<boolean[]>,
    after: () => Promise<void>,
    deadline?: LeaseDeadline,
  ): { stop(): Promise<void> } {
    let held = [...claims];
    // One extension at a time, but not awaited by the beat: a slow store (retries, a full pool)
    // must not hold back the next visibility extension.
    let extending: Promise<void> | undefined;
    const startExtension = () => {
      const sentAt = Date.now();
      const asked = held;
      extending = extend(asked)
        .then(
          (renewed) => {
            const lost = asked.filter((_, i) => !renewed[i]);
            held = held.filter((claim) => !lost.includes(claim));
            const [firstLost] = lost;
            if (firstLost)
              lease.lose(new StaleClaimError(firstLost.scope, firstLost.key, firstLost.messageId));
            else deadline?.renewed(sentAt);
          },
          (error: unknown) =>
            this.logger.warn({ msg: 'lease extension failed', error: (error as Error).message }),
        )
        .finally(() => (extending = undefined));
    };
    const heartbeat = new LeaseHeartbeat(
      Math.max(50, Math.floor(leaseMs / 3)),
      async () => {
        if (held.length === 0) return;
        if (!extending) startExtension();
        await after();
      },
      (error) => this.logger.warn({ msg: 'lease heartbeat failed', error: (error as Error).message }),
    );
    return {
      // Nothing extends a claim after its owner completed or released it.
      stop: async () => {
        await heartbeat.stop();
        await extending;
      },
    };
  }

  /** Transactional mode holds no Postgres lease (the row lock is one); only Redis' is renewed. */
  private async extendRedisOnly(claims: Claim[]): Promise<boolean[]> {
    if (this.layered) {
      const renewed = await this.redisBestEffort(() =>
        (this.layered as LayeredStore).redis.extend(
          claims.map((claim) => ({ ...this.requestOf(claim), token: claim.token })),
          claims[0]?.leaseMs ?? this.options.leaseMs,
          'best-effort',
        ),
      );
      renewed?.forEach(
        (ok, i) => ok && this.metrics.increment('lease-extended', { scope: claims[i]?.scope }),
      );
    }
    return claims.map(() => true);
  }

  /** Releases claims whose work failed or was not acknowledged; a failed release leaves them to their lease. */
  private async releaseAfterFailure(claims: readonly Claim[], why: unknown): Promise<void> {
    try {
      await this.releaseMany(claims);
    } catch (releaseError) {
      this.logger.error({
        msg: 'release failed; the lease will expire',
        error: (releaseError as Error).message,
      });
    }
    for (const claim of claims) {
      this.logger.warn({
        msg: 'claim released',
        ...this.fields(claim),
        reason: typeof why === 'string' ? why : (why as Error)?.name,
      });
    }
  }

  private async redisBestEffort<T>(operation: () => Promise<T>): Promise<T | undefined> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof StoreUnavailableError) return undefined;
      throw error;
    }
  }

  /** Counts and logs a claim result and turns it into the public outcome. */
  private noteClaim(
    request: ClaimRequest,
    result: StoreClaimResult,
    token: string,
    opts: ResolvedRunOptions,
  ): ClaimOutcome {
    const fields = { scope: request.scope, idempotencyKey: request.key, messageId: request.messageId };
    if (result.status === 'claimed') {
      this.metrics.increment('claimed', { scope: request.scope });
      return { status: 'claimed', claim: this.claimOf(request, token, result.fence, opts) };
    }
    const payloadMismatch =
      request.payloadHash !== undefined &&
      result.payloadHash !== undefined &&
      request.payloadHash !== result.payloadHash;
    if (payloadMismatch) {
      this.metrics.increment('payload-mismatch', { scope: request.scope });
      if (opts.onPayloadMismatch !== 'ignore') {
        this.logger.warn({
          msg: 'payload mismatch: the key was used before for a different payload',
          ...fields,
          payloadHash: request.payloadHash,
          recordPayloadHash: result.payloadHash,
          policy: opts.onPayloadMismatch,
        });
      }
    }
    const mismatch = payloadMismatch ? { payloadMismatch } : {};
    if (result.status === 'completed') {
      if (!opts.callerCountsDuplicates)
        this.metrics.increment('duplicate-completed', { scope: request.scope });
      this.logger.log({ msg: 'duplicate skipped', ...fields });
      return { status: 'completed', result: decodeResult(result.result), ...mismatch };
    }
    if (!opts.callerCountsDuplicates) this.metrics.increment('duplicate-in-flight', { scope: request.scope });
    this.logger.log({ msg: 'duplicate in flight', ...fields, retryAfterMs: result.retryAfterMs });
    return { status: 'in-flight', retryAfterMs: result.retryAfterMs, ...mismatch };
  }

  private claimOf(request: ClaimRequest, token: string, fence: number, opts: ResolvedRunOptions): Claim {
    return {
      storageKey: request.storageKey,
      scope: request.scope,
      key: request.key,
      messageId: request.messageId,
      payloadHash: request.payloadHash,
      token,
      fence,
      leaseMs: opts.leaseMs,
      ttlMs: opts.ttlMs,
    };
  }

  private request(scope: string, key: string, messageId?: string, payloadHash?: string): ClaimRequest {
    return {
      storageKey: storageKeyFor(this.options.keyPrefix, scope, key),
      scope,
      key,
      messageId,
      payloadHash,
    };
  }

  private requestOf(claim: Claim): ClaimRequest {
    return {
      storageKey: claim.storageKey,
      scope: claim.scope,
      key: claim.key,
      messageId: claim.messageId,
      payloadHash: claim.payloadHash,
    };
  }

  private fields(claim: Claim) {
    return { scope: claim.scope, idempotencyKey: claim.key, messageId: claim.messageId };
  }

  /**
   * JSON of a result to store. A result no store can hold is not stored (counted and logged): the
   * effect has run, so the claim must still complete.
   */
  private serialize(claim: Claim, result: unknown): string | undefined {
    if (result === undefined) return undefined;
    const encoded = encodeResult(result);
    if ('text' in encoded) return encoded.text;
    this.metrics.increment('result-not-stored', { scope: claim.scope });
    this.logger.warn({ msg: 'result not stored', ...this.fields(claim), reason: encoded.unstorable });
    return undefined;
  }

  private toPublic(record: StoredRecord): IdempotencyRecord {
    const { result, ...rest } = record;
    return { ...rest, result: decodeResult(result) };
  }

  /** Runs `operation` once per distinct `groupBy` value, keeping results in input order. */
  private async grouped<T>(
    items: readonly T[],
    groupBy: (item: T) => number,
    operation: (group: T[], value: number) => Promise<boolean[]>,
  ): Promise<boolean[]> {
    const groups = new Map<number, number[]>();
    items.forEach((item, i) => groups.set(groupBy(item), [...(groups.get(groupBy(item)) ?? []), i]));
    const out: boolean[] = new Array(items.length).fill(false);
    for (const [value, indexes] of groups) {
      const results = await operation(
        indexes.map((i) => items[i] as T),
        value,
      );
      indexes.forEach((i, k) => (out[i] = results[k] ?? false));
    }
    return out;
  }
}
