import { randomUUID } from 'node:crypto';
import { SESv2Client } from '@aws-sdk/client-sesv2';
import { type INestApplication, Logger, type ModuleMetadata } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TypeOrmModule } from '@nestjs/typeorm';
import { SesMailbox, type StoredEmail, waitFor } from '@once/testing';
import Redis from 'ioredis';
import { DataSource, type QueryRunner } from 'typeorm';
import { MAIL_ENTITIES, MAIL_MIGRATIONS, MailModule, type MailModuleOptions } from '../../src';
import { ADDRESS_LOCK_CLASS } from '../../src/lib/suppression/address-lock.util';

export { ADDRESS_LOCK_CLASS };

export type { StoredEmail };

export function env(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run through the e2e target (global setup)`);
  return value;
}

/** A recipient no other test uses, so store lookups need no clearing. */
export function uniqueAddress(label = 'user'): string {
  return `${label}-${randomUUID().slice(0, 8)}@example.com`;
}

export function uniqueKey(label: string): string {
  return `${label}:${randomUUID()}`;
}

const mailbox = (): SesMailbox => new SesMailbox(env('SES_ENDPOINT'));

export async function emailsTo(address: string): Promise<StoredEmail[]> {
  return (await mailbox().all()).filter((email) => email.destination.to.includes(address));
}

/** Waits until `count` emails to `address` are in the emulator (for sends finishing in the background). */
export async function waitForEmails(address: string, count: number): Promise<StoredEmail[]> {
  return waitFor(
    `${count} email(s) to ${address}`,
    async () => {
      const emails = await emailsTo(address);
      return emails.length >= count ? emails : undefined;
    },
    { timeoutMs: 10_000, intervalMs: 50 },
  );
}

export function header(email: StoredEmail, name: string): string | undefined {
  return email.headers?.find((candidate) => candidate.name.toLowerCase() === name.toLowerCase())?.value;
}

/** An SESv2Client for the emulator (or a proxy in front of it), as an app would build it. */
export function emulatorSesClient(endpoint = env('SES_ENDPOINT')): SESv2Client {
  return new SESv2Client({
    region: env('AWS_REGION'),
    endpoint,
    credentials: { accessKeyId: env('AWS_ACCESS_KEY_ID'), secretAccessKey: env('AWS_SECRET_ACCESS_KEY') },
    maxAttempts: 1,
  });
}

/** `MailModuleOptions.ses` config for the emulator (or a proxy in front of it). */
export function emulatorSesConfig(endpoint = env('SES_ENDPOINT'), requestTimeoutMs?: number) {
  return {
    region: env('AWS_REGION'),
    endpoint,
    credentials: { accessKeyId: env('AWS_ACCESS_KEY_ID'), secretAccessKey: env('AWS_SECRET_ACCESS_KEY') },
    requestTimeoutMs,
  };
}

const TEST_REDIS = Symbol('TEST_REDIS');
class TestRedisModule {}

export interface MailTestApp {
  app: INestApplication;
  redis: Redis;
  dataSource: DataSource;
  close(): Promise<void>;
}

/**
 * A Nest app with real Postgres (migrations run), Redis and the SES emulator, like the apps wire
 * it. `options` override the defaults; `redisKeyPrefix` defaults to a fresh one per app.
 * `redisUrl` names another Redis (a test's own server, to kill): its errors are expected then, and
 * closing does not wait for it to answer.
 */
export async function createMailTestApp(
  options: Partial<Omit<MailModuleOptions, 'redis'>> = {},
  metadata: Pick<ModuleMetadata, 'controllers' | 'providers'> = {},
  { redisUrl }: { redisUrl?: string } = {},
): Promise<MailTestApp> {
  Logger.overrideLogger(['error']);
  const redis = new Redis(redisUrl ?? env('REDIS_URL'), { maxRetriesPerRequest: 3 });
  if (redisUrl) redis.on('error', () => undefined);
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
      // forRootAsync, the way apps wire it with the platform's REDIS_CLIENT.
      MailModule.forRootAsync({
        imports: [
          {
            module: TestRedisModule,
            providers: [{ provide: TEST_REDIS, useValue: redis }],
            exports: [TEST_REDIS],
          },
        ],
        inject: [TEST_REDIS],
        useFactory: (client: Redis) => ({
          ses: emulatorSesConfig(),
          redisKeyPrefix: `${env('REDIS_KEY_PREFIX')}mail:${randomUUID().slice(0, 8)}:`,
          defaultFrom: 'Once <digest@once.example>',
          rateLimit: { maxSendRate: 500, burst: 50, perRecipient: false },
          ...options,
          redis: client,
        }),
      }),
    ],
    ...metadata,
  }).compile();
  const app = moduleRef.createNestApplication();
  await app.init();
  return {
    app,
    redis,
    dataSource: app.get(DataSource),
    async close() {
      await app.close();
      if (redisUrl) redis.disconnect();
      else await redis.quit();
    },
  };
}

/**
 * A transaction holding the exclusive address lock of `key`, as a suppression in progress does;
 * added to `holders` so the suite can release what a failed test left open.
 */
export async function holdAddressLock(
  dataSource: DataSource,
  key: string,
  holders: QueryRunner[],
): Promise<QueryRunner> {
  const holder = dataSource.createQueryRunner();
  holders.push(holder);
  await holder.startTransaction();
  await holder.query('SELECT pg_advisory_xact_lock($1, hashtext($2))::text', [ADDRESS_LOCK_CLASS, key]);
  return holder;
}
