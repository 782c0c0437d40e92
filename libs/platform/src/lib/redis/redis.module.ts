import { DynamicModule, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { logRedisOutages } from './redis-outage.logger';

/** Injection token of the app's shared ioredis client. */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

export interface RedisOptions {
  url: string;
  connectionName: string;
}

@Injectable()
class RedisCloser implements OnApplicationShutdown {
  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis) {}

  async onApplicationShutdown(): Promise<void> {
    if (this.redis.status === 'ready') await this.redis.quit();
    else this.redis.disconnect();
  }
}

/** One ioredis connection per app, closed on shutdown. */
@Module({})
export class RedisModule {
  static forRoot(options: RedisOptions): DynamicModule {
    return {
      module: RedisModule,
      global: true,
      providers: [
        {
          provide: REDIS_CLIENT,
          useFactory: () => {
            const client = new Redis(options.url, {
              connectionName: options.connectionName,
              maxRetriesPerRequest: 3,
            });
            logRedisOutages(client, 'Redis', 'redis');
            return client;
          },
        },
        RedisCloser,
      ],
      exports: [REDIS_CLIENT],
    };
  }
}
