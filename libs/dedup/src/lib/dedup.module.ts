import { Module } from '@nestjs/common';
import { DEDUP_OPTIONS } from './dedup.constants';
import { ConfigurableDedupModule, DEDUP_MODULE_OPTIONS } from './dedup.module-definition';
import { resolveDedupOptions } from './dedup.options';
import { DEDUP_EXPORTS as EXPORTS, DEDUP_PROVIDERS as PROVIDERS } from './dedup.providers';

/**
 * Exactly-once SQS handlers. `forRoot(options)` or `forRootAsync({ useFactory | useClass | useExisting })`;
 * global unless `isGlobal: false`, so `@Idempotent` methods in any module reach IdempotencyService.
 * The app passes its own connections (ioredis client, TypeORM DataSource) and registers
 * DEDUP_ENTITIES / DEDUP_MIGRATIONS with its DataSource. Options are validated once, at boot.
 */
@Module({
  providers: [
    { provide: DEDUP_OPTIONS, inject: [DEDUP_MODULE_OPTIONS], useFactory: resolveDedupOptions },
    ...PROVIDERS,
  ],
  exports: EXPORTS,
})
export class DedupModule extends ConfigurableDedupModule {}
