import { DynamicModule, Module } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { DEDUP_COUNTERS, DedupModule, type DedupMetricEvent, type DedupModuleOptions } from '@once/dedup';
import type Redis from 'ioredis';
import { Counter, type Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { DedupEnv, RedisEnv } from '../config/config.schemas';
import { DEDUP_STATS_OPTIONS, DedupStatsService, dedupStatsKeyPrefix } from './dedup-stats.service';
import { METRICS_REGISTRY } from '../ops/ops.options';
import { REDIS_CLIENT } from '../redis/redis.module';

/** Key prefix of every dedup record, shared by the worker (writes) and the api (admin reads). */
export const dedupKeyPrefix = (config: RedisEnv): string => `${config.REDIS_KEY_PREFIX}dedup:`;

/** The DEDUP_STORE's options: each store gets the connections it uses, and only those. */
function dedupStoreOptions(
  config: DedupEnv,
  connections: { redis: Redis; dataSource: DataSource },
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
      };
  }
}

/**
 * DedupModule on the app's Redis client and DataSource, configured from DEDUP_* variables, with
 * its counters exported to Prometheus as `once_dedup_events_total{event,scope}` and its duplicate
 * counts by cause kept in Redis for every process to read (global DedupStatsService).
 */
@Module({})
export class PlatformDedupModule {
  static forRoot(config: DedupEnv & RedisEnv): DynamicModule {
    return {
      module: PlatformDedupModule,
      global: true,
      imports: [
        DedupModule.forRootAsync({
          inject: [REDIS_CLIENT, getDataSourceToken(), METRICS_REGISTRY],
          useFactory: (redis: Redis, dataSource: DataSource, registry: Registry) => {
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
