import { DynamicModule, Module, Provider } from '@nestjs/common';
import { DEDUP_OPTIONS } from './dedup.constants';
import { DedupMetrics } from './dedup-metrics.service';
import { type DedupModuleAsyncOptions, type DedupModuleOptions, resolveDedupOptions } from './dedup.options';
import { IdempotencyService } from './idempotency.service';
import { SqsQueueOps } from './sqs/sqs-queue.ops';

const PROVIDERS: Provider[] = [DedupMetrics, SqsQueueOps, IdempotencyService];

/**
 * Exactly-once SQS handlers. Global, so `@Idempotent` methods in any module reach
 * IdempotencyService. The app passes its own connections (ioredis client, TypeORM DataSource)
 * and registers DEDUP_ENTITIES / DEDUP_MIGRATIONS with its DataSource.
 */
@Module({})
export class DedupModule {
  static forRoot(options: DedupModuleOptions): DynamicModule {
    return {
      module: DedupModule,
      global: true,
      providers: [{ provide: DEDUP_OPTIONS, useValue: resolveDedupOptions(options) }, ...PROVIDERS],
      exports: [IdempotencyService, DedupMetrics],
    };
  }

  static forRootAsync(options: DedupModuleAsyncOptions): DynamicModule {
    return {
      module: DedupModule,
      global: true,
      imports: options.imports ?? [],
      providers: [
        {
          provide: DEDUP_OPTIONS,
          inject: options.inject ?? [],
          useFactory: async (...args: unknown[]) =>
            resolveDedupOptions(await options.useFactory(...(args as never[]))),
        },
        ...PROVIDERS,
      ],
      exports: [IdempotencyService, DedupMetrics],
    };
  }
}
