import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { DEFAULT_SCOPE } from '../dedup.constants';
import {
  DuplicateInFlightError,
  PayloadMismatchError,
  RecordInFlightError,
  StaleClaimError,
  StoreUnavailableError,
} from '../dedup.errors';
import { DedupMetrics } from '../dedup-metrics.service';
import type {
  Claim,
  ClaimOptions,
  ClaimOutcome,
  IdempotencyContext,
  IdempotencyRecord,
  ListPage,
  ListQuery,
  RunOptions,
} from '../dedup.types';
import { storageKeyFor, validateListPrefix } from '../idempotency-key.extractor';
import { payloadFingerprint } from '../payload.fingerprint';
import {
  type ClaimRequest,
  type DedupStore,
  isTransactionalStore,
  type StoreClaimResult,
  type StoredRecord,
} from '../stores/dedup-store.interface';
import { ClaimRecorder, claimFields, claimRequest, requestOf } from './claim.recorder';
import { ClaimStrategy } from './claim.strategy';
import { DEDUP_SETTINGS, type DedupSettings, type RunDefaults } from './dedup.settings';
import type {
  ClaimItem,
  ExecHooks,
  ExecOutcome,
  ExecUnit,
  IdempotencyEngine,
  ResolvedRunOptions,
  Work,
} from './engine.types';
import { decodeResult } from './result.codec';
import { resolveRunOptions } from './run-options.resolver';
import { DEDUP_STORE } from './store.provider';
import { TransactionStrategy } from './transaction.strategy';

/**
 * The {@link IdempotencyEngine} over one {@link DedupStore}: claim (a lease with an owner token) →
 * complete (optionally with a result returned to duplicates) or release; `execute` runs work under
 * claims ({@link ClaimStrategy}) or in one transaction of a transactional store
 * ({@link TransactionStrategy}). Stored keys are `keyPrefix + scope + ':' + key`.
 */
@Injectable()
export class DedupEngine implements IdempotencyEngine {
  private readonly logger = new Logger('Idempotency');
  private readonly defaults: RunDefaults;
  private readonly recorder: ClaimRecorder;
  private readonly claims: ClaimStrategy;
  private readonly transactions?: TransactionStrategy;

  constructor(
    @Inject(DEDUP_STORE) private readonly store: DedupStore,
    @Inject(DEDUP_SETTINGS) settings: DedupSettings,
    private readonly metrics: DedupMetrics,
  ) {
    this.defaults = settings.runs;
    this.recorder = new ClaimRecorder(metrics, this.logger);
    this.claims = new ClaimStrategy(this, metrics, this.logger);
    if (isTransactionalStore(store))
      this.transactions = new TransactionStrategy(
        store,
        this.defaults.keyPrefix,
        this.recorder,
        metrics,
        this.logger,
      );
  }

  keyFor(key: string, scope: string = DEFAULT_SCOPE): string {
    return storageKeyFor(this.defaults.keyPrefix, scope, key);
  }

  resolve(options: RunOptions): ResolvedRunOptions {
    return resolveRunOptions(options, this.defaults, this.transactions !== undefined);
  }

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

  execute<P>(
    units: readonly ExecUnit<P>[],
    opts: ResolvedRunOptions,
    work: Work<P>,
    hooks: ExecHooks<P> = {},
  ): Promise<ExecOutcome[]> {
    return opts.transactional && this.transactions
      ? this.transactions.execute(units, opts, work, hooks)
      : this.claims.execute(units, opts, work, hooks);
  }

  async claimMany(
    items: readonly ClaimItem[],
    options: Omit<ClaimOptions, 'messageId' | 'payload'> = {},
  ): Promise<ClaimOutcome[]> {
    const opts = this.resolve(options);
    const token = randomUUID();
    const requests = items.map((item) =>
      claimRequest(this.defaults.keyPrefix, opts.scope, {
        ...item,
        payloadHash: item.payloadHash ?? payloadFingerprint(item.payload),
      }),
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
      const result: StoreClaimResult =
        unique[index] === request
          ? (results[index] as StoreClaimResult)
          : { status: 'in-flight', retryAfterMs: opts.leaseMs };
      return this.recorder.noteClaim(request, result, token, opts);
    });
  }

  async completeMany(entries: readonly { claim: Claim; result?: unknown }[]): Promise<boolean[]> {
    return grouped(
      entries,
      (entry) => entry.claim.ttlMs,
      async (group, ttlMs) => {
        const items = group.map(({ claim, result }) => ({
          ...requestOf(claim),
          token: claim.token,
          result: this.recorder.serialize(claim, result),
        }));
        let done: boolean[];
        try {
          done = await this.store.complete(items, ttlMs);
        } catch (error) {
          // A store that refuses a result (say, JSON nested deeper than jsonb takes) must not keep
          // the key from completing: once more without results. An unreachable store is no such case.
          if (error instanceof StoreUnavailableError || items.every((item) => item.result === undefined))
            throw error;
          for (const item of items.filter((entry) => entry.result !== undefined))
            this.recorder.notStored(item, `refused by the store: ${(error as Error).message}`);
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
            this.logger.warn({ msg: 'stale claim refused', ...claimFields(claim) });
          }
        });
        return done;
      },
    );
  }

  async releaseMany(claims: readonly Claim[]): Promise<boolean[]> {
    const released = await this.store.release(claims);
    claims.forEach((claim, i) => {
      if (released[i]) this.metrics.increment('released', { scope: claim.scope });
    });
    return released;
  }

  async extendMany(claims: readonly Claim[]): Promise<boolean[]> {
    return grouped(
      claims,
      (claim) => claim.leaseMs,
      async (group, leaseMs) => {
        const renewed = await this.store.extend(
          group.map((claim) => ({ ...requestOf(claim), token: claim.token })),
          leaseMs,
        );
        group.forEach((claim, i) => {
          this.metrics.increment(renewed[i] ? 'lease-extended' : 'stale-token', { scope: claim.scope });
          if (!renewed[i]) this.logger.warn({ msg: 'lease lost', ...claimFields(claim) });
        });
        return renewed;
      },
    );
  }

  async get(key: string, options: { scope?: string } = {}): Promise<IdempotencyRecord | null> {
    const record = await this.store.get(this.keyFor(key, options.scope));
    return record && toPublic(record);
  }

  async forget(key: string, options: { scope?: string; force?: boolean } = {}): Promise<boolean> {
    const scope = options.scope ?? DEFAULT_SCOPE;
    const outcome = await this.store.forget(this.keyFor(key, scope), { force: options.force ?? false });
    if (outcome === 'in-progress') throw new RecordInFlightError(scope, key);
    return outcome === 'forgotten';
  }

  async list(query: ListQuery = {}): Promise<ListPage> {
    const problem = query.prefix === undefined ? undefined : validateListPrefix(query.prefix);
    if (problem) throw new TypeError(`Invalid list prefix: ${problem}`);
    const limit = Math.min(1000, Math.max(1, Math.floor(query.limit ?? 50)));
    const page = await this.store.list({
      state: query.state,
      prefix: this.defaults.keyPrefix + (query.prefix ?? ''),
      limit,
      cursor: query.cursor,
    });
    return { items: page.items.map(toPublic), nextCursor: page.nextCursor };
  }

  async purgeExpired(limit = 1000): Promise<number> {
    return isTransactionalStore(this.store) ? this.store.purgeExpired(limit) : 0;
  }
}

function toPublic(record: StoredRecord): IdempotencyRecord {
  const { result, ...rest } = record;
  return { ...rest, result: decodeResult(result) };
}

/** Runs `operation` once per distinct `groupBy` value, keeping results in input order. */
async function grouped<T>(
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
