import { Injectable, Module } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import Redis from 'ioredis';
import { IDEMPOTENT_RUNNER_PROPERTY } from './dedup.constants';
import { DedupMetrics } from './dedup-metrics.service';
import { DedupModule } from './dedup.module';
import { DedupConfigError } from './dedup.errors';
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
class FeatureHandler {
  @Idempotent()
  async handle(): Promise<void> {
    return undefined;
  }
}

@Module({ providers: [FeatureHandler] })
class FeatureModule {}

describe('DedupModule', () => {
  it('forRootAsync builds options from injected connections and is global', async () => {
    const events: string[] = [];
    const moduleRef = await Test.createTestingModule({
      imports: [
        DedupModule.forRootAsync({
          imports: [ConnectionsModule],
          inject: [REDIS],
          useFactory: (redis: Redis) => ({
            store: 'redis',
            redis,
            keyPrefix: 'app:dedup:',
            metricsListener: (event) => events.push(event.counter),
          }),
        }),
        FeatureModule,
      ],
    }).compile();

    const service = moduleRef.get(IdempotencyService);
    expect(service.keyFor('evt-1', 'Jobs.handle')).toBe('app:dedup:Jobs.handle:evt-1');
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

  it('forRoot validates options at boot', () => {
    expect(() => DedupModule.forRoot({ store: 'postgres' })).toThrow(DedupConfigError);
  });

  it('with enabled: false runs decorated methods as if undecorated, without touching the store', async () => {
    const redis = new Redis({ lazyConnect: true, enableOfflineQueue: false });
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
      imports: [DedupModule.forRoot({ store: 'redis', redis, enabled: false })],
      providers: [Counting],
    }).compile();

    const handler = moduleRef.get(Counting);
    await expect(handler.handle({ eventId: 'same' })).resolves.toBe('ran');
    await expect(handler.handle({ eventId: 'same' })).resolves.toBe('ran');
    expect(calls).toEqual([[{ eventId: 'same' }], [{ eventId: 'same' }]]);
    expect(redis.status).toBe('wait');
    expect(moduleRef.get(DedupMetrics).snapshot().claimed).toBe(0);

    redis.disconnect();
    await moduleRef.close();
  });
});
