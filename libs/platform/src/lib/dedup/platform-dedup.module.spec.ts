import { ConfigValidationError } from '../config/config.loader';
import { dedupEnvSchema, redisEnvSchema } from '../config/config.schemas';
import { REDIS_CLIENT } from '../redis/redis.module';
import { DEDUP_REDIS, DedupRedisModule } from './dedup-redis.module';
import { dedupStoreOptions, PlatformDedupModule } from './platform-dedup.module';

const config = (env: Record<string, string>) => ({
  ...redisEnvSchema.parse({}),
  ...dedupEnvSchema.parse(env),
});

describe('PlatformDedupModule.forRoot', () => {
  it('refuses a Redis Cluster for the postgres store at boot, naming both variables', () => {
    const build = () =>
      PlatformDedupModule.forRoot(
        config({ DEDUP_STORE: 'postgres', DEDUP_REDIS_CLUSTER_NODES: '127.0.0.1:7000' }),
      );
    expect(build).toThrow(ConfigValidationError);
    expect(build).toThrow(/DEDUP_REDIS_CLUSTER_NODES: needs DEDUP_STORE redis or redis\+postgres/);
  });

  it('without DEDUP_REDIS_CLUSTER_NODES, DEDUP_REDIS is the shared REDIS_CLIENT', () => {
    expect(DedupRedisModule.forRoot(undefined).providers).toEqual([
      { provide: DEDUP_REDIS, useExisting: REDIS_CLIENT },
    ]);
    const module = PlatformDedupModule.forRoot(config({ DEDUP_STORE: 'redis' }));
    expect(module.imports?.[0]).toMatchObject({ module: DedupRedisModule });
  });

  it('with it, DEDUP_REDIS is a client of its own, closed on shutdown', () => {
    const { providers } = DedupRedisModule.forRoot([{ host: '127.0.0.1', port: 7000 }]);
    expect(providers).toEqual([
      expect.objectContaining({
        provide: DEDUP_REDIS,
        inject: [REDIS_CLIENT],
        useFactory: expect.any(Function),
      }),
      expect.any(Function),
    ]);
  });

  it('passes DEDUP_REDIS_ONLY_SCOPES to the redis+postgres store only (the other stores keep every record in one place)', () => {
    const connections = { redis: {} as never, dataSource: {} as never };
    const common = { keyPrefix: 'once:dedup:' };
    expect(dedupStoreOptions(config({}), connections, common)).toMatchObject({
      store: 'redis+postgres',
      redisOnlyScopes: ['send-email'],
    });
    expect(dedupStoreOptions(config({ DEDUP_REDIS_ONLY_SCOPES: 'none' }), connections, common)).toMatchObject(
      {
        redisOnlyScopes: [],
      },
    );
    for (const store of ['redis', 'postgres'])
      expect(dedupStoreOptions(config({ DEDUP_STORE: store }), connections, common)).not.toHaveProperty(
        'redisOnlyScopes',
      );
  });
});
