import { DynamicModule, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';

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
            // Without a listener ioredis prints "Unhandled error event" on every reconnect attempt;
            // callers see the failures themselves, so one line per outage is enough here.
            const logger = new Logger('Redis');
            let down = false;
            client.on('error', (error: Error) => {
              if (down) return;
              down = true;
              logger.warn({ msg: 'redis connection lost; reconnecting', err: error.message });
            });
            client.on('ready', () => {
              if (down) logger.log({ msg: 'redis connection restored' });
              down = false;
            });
            return client;
          },
        },
        RedisCloser,
      ],
      exports: [REDIS_CLIENT],
    };
  }
}
