import type { Provider } from '@nestjs/common';
import type { Cluster, Redis } from 'ioredis';
import type { DataSource } from 'typeorm';
import { DEDUP_OPTIONS } from '../dedup.constants';
import type { DedupMetricsListener } from '../dedup-metrics.service';
import type { ResolvedDedupOptions } from '../dedup.options';
import type { DedupStoreMode, MissingKeyPolicy, OnStoreDown, PayloadMismatchPolicy } from '../dedup.types';

/** Injection token of the {@link DedupSettings} read from the module options. */
export const DEDUP_SETTINGS = Symbol('DEDUP_SETTINGS');

/** What the store factory needs. */
export interface StoreSettings {
  readonly mode: DedupStoreMode;
  readonly redis?: Redis | Cluster;
  readonly dataSource?: DataSource;
  readonly keyPrefix: string;
  readonly onStoreDown: OnStoreDown;
  /** `redis+postgres` only: scopes kept in Redis alone. */
  readonly redisOnlyScopes: readonly string[];
  readonly redisTimeoutMs: number;
  readonly redisRetryAfterMs: number;
  readonly lockTimeoutMs: number;
}

/** Module defaults of every run. */
export interface RunDefaults {
  readonly storeMode: DedupStoreMode;
  readonly keyPrefix: string;
  readonly leaseMs: number;
  readonly ttlMs: number;
  readonly onPayloadMismatch: PayloadMismatchPolicy;
}

/** What the `@Idempotent` runner needs. */
export interface HandlerSettings {
  readonly enabled: boolean;
  readonly manageVisibility: boolean;
  readonly missingKey: MissingKeyPolicy;
  readonly maxRetryDeferrals: number;
}

/** The module options as the engine, the store factory and the runner read them. */
export interface DedupSettings {
  readonly store: StoreSettings;
  readonly runs: RunDefaults;
  readonly handlers: HandlerSettings;
  readonly metricsListener?: DedupMetricsListener;
}

/** The one place that reads {@link ResolvedDedupOptions}: a change of its shape ends here. */
export function dedupSettings(options: ResolvedDedupOptions): DedupSettings {
  return {
    store: {
      mode: options.store,
      redis: options.redis,
      dataSource: options.dataSource,
      keyPrefix: options.keyPrefix,
      onStoreDown: options.onStoreDown,
      redisOnlyScopes: options.redisOnlyScopes,
      redisTimeoutMs: options.redisTimeoutMs,
      redisRetryAfterMs: options.redisRetryAfterMs,
      lockTimeoutMs: options.lockTimeoutMs,
    },
    runs: {
      storeMode: options.store,
      keyPrefix: options.keyPrefix,
      leaseMs: options.leaseMs,
      ttlMs: options.ttlMs,
      onPayloadMismatch: options.onPayloadMismatch,
    },
    handlers: {
      enabled: options.enabled,
      manageVisibility: options.manageVisibility,
      missingKey: options.missingKey,
      maxRetryDeferrals: options.maxRetryDeferrals,
    },
    metricsListener: options.metricsListener,
  };
}

/** Provides {@link DEDUP_SETTINGS} from the module's DEDUP_OPTIONS. */
export const DEDUP_SETTINGS_PROVIDER: Provider = {
  provide: DEDUP_SETTINGS,
  inject: [DEDUP_OPTIONS],
  useFactory: dedupSettings,
};
