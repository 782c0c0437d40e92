import { Inject, Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { DEDUP_OPTIONS, IDEMPOTENT_RUNNER_PROPERTY } from './dedup.constants';
import { DedupMetrics } from './dedup-metrics.service';
import { DedupModule } from './dedup.module';
import { DedupConfigError } from './dedup.errors';
import type { DedupModuleOptions, DedupOptionsFactory, ResolvedDedupOptions } from './dedup.options';
import { Idempotent } from './idempotent.decorator';
import { IdempotencyService } from './idempotency.service';
import { IdempotentHandlerRunner } from './sqs/idempotent-handler.runner';

const REDIS = Symbol('REDIS');

@Module({
  providers: [{ provide: REDIS, useFactory: () => new Redis({ lazyConnect: true }) }],
  exports: [REDIS],
})
class ConnectionsModule {}

@Injectable()
class DedupConfig implements DedupOptionsFactory {
  constructor(@Inject(REDIS) private readonly redis: Redis) {}

  createDedupOptions(): DedupModuleOptions {
    return { store: 'redis', redis: this.redis, keyPrefix: 'app:dedup:', leaseMs: 5_000 };
  }
}

@Module({ imports: [ConnectionsModule], providers: [DedupConfig], exports: [DedupConfig] })
class DedupConfigModule {}

@Injectable()
class FeatureHandler {
  @Idempotent()
  async handle(): Promise<void> {
    return undefined;
  }
}

@Injectable()
class FeatureService {
  constructor(readonly idempotency: IdempotencyService) {}
}

@Module({ providers: [FeatureHandler, FeatureService] })
class FeatureModule {}

describe('DedupModule', () => {
  const redis = new Redis({ lazyConnect: true });
  afterAll(() => redis.disconnect());

  const resolvedBy = async (dedup: ReturnType<typeof DedupModule.forRoot>) => {
    const moduleRef = await Test.createTestingModule({ imports: [ConnectionsModule, dedup] }).compile();
    const options = moduleRef.get<ResolvedDedupOptions>(DEDUP_OPTIONS);
    const { redis: client, ...rest } = options;
    expect(client).toBeInstanceOf(Redis);
    moduleRef.get<Redis>(REDIS).disconnect();
    await moduleRef.close();
    return rest;
  };

  it('forRoot and forRootAsync with useFactory, useClass and useExisting resolve the same options', async () => {
    const all = await Promise.all([
      resolvedBy(DedupModule.forRoot({ store: 'redis', redis, keyPrefix: 'app:dedup:', leaseMs: 5_000 })),
      resolvedBy(
        DedupModule.forRootAsync({
          imports: [ConnectionsModule],
          inject: [REDIS],
          useFactory: (client: Redis): DedupModuleOptions => ({
            store: 'redis',
            redis: client,
            keyPrefix: 'app:dedup:',
            leaseMs: 5_000,
          }),
        }),
      ),
      resolvedBy(DedupModule.forRootAsync({ imports: [ConnectionsModule], useClass: DedupConfig })),
      resolvedBy(DedupModule.forRootAsync({ imports: [DedupConfigModule], useExisting: DedupConfig })),
    ]);
    expect(all[0]).toEqual({
      store: 'redis',
      keyPrefix: 'app:dedup:',
      leaseMs: 5_000,
      ttlMs: 86_400_000,
      onStoreDown: 'fail',
      redisOnlyScopes: [],
      redisTimeoutMs: 1000,
      redisRetryAfterMs: 1000,
      lockTimeoutMs: 5000,
      manageVisibility: true,
      missingKey: 'dead-letter',
      maxRetryDeferrals: 10,
      onPayloadMismatch: 'warn',
      enabled: true,
    });
    for (const resolved of all.slice(1)) expect(resolved).toEqual(all[0]);
  });

  it('is global by default: providers of other modules reach IdempotencyService, also through @Idempotent', async () => {
    const events: string[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [
        DedupModule.forRootAsync({
          imports: [ConnectionsModule],
          inject: [REDIS],
          useFactory: (client: Redis) => ({
            store: 'redis',
            redis: client,
            keyPrefix: 'app:dedup:',
            metricsListener: (event) => events.push(event.counter),
          }),
        }),
        FeatureModule,
      ],
    }).compile();

    const service = moduleRef.get(IdempotencyService);
    expect(service.keyFor('evt-1', 'Jobs.handle')).toBe('app:dedup:Jobs.handle:evt-1');
    expect(moduleRef.get(FeatureService).idempotency).toBe(service);
    // A provider in another module reaches the dedup runner through @Idempotent's injected property.
    const handler = moduleRef.get(FeatureHandler);
    expect((handler as unknown as Record<symbol, unknown>)[IDEMPOTENT_RUNNER_PROPERTY]).toBe(
      moduleRef.get(IdempotentHandlerRunner),
    );
    moduleRef.get(DedupMetrics).increment('claimed');
    expect(events).toEqual(['claimed']);

    moduleRef.get<Redis>(REDIS).disconnect();
    await moduleRef.close();
  });

  it('with isGlobal: false, only importing modules reach it', async () => {
    @Module({ providers: [FeatureService] })
    class Unrelated {}
    const boot = Test.createTestingModule({
      imports: [DedupModule.forRoot({ store: 'redis', redis, isGlobal: false }), Unrelated],
    }).compile();
    await expect(boot).rejects.toThrow(/can't resolve dependencies of the FeatureService/);

    @Module({
      imports: [DedupModule.forRoot({ store: 'redis', redis, isGlobal: false })],
      providers: [FeatureService],
    })
    class Importing {}
    const moduleRef = await Test.createTestingModule({ imports: [Importing] }).compile();
    expect(moduleRef.get(FeatureService).idempotency).toBeInstanceOf(IdempotencyService);
    await moduleRef.close();
  });

  it('validates options once, at boot, naming the field', async () => {
    const dataSource = new DataSource({ type: 'postgres' });
    const forRoot = Test.createTestingModule({
      imports: [DedupModule.forRoot({ store: 'postgres', dataSource, leaseMs: 10 })],
    }).compile();
    await expect(forRoot).rejects.toThrow(DedupConfigError);
    await expect(forRoot).rejects.toThrow(/leaseMs: /);

    const forRootAsync = Test.createTestingModule({
      imports: [
        DedupModule.forRootAsync({
          useFactory: () => ({ store: 'redis+postgres', redis, dataSource, keyPrefix: 'a\nb' }),
        }),
      ],
    }).compile();
    await expect(forRootAsync).rejects.toThrow(/keyPrefix: /);
  });

  it('with enabled: false runs decorated methods as if undecorated, without touching the store', async () => {
    const offline = new Redis({ lazyConnect: true, enableOfflineQueue: false });
    const calls: unknown[][] = [];
    @Injectable()
    class Counting {
      @Idempotent({ scope: 'counting' })
      async handle(...args: unknown[]): Promise<string> {
        calls.push(args);
        return 'ran';
      }
    }
    const moduleRef = await Test.createTestingModule({
      imports: [DedupModule.forRoot({ store: 'redis', redis: offline, enabled: false })],
      providers: [Counting],
    }).compile();

    const handler = moduleRef.get(Counting);
    await expect(handler.handle({ eventId: 'same' })).resolves.toBe('ran');
    await expect(handler.handle({ eventId: 'same' })).resolves.toBe('ran');
    expect(calls).toEqual([[{ eventId: 'same' }], [{ eventId: 'same' }]]);
    expect(offline.status).toBe('wait');
    expect(moduleRef.get(DedupMetrics).snapshot().claimed).toBe(0);

    offline.disconnect();
    await moduleRef.close();
  });
});
