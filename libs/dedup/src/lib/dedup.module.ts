import { DynamicModule, Module } from '@nestjs/common';
import { DEDUP_OPTIONS } from './dedup.constants';
import { type DedupModuleAsyncOptions, type DedupModuleOptions, resolveDedupOptions } from './dedup.options';
import { DEDUP_EXPORTS as EXPORTS, DEDUP_PROVIDERS as PROVIDERS } from './dedup.providers';

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
      exports: EXPORTS,
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
      exports: EXPORTS,
    };
  }
}
