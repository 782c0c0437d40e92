import {
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import {
  DEAD_LETTER_ATTRIBUTES,
  DedupMetrics,
  Idempotent,
  IdempotencyService,
  type DedupStoreMode,
} from '../src';
import {
  closeModule,
  consumerDefaults,
  createQueue,
  eventually,
  localSqs,
  openDataSource,
  openRedis,
  queueDepth,
  quietLogs,
  startModule,
  storeOptions,
} from './support/dedup.fixtures';

const handled: string[] = [];
const bodyOf = (message: Message) => message.Body ?? '';

@Injectable()
class StrictSingle {
  @SqsMessageHandler('fp-single', false)
  @Idempotent({ scope: 'fp-single', onPayloadMismatch: 'dead-letter' })
  async handle(message: Message): Promise<void> {
    handled.push(`single:${bodyOf(message)}`);
  }
}

@Injectable()
class StrictBatch {
  @SqsMessageHandler('fp-batch', true)
  @Idempotent({ scope: 'fp-batch', onPayloadMismatch: 'dead-letter' })
  async handle(messages: Message[]): Promise<void> {
    handled.push(...messages.map((message) => `batch:${bodyOf(message)}`));
  }
}

@Injectable()
class LenientSingle {
  @SqsMessageHandler('fp-warn', false)
  @Idempotent({ scope: 'fp-warn' })
  async handle(message: Message): Promise<void> {
    handled.push(`warn:${bodyOf(message)}`);
  }
}

describe.each(['redis', 'redis+postgres'] as DedupStoreMode[])(
  'payload fingerprint on SQS handlers (%s, real fauxqs)',
  (store) => {
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

    const send = (url: string, body: object) =>
      sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: JSON.stringify(body) }));

    const drainDlq = async (dlqUrl: string): Promise<Message[]> => {
      const got: Message[] = [];
      for (let i = 0; i < 5; i++) {
        const { Messages = [] } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: dlqUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            MessageAttributeNames: ['All'],
          }),
        );
        got.push(...Messages);
        if (Messages.length === 0 && got.length > 0) break;
      }
      return got;
    };

    it("dead-letters a reused eventId with another body under 'dead-letter' (single and batch); the effect ran once", async () => {
      const [single, batch] = await Promise.all([
        createQueue(sqs, 'fp-single'),
        createQueue(sqs, 'fp-batch'),
      ]);
      handled.length = 0;
      moduleRef = await startModule(storeOptions(store, { redis, dataSource }), [StrictSingle, StrictBatch], {
        consumers: [
          { name: 'fp-single', queueUrl: single.url, ...consumerDefaults(sqs) },
          { name: 'fp-batch', queueUrl: batch.url, ...consumerDefaults(sqs), batchSize: 10 },
        ],
      });
      const eventId = `order-${store}`;
      await Promise.all([send(single.url, { eventId, amount: 1 }), send(batch.url, { eventId, amount: 1 })]);
      await eventually('first deliveries handled', () => handled.length === 2, 20_000);
      // A true duplicate (same body) and a reused id (other body).
      for (const url of [single.url, batch.url]) {
        await send(url, { eventId, amount: 1 });
        await send(url, { eventId, amount: 2 });
      }
      await eventually(
        'queues drained',
        async () => (await queueDepth(sqs, single.url)) + (await queueDepth(sqs, batch.url)) === 0,
        30_000,
      );

      expect(handled.sort()).toEqual(
        [
          `batch:${JSON.stringify({ eventId, amount: 1 })}`,
          `single:${JSON.stringify({ eventId, amount: 1 })}`,
        ].sort(),
      );
      for (const dlqUrl of [single.dlqUrl, batch.dlqUrl]) {
        const dead = await drainDlq(dlqUrl);
        expect(dead.map(bodyOf)).toEqual([JSON.stringify({ eventId, amount: 2 })]);
        expect(dead[0]?.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.reason]?.StringValue).toMatch(
          /^PayloadMismatchError: .*used before for a different payload/,
        );
      }
      expect(moduleRef.get(DedupMetrics).snapshot()['payload-mismatch']).toBe(2);
      const record = await moduleRef.get(IdempotencyService).get(eventId, { scope: 'fp-single' });
      expect(record?.payloadHash).toMatch(/^[A-Za-z0-9_-]{22}$/);
    });

    it('dead-letters an in-batch repeat of a key with another body than its leader', async () => {
      const batch = await createQueue(sqs, 'fp-batch-stray');
      const eventId = `stray-${store}`;
      const bodies = [
        { eventId, amount: 1 },
        { eventId, amount: 2 },
      ].map((body) => JSON.stringify(body));
      await sqs.send(
        new SendMessageBatchCommand({
          QueueUrl: batch.url,
          Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body })),
        }),
      );
      handled.length = 0;
      moduleRef = await startModule(storeOptions(store, { redis, dataSource }), [StrictBatch], {
        consumers: [{ name: 'fp-batch', queueUrl: batch.url, ...consumerDefaults(sqs), batchSize: 10 }],
      });
      await eventually('queue drained', async () => (await queueDepth(sqs, batch.url)) === 0, 30_000);

      const dead = await drainDlq(batch.dlqUrl);
      expect(handled).toHaveLength(1);
      expect(dead).toHaveLength(1);
      expect([...handled.map((entry) => entry.replace(/^batch:/, '')), ...dead.map(bodyOf)].sort()).toEqual(
        [...bodies].sort(),
      );
      expect(moduleRef.get(DedupMetrics).snapshot()['payload-mismatch']).toBe(1);
    });

    it('counts and deletes it as a duplicate by default (warn)', async () => {
      const queue = await createQueue(sqs, 'fp-warn');
      handled.length = 0;
      moduleRef = await startModule(storeOptions(store, { redis, dataSource }), [LenientSingle], {
        consumers: [{ name: 'fp-warn', queueUrl: queue.url, ...consumerDefaults(sqs) }],
      });
      const eventId = `lenient-${store}`;
      await send(queue.url, { eventId, amount: 1 });
      await eventually('first delivery handled', () => handled.length === 1, 20_000);
      await send(queue.url, { eventId, amount: 2 });
      await eventually('queue drained', async () => (await queueDepth(sqs, queue.url)) === 0, 20_000);

      expect(handled).toEqual([`warn:${JSON.stringify({ eventId, amount: 1 })}`]);
      expect(await drainDlq(queue.dlqUrl)).toEqual([]);
      expect(moduleRef.get(DedupMetrics).snapshot()).toMatchObject({
        'payload-mismatch': 1,
        'duplicate-completed': 1,
      });
    });
  },
);
