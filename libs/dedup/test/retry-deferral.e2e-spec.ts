import { type Message, ReceiveMessageCommand, SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { Idempotent, RetryAfterError } from '../src';
import { messagesLeft, readQueueDepth, RETRY_DEFERRALS_ATTRIBUTE } from '../src/sqs';
import {
  closeModule,
  consumerDefaults,
  createQueue,
  eventually,
  localSqs,
  openDataSource,
  openRedis,
  quietLogs,
  startModule,
  storeOptions,
} from './support/dedup.fixtures';

/**
 * A handler that asks to come back later (`RetryAfterError` with `retryAfterMs`) spends no receive
 * of the redrive policy (maxReceiveCount 3 here) for its first `maxRetryDeferrals` retries, and is
 * never retried forever: past them each retry spends a receive, and SQS redrive ends it in the DLQ.
 */
const MAX_RETRY_DEFERRALS = 3;
const MAX_RECEIVE_COUNT = 3;

const calls = new Map<string, { messageId?: string; retryDeferrals?: string; receiveCount?: string }[]>();
/** Keys whose handler succeeds on this call (1-based); others always ask to retry. */
const succeedOn = new Map<string, number>();

@Injectable()
class AskingConsumer {
  @SqsMessageHandler('retry-deferral', false)
  @Idempotent({ scope: 'retry-deferral', leaseMs: 2000 })
  async handle(message: Message): Promise<void> {
    const { eventId } = JSON.parse(message.Body ?? '{}') as { eventId: string };
    const seen = calls.get(eventId) ?? [];
    seen.push({
      messageId: message.MessageId,
      retryDeferrals: message.MessageAttributes?.[RETRY_DEFERRALS_ATTRIBUTE]?.StringValue,
      receiveCount: message.Attributes?.ApproximateReceiveCount,
    });
    calls.set(eventId, seen);
    if (seen.length === succeedOn.get(eventId)) return;
    throw new RetryAfterError('the downstream is down', 200);
  }
}

describe('RetryAfterError retries are bounded by maxRetryDeferrals, then by the redrive policy (fauxqs)', () => {
  let sqs: SQSClient;
  let redis: Redis;
  let dataSource: DataSource;
  let moduleRef: TestingModule | undefined;

  beforeAll(async () => {
    quietLogs();
    sqs = localSqs();
    redis = openRedis();
    dataSource = await openDataSource();
  });

  afterEach(async () => {
    if (moduleRef) await closeModule(moduleRef);
    moduleRef = undefined;
  });

  afterAll(async () => {
    sqs.destroy();
    await redis.quit();
    await dataSource.destroy();
  });

  it('a message that recovers within its deferrals runs once more and is never near the DLQ; one that never does ends there', async () => {
    const queue = await createQueue(sqs, 'retry-deferral', 1);
    const recovers = `k-${randomUUID()}`;
    const never = `k-${randomUUID()}`;
    succeedOn.set(recovers, MAX_RETRY_DEFERRALS + 1);
    for (const eventId of [recovers, never])
      await sqs.send(
        new SendMessageCommand({ QueueUrl: queue.url, MessageBody: JSON.stringify({ eventId }) }),
      );

    moduleRef = await startModule(
      storeOptions('redis+postgres', { redis, dataSource }, { maxRetryDeferrals: MAX_RETRY_DEFERRALS }),
      [AskingConsumer],
      { consumers: [{ name: 'retry-deferral', queueUrl: queue.url, ...consumerDefaults(sqs) }] },
    );

    const limit = MAX_RETRY_DEFERRALS + MAX_RECEIVE_COUNT;
    await eventually(
      'the recovering key succeeded',
      () => (calls.get(recovers)?.length ?? 0) === MAX_RETRY_DEFERRALS + 1,
      20_000,
    );
    await eventually(
      'the asking key was dead-lettered',
      async () => (await messagesIn(queue.dlqUrl)) === 1,
      30_000,
    );
    await eventually('the queue drained', async () => (await messagesIn(queue.url)) === 0, 10_000);

    // Recovering: every retry came back as a copy at receive 1, counting 1, 2, 3.
    const recovered = calls.get(recovers) ?? [];
    expect(recovered.map((call) => call.receiveCount)).toEqual(['1', '1', '1', '1']);
    expect(recovered.map((call) => call.retryDeferrals)).toEqual([undefined, '1', '2', '3']);
    expect(new Set(recovered.map((call) => call.messageId)).size).toBe(4);

    // Never recovering: 3 deferrals by copy, then maxReceiveCount receives of the last copy, then the DLQ.
    const asked = calls.get(never) ?? [];
    expect(asked.map((call) => call.retryDeferrals)).toEqual([undefined, '1', '2', '3', '3', '3']);
    expect(asked.map((call) => call.receiveCount)).toEqual(['1', '1', '1', '1', '2', '3']);
    expect(asked).toHaveLength(limit);
    const { Messages: letters } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.dlqUrl, MessageAttributeNames: ['All'] }),
    );
    expect(letters?.map((letter) => JSON.parse(letter.Body ?? '{}').eventId)).toEqual([never]);
    expect(letters?.[0]?.MessageAttributes?.[RETRY_DEFERRALS_ATTRIBUTE]?.StringValue).toBe('3');
  }, 60_000);

  async function messagesIn(url: string): Promise<number> {
    return messagesLeft(await readQueueDepth(sqs, url));
  }
});
