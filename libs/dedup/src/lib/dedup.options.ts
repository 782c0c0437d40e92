import type { ConfigurableModuleAsyncOptions } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { DataSource } from 'typeorm';
import { z } from 'zod';
import { DedupConfigError } from './dedup.errors';
import type { DedupMetricsListener } from './dedup-metrics.service';
import type { MissingKeyPolicy, OnStoreDown, PayloadMismatchPolicy } from './dedup.types';
import { validateIdempotencyScope, validateKeyPrefix } from './idempotency-key.extractor';

/** Options every store takes. */
export interface DedupCommonOptions {
  /** How long a COMPLETED record suppresses duplicates. Default 24 h; keep it above the queue's redelivery window. */
  ttlMs?: number;
  /** How long a claim holds without a heartbeat. Default 30 s; keep it ≤ the queue's visibility timeout. */
  leaseMs?: number;
  /** Prefix of every stored key: at most 200 UTF-8 bytes, no control characters. Default `'once:dedup:'`. */
  keyPrefix?: string;
  /** The same key with a different payload (body): `'warn'` (default), `'dead-letter'` or `'ignore'`. */
  onPayloadMismatch?: PayloadMismatchPolicy;
  /** Called on every counter increment. */
  metricsListener?: DedupMetricsListener;
  /**
   * Benchmark switch, not a feature flag: `false` runs `@Idempotent` methods as if undecorated (no
   * claim, no record, no manager argument, no exactly-once). For measuring the bare pipeline only; default true.
   */
  enabled?: boolean;
}

/** Options read only by `@Idempotent` SQS handlers (`@SqsMessageHandler`); `run`/`claim` calls ignore them. */
export interface DedupSqsOptions {
  /** Extend the SQS visibility of messages being handled (with the lease) and defer in-flight duplicates until the lease ends. Default true. */
  manageVisibility?: boolean;
  /** SQS message without a key: `'dead-letter'` (default) sends it to the queue's DLQ now; `'throw'` leaves it to redrive. */
  missingKey?: MissingKeyPolicy;
  /**
   * How often a single handler's `RetryAfterError` (with `retryAfterMs`) may defer a message by a
   * delayed copy, which spends none of the receives its redrive policy allows. The copies count
   * the retries in a message attribute; past this many, a retry is deferred by visibility and spends a
   * receive, so a message that keeps asking reaches the DLQ after `maxReceiveCount` more. Default 10.
   */
  maxRetryDeferrals?: number;
}

/** Redis tuning, for the stores that use Redis. */
export interface DedupRedisOptions {
  /**
   * ioredis client: a `Redis` (one node, or a primary with replicas) or a `Cluster` (Redis Cluster,
   * ElastiCache / MemoryDB cluster mode: records spread over the slots). Must not have its own `keyPrefix`.
   */
  redis: Redis | Cluster;
  /** A Redis call slower than this counts as Redis down. Default 1000 ms. */
  redisTimeoutMs?: number;
  /** After Redis fails, skip it for this long before trying again. Default 1000 ms. */
  redisRetryAfterMs?: number;
}

/** Postgres tuning, for the stores that use Postgres. */
export interface DedupPostgresOptions {
  /** Initialised (or initialising) TypeORM DataSource, with DEDUP_ENTITIES / DEDUP_MIGRATIONS registered. */
  dataSource: DataSource;
  /** Transactional mode: how long a duplicate waits for the first delivery's transaction. Default 5000 ms. */
  lockTimeoutMs?: number;
}

/** Records in Redis only: fast, as durable as the Redis deployment. */
export interface DedupRedisStoreOptions extends DedupCommonOptions, DedupSqsOptions, DedupRedisOptions {
  store: 'redis';
  dataSource?: never;
}

/** Records in Postgres only (and transactional mode, with the caller's EntityManager). */
export interface DedupPostgresStoreOptions extends DedupCommonOptions, DedupSqsOptions, DedupPostgresOptions {
  store: 'postgres';
  redis?: never;
}

/** Redis in front of Postgres: Postgres is the record of truth, Redis the fast path. */
export interface DedupLayeredStoreOptions
  extends DedupCommonOptions, DedupSqsOptions, DedupRedisOptions, DedupPostgresOptions {
  store: 'redis+postgres';
  /** Redis unreachable: `'fail'` (default) throws so the message is retried; `'bypass'` uses Postgres alone. */
  onStoreDown?: OnStoreDown;
  /**
   * Scopes whose records live in Redis alone, with no Postgres transaction: for handlers whose
   * effect keeps its own durable, atomic record (the mail ledger's `INSERT … ON CONFLICT`), where
   * Redis's claim and lease are the fast filter and the effect's record has the last word. Such a
   * record lost with Redis lets a duplicate reach the handler, never the effect twice. Redis down:
   * `onStoreDown` applies as to every scope (`'bypass'` claims them in Postgres until Redis is
   * back, and Redis does not see those claims: a duplicate may then reach the handler too). Fences
   * come from whichever layer granted a claim, so they are not comparable across an outage: not
   * for effects fenced downstream. No transactional mode; `get` and a `list` with a prefix inside
   * the scope read Redis. Default none.
   */
  redisOnlyScopes?: readonly string[];
}

/**
 * Options of {@link DedupModule.forRoot}, by `store`: each store names the connections it needs,
 * and only those. Connections are the app's: the lib opens none. Validated again at boot (for JS callers).
 */
export type DedupModuleOptions =
  DedupRedisStoreOptions | DedupPostgresStoreOptions | DedupLayeredStoreOptions;

/** Extra options of `DedupModule.forRoot`/`forRootAsync`, beside the {@link DedupModuleOptions}. */
export interface DedupModuleExtras {
  /** Register the module globally, so `@Idempotent` methods in any module reach it. Default true. */
  isGlobal?: boolean;
}

/** A class that `forRootAsync({ useClass })` / `({ useExisting })` asks for the options. */
export interface DedupOptionsFactory {
  createDedupOptions(): DedupModuleOptions | Promise<DedupModuleOptions>;
}

/** Options of {@link DedupModule.forRootAsync}: `useFactory` (with `inject`), `useClass` or `useExisting`. */
export type DedupModuleAsyncOptions = ConfigurableModuleAsyncOptions<
  DedupModuleOptions,
  'createDedupOptions'
> &
  DedupModuleExtras;

const isRedisLike = (value: unknown): value is Redis | Cluster =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as Redis).evalsha === 'function' &&
  typeof (value as Redis).scan === 'function';

/** The keyPrefix ioredis itself would add: a Cluster's own, or the one of its node connections. */
const clientKeyPrefix = (redis: Redis | Cluster): string | undefined =>
  redis.isCluster
    ? (redis as Cluster).options?.keyPrefix || (redis as Cluster).options?.redisOptions?.keyPrefix
    : (redis as Redis).options?.keyPrefix;

const isDataSourceLike = (value: unknown): value is DataSource =>
  typeof value === 'object' &&
  value !== null &&
  typeof (value as DataSource).createQueryRunner === 'function' &&
  typeof (value as DataSource).query === 'function';

const dedupOptionsSchema = z
  .object({
    store: z.enum(['redis', 'postgres', 'redis+postgres']),
    redis: z.custom<Redis | Cluster>(isRedisLike, { message: 'must be an ioredis client' }).optional(),
    dataSource: z
      .custom<DataSource>(isDataSourceLike, { message: 'must be a TypeORM DataSource' })
      .optional(),
    // Bounds: a lease is a timer and an SQS visibility timeout (≤ 12 h); ten years of ttl is plenty.
    ttlMs: z
      .number()
      .int()
      .positive()
      .max(10 * 365 * 24 * 3600_000)
      .default(24 * 60 * 60 * 1000),
    leaseMs: z
      .number()
      .int()
      .min(100)
      .max(12 * 3600_000)
      .default(30_000),
    keyPrefix: z
      .string()
      .superRefine((value, ctx) => {
        const problem = validateKeyPrefix(value);
        if (problem) ctx.addIssue({ code: 'custom', message: problem });
      })
      .default('once:dedup:'),
    onStoreDown: z.enum(['fail', 'bypass']).default('fail'),
    redisOnlyScopes: z
      .array(
        z.string().superRefine((value, ctx) => {
          const problem = validateIdempotencyScope(value);
          if (problem) ctx.addIssue({ code: 'custom', message: problem });
        }),
      )
      .readonly()
      .default([]),
    redisTimeoutMs: z.number().int().positive().default(1000),
    redisRetryAfterMs: z.number().int().min(0).default(1000),
    lockTimeoutMs: z.number().int().positive().default(5000),
    manageVisibility: z.boolean().default(true),
    missingKey: z.enum(['dead-letter', 'throw']).default('dead-letter'),
    maxRetryDeferrals: z.number().int().min(0).max(1000).default(10),
    onPayloadMismatch: z.enum(['warn', 'dead-letter', 'ignore']).default('warn'),
    enabled: z.boolean().default(true),
    metricsListener: z
      .custom<DedupMetricsListener>((value) => typeof value === 'function', { message: 'must be a function' })
      .optional(),
  })
  .superRefine((options, ctx) => {
    const usesRedis = options.store !== 'postgres';
    const usesPostgres = options.store !== 'redis';
    if (usesRedis && !options.redis) {
      ctx.addIssue({ code: 'custom', path: ['redis'], message: `required for store "${options.store}"` });
    }
    if (usesPostgres && !options.dataSource) {
      ctx.addIssue({
        code: 'custom',
        path: ['dataSource'],
        message: `required for store "${options.store}"`,
      });
    }
    if (options.redis && clientKeyPrefix(options.redis)) {
      ctx.addIssue({
        code: 'custom',
        path: ['redis'],
        message: 'the ioredis client has its own keyPrefix; use DedupModule keyPrefix instead',
      });
    }
    if (options.onStoreDown === 'bypass' && options.store !== 'redis+postgres') {
      ctx.addIssue({
        code: 'custom',
        path: ['onStoreDown'],
        message: '"bypass" needs store "redis+postgres" (there is nothing durable to fall back to)',
      });
    }
    if (options.redisOnlyScopes.length > 0 && options.store !== 'redis+postgres') {
      ctx.addIssue({
        code: 'custom',
        path: ['redisOnlyScopes'],
        message: `needs store "redis+postgres" (store "${options.store}" keeps every record in one place)`,
      });
    }
    if (options.ttlMs < options.leaseMs) {
      ctx.addIssue({ code: 'custom', path: ['ttlMs'], message: 'must be at least leaseMs' });
    }
  });

/** DedupModule options after validation, defaults applied. */
export type ResolvedDedupOptions = z.infer<typeof dedupOptionsSchema>;

/** Validates options once, at boot; throws {@link DedupConfigError} naming every problem. */
export function resolveDedupOptions(options: DedupModuleOptions): ResolvedDedupOptions {
  const result = dedupOptionsSchema.safeParse(options);
  if (!result.success) {
    throw new DedupConfigError(
      result.error.issues.map((issue) => `${issue.path.map(String).join('.') || '(root)'}: ${issue.message}`),
    );
  }
  return result.data;
}
