import type { Provider } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { DedupMetrics } from './dedup-metrics.service';
import { DEDUP_SETTINGS, DEDUP_SETTINGS_PROVIDER, type DedupSettings } from './engine/dedup.settings';
import { IDEMPOTENCY_ENGINE, IDEMPOTENCY_ENGINE_PROVIDER } from './engine/engine.provider';
import type { IdempotencyEngine } from './engine/engine.types';
import { DEDUP_STORE_PROVIDER } from './engine/store.provider';
import { IdempotencyService } from './idempotency.service';
import { IdempotentHandlerRunner } from './sqs/idempotent-handler.runner';
import { LazyQueueOps, type QueueOps } from './sqs/queue-ops.lazy';

/** What DedupModule provides besides its options (DEDUP_OPTIONS). */
export const DEDUP_PROVIDERS: Provider[] = [
  DEDUP_SETTINGS_PROVIDER,
  {
    provide: DedupMetrics,
    inject: [DEDUP_SETTINGS],
    useFactory: (settings: DedupSettings) => {
      const metrics = new DedupMetrics();
      if (settings.metricsListener) metrics.addListener(settings.metricsListener);
      return metrics;
    },
  },
  DEDUP_STORE_PROVIDER,
  IDEMPOTENCY_ENGINE_PROVIDER,
  {
    provide: LazyQueueOps,
    inject: [ModuleRef],
    useFactory: (moduleRef: ModuleRef) => new LazyQueueOps(moduleRef),
  },
  {
    provide: IdempotentHandlerRunner,
    inject: [IDEMPOTENCY_ENGINE, LazyQueueOps, DedupMetrics, DEDUP_SETTINGS],
    useFactory: (
      engine: IdempotencyEngine,
      queueOps: QueueOps,
      metrics: DedupMetrics,
      settings: DedupSettings,
    ) => new IdempotentHandlerRunner(engine, queueOps, metrics, settings.handlers),
  },
  IdempotencyService,
];

/** What DedupModule exports to the app (the runner: `@Idempotent` methods in any module reach it). */
export const DEDUP_EXPORTS = [IdempotencyService, DedupMetrics, IdempotentHandlerRunner];
