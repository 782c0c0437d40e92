import { type Message, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler, SqsService } from '@ssut/nestjs-sqs';
import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import { DedupMetrics, Idempotent } from '../src';
import {
  closeModule,
  consumerDefaults,
  createQueue,
  eventually,
  localSqs,
  openDataSource,
  openRedis,
  quietLogs,
  sleep,
  startModule,
  storeOptions,
} from './support/dedup.fixtures';

/**
 * Issue #10 item 5: a lease extension that fails (the store is down) must not also stop the
 * visibility extension. Otherwise the message reappears while its handler still runs: another
 * consumer receives it, spends a receive, and, once the store is back and the lease has run out,
 * runs the effect a second time concurrently.
 */
const LEASE_MS = 1000;
const RUN_MS = 5000;
let storeClient: Redis | undefined;
const handled: string[] = [];

@Injectable()
class OutageConsumers {
  @SqsMessageHandler('outage-a', false)
  @Idempotent({ scope: 'heartbeat-outage', leaseMs: LEASE_MS })
  async onA(message: Message): Promise<void> {
    await this.work(message);
  }

  @SqsMessageHandler('outage-b', false)
  @Idempotent({ scope: 'heartbeat-outage', leaseMs: LEASE_MS })
  async onB(message: Message): Promise<void> {
    await this.work(message);
  }

  private async work(message: Message): Promise<void> {
    handled.push(message.MessageId ?? '?');
    if (handled.length > 1) return;
    await sleep(300);
    // The store goes away mid-run: every lease extension fails until it is back.
    storeClient?.disconnect();
    await sleep(RUN_MS - 800);
    await storeClient?.connect().catch(() => undefined);
    await sleep(500);
  }
}

describe('heartbeat: a failed lease extension still extends the visibility (fauxqs, redis store down mid-run)', () => {
  let sqs: SQSClient;
  let dataSource: DataSource;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    quietLogs();
    sqs = localSqs();
    dataSource = await openDataSource();
  });

  afterAll(async () => {
    if (moduleRef) await closeModule(moduleRef);
    await storeClient?.quit().catch(() => undefined);
    sqs.destroy();
    await dataSource.destroy();
  });

  it('keeps the message from every other consumer while its handler runs through the outage', async () => {
    const queue = await createQueue(sqs, 'outage', 2);
    storeClient = openRedis();
    moduleRef = await startModule(
      storeOptions('redis', { redis: storeClient, dataSource }, { redisRetryAfterMs: 100 }),
      [OutageConsumers],
      {
        consumers: ['a', 'b'].map((suffix) => ({
          name: `outage-${suffix}`,
          queueUrl: queue.url,
          ...consumerDefaults(sqs),
        })),
      },
    );
    const received: string[] = [];
    for (const { instance } of moduleRef.get(SqsService).consumers.values())
      instance.on('message_received', (message: Message) => received.push(message.MessageId ?? '?'));

    const { MessageId } = await sqs.send(
      new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify({ eventId: 'outage-1' }) }),
    );
    await eventually('handler started', () => handled.length === 1, 5000);
    await sleep(RUN_MS);

    const snapshot = moduleRef.get(DedupMetrics).snapshot();
    expect(snapshot['store-down']).toBeGreaterThan(0); // the extensions did fail
    expect(received.filter((id) => id === MessageId)).toHaveLength(1);
    expect(handled).toEqual([MessageId]);
  });
});
