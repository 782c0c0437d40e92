import { Logger, type Provider } from '@nestjs/common';
import { DedupConfigError } from '../dedup.errors';
import { DedupMetrics } from '../dedup-metrics.service';
import type { DedupStore } from '../stores/dedup-store.interface';
import { LayeredStore } from '../stores/layered.store';
import { PostgresStore } from '../stores/postgres.store';
import { RedisStore } from '../stores/redis.store';
import { DEDUP_SETTINGS, type DedupSettings, type StoreSettings } from './dedup.settings';

/** Injection token of the {@link DedupStore} the module options chose. */
export const DEDUP_STORE = Symbol('DEDUP_STORE');

/**
 * The store of `settings.mode`, over the app's connections. Only the connections the chosen store
 * uses: a DataSource passed with store 'redis' stays unused. typeorm and ioredis are never loaded
 * here (the stores import their types only), so a Redis-only app needs no typeorm.
 */
export function createDedupStore(settings: StoreSettings, metrics: DedupMetrics): DedupStore {
  const logger = new Logger('Idempotency');
  const redis =
    settings.mode !== 'postgres' &&
    settings.redis &&
    new RedisStore(
      settings.redis,
      {
        keyPrefix: settings.keyPrefix,
        timeoutMs: settings.redisTimeoutMs,
        retryAfterMs: settings.redisRetryAfterMs,
      },
      metrics,
      logger,
    );
  const postgres =
    settings.mode !== 'redis' && settings.dataSource
      ? new PostgresStore(settings.dataSource, metrics, { lockTimeoutMs: settings.lockTimeoutMs, logger })
      : undefined;
  if (settings.mode === 'redis' && redis) return redis;
  if (settings.mode === 'postgres' && postgres) return postgres;
  if (settings.mode === 'redis+postgres' && redis && postgres)
    return new LayeredStore(redis, postgres, settings.onStoreDown, logger, {
      keyPrefix: settings.keyPrefix,
      scopes: settings.redisOnlyScopes,
    });
  throw new DedupConfigError([`store "${settings.mode}" is missing its connection`]);
}

/** Provides {@link DEDUP_STORE} from the module settings. */
export const DEDUP_STORE_PROVIDER: Provider = {
  provide: DEDUP_STORE,
  inject: [DEDUP_SETTINGS, DedupMetrics],
  useFactory: (settings: DedupSettings, metrics: DedupMetrics) => createDedupStore(settings.store, metrics),
};
