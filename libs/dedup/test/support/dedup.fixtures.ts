import { SQSClient } from '@aws-sdk/client-sqs';
import { ConsoleLogger, Logger, type LoggerService, type Provider } from '@nestjs/common';
import { Test, type TestingModule } from '@nestjs/testing';
import { SqsModule, SqsService } from '@ssut/nestjs-sqs';
import { DedupModule, type DedupModuleOptions, type DedupStoreMode, type OnStoreDown } from '../../src';
import { DEDUP_ENTITIES, DEDUP_MIGRATIONS } from '../../src/typeorm';
import { decodeRedisRecord } from '../../src/lib/stores/redis-record.codec';
import { messagesLeft, readQueueDepth } from '../../src/sqs';
import { createTestQueue } from '@once/testing';
import Redis, { type Cluster } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';

type SqsOptions = Parameters<typeof SqsModule.register>[0];

const noop = () => undefined;

/** Nest logs stay quiet unless DEDUP_E2E_LOGS is set. */
const testLogger = (): LoggerService =>
  process.env.DEDUP_E2E_LOGS ? new ConsoleLogger() : { log: noop, error: noop, warn: noop };

export function quietLogs(): void {
  Logger.overrideLogger(testLogger());
}

/** A DataSource on the run's fresh database, dedup migrations applied. */
export async function openDataSource(): Promise<DataSource> {
  const dataSource = new DataSource({
    type: 'postgres',
    url: process.env.DATABASE_URL,
    entities: DEDUP_ENTITIES,
    migrations: DEDUP_MIGRATIONS,
    synchronize: false,
    extra: { max: 20 },
  });
  await dataSource.initialize();
  await dataSource.runMigrations();
  return dataSource;
}

export function openRedis(): Redis {
  return new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
}

/** A Redis client pointed at a port nothing listens on: commands fail fast. */
export function deadRedis(): Redis {
  return new Redis({
    host: '127.0.0.1',
    port: 1,
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    disconnectTimeout: 10,
  });
}

/** A key prefix of its own under the run's REDIS_KEY_PREFIX, so tests never see each other's keys. */
export function uniquePrefix(label: string): string {
  return `${process.env.REDIS_KEY_PREFIX ?? 'once:test:'}${label}:${randomUUID().slice(0, 8)}:`;
}

export function storeOptions(
  store: DedupStoreMode,
  connections: { redis: Redis; dataSource: DataSource },
  extra: Partial<DedupModuleOptions> = {},
): DedupModuleOptions {
  return {
    store,
    redis: store === 'postgres' ? undefined : connections.redis,
    dataSource: store === 'redis' ? undefined : connections.dataSource,
    keyPrefix: uniquePrefix(store.replace('+', '-')),
    // Completed records outlive the tests that need them, not the day: the shared Redis stays small.
    ttlMs: 120_000,
    ...extra,
  } as DedupModuleOptions;
}

/** Options of a store chosen at run time: DedupModule validates them at boot, as it does a JS caller's. */
type AnyStoreOptions = Omit<DedupModuleOptions, 'store' | 'redis' | 'dataSource' | 'onStoreDown'> & {
  store: DedupStoreMode;
  redis?: Redis | Cluster;
  dataSource?: DataSource;
  onStoreDown?: OnStoreDown;
};

/** A compiled and initialised testing module with DedupModule (and, if given, SqsModule consumers). */
export async function startModule(
  dedup: AnyStoreOptions,
  providers: Provider[] = [],
  sqs?: SqsOptions,
): Promise<TestingModule> {
  const moduleRef = await Test.createTestingModule({
    imports: [DedupModule.forRoot(dedup as DedupModuleOptions), ...(sqs ? [SqsModule.register(sqs)] : [])],
    providers,
  })
    .setLogger(testLogger())
    .compile();
  await moduleRef.init();
  if (sqs) {
    // A stopped consumer's last long poll may still fail (e.g. the emulator stopping): keep it from crashing the run.
    for (const { instance } of moduleRef.get(SqsService).consumers.values())
      instance.on('error', () => undefined);
  }
  return moduleRef;
}

/** Closes a module and waits until its consumers' last long polls have returned. */
export async function closeModule(moduleRef: TestingModule): Promise<void> {
  const consumers = [...moduleRef.get(SqsService, { strict: false }).consumers.values()].map(
    (c) => c.instance,
  );
  await moduleRef.close();
  await eventually(
    'consumers stopped polling',
    () => consumers.every((consumer) => !consumer.status.isPolling),
    5000,
  );
}

export const localSqs = (): SQSClient =>
  new SQSClient({
    region: process.env.AWS_REGION ?? 'us-east-1',
    endpoint: process.env.SQS_ENDPOINT,
    credentials: {
      accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'local',
      secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'local',
    },
  });

/** A fresh queue with its own DLQ (maxReceiveCount 3), for one test. */
export async function createQueue(
  sqs: SQSClient,
  label: string,
  visibilityTimeout = 5,
): Promise<{ url: string; dlqUrl: string }> {
  return createTestQueue(sqs, `dedup-${label}-${randomUUID().slice(0, 8)}`, { visibilityTimeout });
}

/** Consumer options for fast tests: short polls, aborted on shutdown. */
export const consumerDefaults = (sqs: SQSClient) => ({
  sqs,
  waitTimeSeconds: 1,
  pollingWaitTimeMs: 0,
  messageSystemAttributeNames: ['ApproximateReceiveCount' as const],
  messageAttributeNames: ['All'],
});

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `check` until it returns true or `timeoutMs` passes; then fails with `what`. */
export async function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await sleep(100);
  }
}

/** Approximate visible + in-flight messages of a queue. */
export async function queueDepth(sqs: SQSClient, url: string): Promise<number> {
  return messagesLeft(await readQueueDepth(sqs, url), { withDelayed: false });
}

/** The state of the dedup record Redis holds at `key` (today's string format or an older hash), or null. */
export async function redisRecordState(redis: Redis, key: string): Promise<string | null> {
  if ((await redis.type(key)) === 'hash') return redis.hget(key, 'state');
  const raw = await redis.get(key);
  return raw === null ? null : (decodeRedisRecord(raw)?.state ?? `unreadable: ${raw}`);
}
