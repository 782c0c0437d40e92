import { randomUUID } from 'node:crypto';
import { type INestApplication, Logger } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import Redis from 'ioredis';
import { DataSource } from 'typeorm';
import { MAIL_ENTITIES, MAIL_MIGRATIONS, MailModule, type MailModuleOptions } from '../../src';
import { env } from './mail-e2e.harness';

export interface OwnRedisMailApp {
  app: INestApplication;
  redis: Redis;
  dataSource: DataSource;
  close(): Promise<void>;
}

/**
 * Like the harness's `createMailTestApp`, but on a Redis the test names (its own server, to kill),
 * with the client options the platform's RedisModule uses (`maxRetriesPerRequest: 3`, reconnect).
 */
export async function createMailAppOnRedis(
  redisUrl: string,
  options: Partial<Omit<MailModuleOptions, 'redis'>> = {},
): Promise<OwnRedisMailApp> {
  Logger.overrideLogger(['error']);
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: 3 });
  redis.on('error', () => undefined);
  const moduleRef = await Test.createTestingModule({
    imports: [
      TypeOrmModule.forRoot({
        type: 'postgres',
        url: env('DATABASE_URL'),
        entities: MAIL_ENTITIES,
        migrations: MAIL_MIGRATIONS,
        migrationsRun: true,
        synchronize: false,
      }),
      MailModule.forRoot({
        ses: {
          region: env('AWS_REGION'),
          endpoint: env('SES_ENDPOINT'),
          credentials: {
            accessKeyId: env('AWS_ACCESS_KEY_ID'),
            secretAccessKey: env('AWS_SECRET_ACCESS_KEY'),
          },
        },
        redisKeyPrefix: `${env('REDIS_KEY_PREFIX')}mail-b:${randomUUID().slice(0, 8)}:`,
        defaultFrom: 'Once <digest@once.example>',
        ...options,
        redis,
      }),
    ],
  }).compile();
  const app = moduleRef.createNestApplication();
  await app.init();
  return {
    app,
    redis,
    dataSource: app.get(DataSource),
    async close() {
      await app.close();
      redis.disconnect();
    },
  };
}
