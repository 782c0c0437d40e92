import { DynamicModule, Module } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DEDUP_COUNTERS, DedupModule, type DedupMetricEvent, type DedupModuleOptions } from '@once/dedup';
import { Counter, type Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import { ConfigValidationError } from '../config/config.loader';
import { dedupEnvIssues, type DedupEnv, type RedisEnv } from '../config/config.schemas';
import { DEDUP_REDIS, type DedupRedis, DedupRedisModule } from './dedup-redis.module';
import { DEDUP_STATS_OPTIONS, DedupStatsService, dedupStatsKeyPrefix } from './dedup-stats.service';
import { METRICS_REGISTRY } from '../ops/ops.options';

/** Key prefix of every dedup record, shared by the worker (writes) and the api (admin reads). */
export const dedupKeyPrefix = (config: RedisEnv): string => `${config.REDIS_KEY_PREFIX}dedup:`;

/** The DEDUP_STORE's options: each store gets the connections it uses, and only those. */
export function dedupStoreOptions(
  config: DedupEnv,
  connections: { redis: DedupRedis; dataSource: DataSource },
  common: Omit<DedupModuleOptions, 'store' | 'redis' | 'dataSource' | 'onStoreDown'>,
): DedupModuleOptions {
  const { redis, dataSource } = connections;
  switch (config.DEDUP_STORE) {
    case 'redis':
      return { ...common, store: 'redis', redis };
    case 'postgres':
      return { ...common, store: 'postgres', dataSource };
    case 'redis+postgres':
      return {
        ...common,
        store: 'redis+postgres',
        redis,
        dataSource,
        onStoreDown: config.DEDUP_ON_STORE_DOWN,
        redisOnlyScopes: config.DEDUP_REDIS_ONLY_SCOPES,
      };
  }
}

/**
 * DedupModule on the app's DataSource and its Redis client, or the Redis Cluster of
 * DEDUP_REDIS_CLUSTER_NODES when set (global {@link DEDUP_REDIS}), configured from DEDUP_*
 * variables, with its counters exported to Prometheus as `once_dedup_events_total{event,scope}`
 * and its duplicate counts by cause kept in the app's Redis (REDIS_CLIENT, never the cluster) for
 * every process to read (global DedupStatsService).
 */
@Module({})
export class PlatformDedupModule {
  static forRoot(config: DedupEnv & RedisEnv): DynamicModule {
    // loadConfig refuses these too where the app's schema adds refineDedupEnv; this covers every caller.
    const issues = dedupEnvIssues(config);
    if (issues.length > 0)
      throw new ConfigValidationError(
        'dedup',
        issues.map(({ variable, message }) => `${variable}: ${message}`),
      );
    const dedupRedis = DedupRedisModule.forRoot(config.DEDUP_REDIS_CLUSTER_NODES);
    return {
      module: PlatformDedupModule,
      global: true,
      imports: [
        dedupRedis,
        DedupModule.forRootAsync({
          imports: [dedupRedis],
          inject: [DEDUP_REDIS, getDataSourceToken(), METRICS_REGISTRY],
          useFactory: (redis: DedupRedis, dataSource: DataSource, registry: Registry) => {
            const events = new Counter({
              name: 'once_dedup_events_total',
              help: `Idempotency events: ${DEDUP_COUNTERS.join(', ')}`,
              labelNames: ['event', 'scope'],
              registers: [registry],
            });
            const common = {
              enabled: config.DEDUP_ENABLED,
              keyPrefix: dedupKeyPrefix(config),
              ttlMs: config.DEDUP_TTL_MS,
              leaseMs: config.DEDUP_LEASE_MS,
              metricsListener: (event: DedupMetricEvent) =>
                events.inc({ event: event.counter, scope: event.scope ?? event.store ?? '' }, event.by),
            };
            return dedupStoreOptions(config, { redis, dataSource }, common);
          },
        }),
      ],
      providers: [
        { provide: DEDUP_STATS_OPTIONS, useValue: { keyPrefix: dedupStatsKeyPrefix(config) } },
        DedupStatsService,
      ],
      exports: [DedupStatsService],
    };
  }
}
