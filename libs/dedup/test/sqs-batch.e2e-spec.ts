import {
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import type Redis from 'ioredis';
import type { DataSource, EntityManager } from 'typeorm';
import {
  DEAD_LETTER_ATTRIBUTES,
  DedupMetrics,
  Idempotent,
  IdempotencyService,
  type DedupModuleOptions,
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

const eventIdOf = (message: Message) =>
  (JSON.parse(message.Body ?? '{}') as { eventId?: string }).eventId ?? '?';
/** Every batch each handler received, as eventIds. */
const batches: string[][] = [];
const effects = new Map<string, number>();
const nacked = new Set<string>();

@Injectable()
class BatchHandler {
  @SqsMessageHandler('batch', true)
  @Idempotent({ scope: 'batch' })
  async handle(messages: Message[]): Promise<Message[]> {
    batches.push(messages.map(eventIdOf));
    const acked: Message[] = [];
    for (const message of messages) {
      const id = eventIdOf(message);
      // The first delivery of a "nack-" message is not acknowledged: partial batch failure.
      if (id.startsWith('nack-') && !nacked.has(id)) {
        nacked.add(id);
        continue;
      }
      effects.set(id, (effects.get(id) ?? 0) + 1);
      acked.push(message);
    }
    return acked;
  }
}

@Injectable()
class TransactionalBatchHandler {
  @Idempotent({ scope: 'batch-tx', transactional: true })
  @SqsMessageHandler('batch-tx', true)
  async handle(messages: Message[], manager: EntityManager): Promise<void> {
    batches.push(messages.map(eventIdOf));
    for (const message of messages) {
      await manager.query('INSERT INTO dedup_e2e_batch_orders (event_id) VALUES ($1)', [eventIdOf(message)]);
    }
  }
}

@Injectable()
class SingleHandler {
  @SqsMessageHandler('single', false)
  @Idempotent({ scope: 'single' })
  async handle(message: Message): Promise<void> {
    batches.push([eventIdOf(message)]);
  }
}

describe('@Idempotent batch handlers and keyless messages (real SqsModule consumers on fauxqs)', () => {
  let sqs: SQSClient;
  let redis: Redis;
  let dataSource: DataSource;
  const modules: TestingModule[] = [];

  const sendBodies = (url: string, bodies: string[]) =>
    sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: bodies.map((body, i) => ({ Id: String(i), MessageBody: body })),
      }),
    );
  const send = (url: string, eventIds: string[]) =>
    sendBodies(
      url,
      eventIds.map((eventId) => JSON.stringify({ eventId })),
    );
  const start = async (
    dedup: DedupModuleOptions,
    providers: unknown[],
    consumers: Record<string, string>,
  ) => {
    const moduleRef = await startModule(dedup, providers as never[], {
      consumers: Object.entries(consumers).map(([name, queueUrl]) => ({
        name,
        queueUrl,
        ...consumerDefaults(sqs),
        batchSize: 10,
      })),
    });
    modules.push(moduleRef);
    return moduleRef;
  };

  beforeAll(async () => {
    quietLogs();
    sqs = localSqs();
    redis = openRedis();
    dataSource = await openDataSource();
    await dataSource.query(
      'CREATE TABLE IF NOT EXISTS dedup_e2e_batch_orders (id serial PRIMARY KEY, event_id text)',
    );
  });

  beforeEach(() => {
    batches.length = 0;
    effects.clear();
    nacked.clear();
  });

  afterEach(async () => {
    for (const moduleRef of modules.splice(0)) await closeModule(moduleRef);
  });

  afterAll(async () => {
    sqs.destroy();
    await redis.quit();
    await dataSource.destroy();
  });

  it('hands only fresh messages to the handler, collapses in-batch duplicates and acknowledges them all', async () => {
    const queue = await createQueue(sqs, 'batch', 1);
    const dedup = storeOptions('redis', { redis, dataSource });
    // Completed earlier (e.g. by another worker).
    const earlier = await startModule(dedup);
    await earlier.get(IdempotencyService).run('done', async () => 'earlier', { scope: 'batch' });
    await earlier.close();

    await send(queue.url, ['e1', 'e2', 'e1', 'e3', 'done', 'e2', 'e1', 'e4', 'done', 'nack-1']);
    const moduleRef = await start(dedup, [BatchHandler], { batch: queue.url });

    await eventually('queue drained', async () => (await queueDepth(sqs, queue.url)) === 0, 15_000);
    expect(Object.fromEntries(effects)).toEqual({ e1: 1, e2: 1, e3: 1, e4: 1, 'nack-1': 1 });
    for (const batch of batches) {
      expect(new Set(batch).size).toBe(batch.length);
      expect(batch).not.toContain('done');
    }
    // nack-1 was handed over twice: released after its partial-batch failure, then redelivered.
    expect(batches.flat().filter((id) => id === 'nack-1')).toHaveLength(2);
    const snapshot = moduleRef.get(DedupMetrics).snapshot();
    expect(snapshot.released).toBe(1);
    expect(snapshot.claimed).toBe(6);
    expect(snapshot.completed).toBe(5);
    expect(await queueDepth(sqs, queue.dlqUrl)).toBe(0);
  });

  it('commits a transactional batch with its processed-event rows, once per key', async () => {
    const queue = await createQueue(sqs, 'batch-tx');
    await send(queue.url, ['t1', 't2', 't1', 't3']);
    await start(storeOptions('postgres', { redis, dataSource }), [TransactionalBatchHandler], {
      'batch-tx': queue.url,
    });
    await eventually('queue drained', async () => (await queueDepth(sqs, queue.url)) === 0);
    await send(queue.url, ['t2', 't3', 't4']);
    await eventually('queue drained again', async () => (await queueDepth(sqs, queue.url)) === 0);

    const rows = (await dataSource.query(
      'SELECT event_id, count(*)::int AS n FROM dedup_e2e_batch_orders GROUP BY event_id ORDER BY event_id',
    )) as { event_id: string; n: number }[];
    expect(rows).toEqual(['t1', 't2', 't3', 't4'].map((event_id) => ({ event_id, n: 1 })));
  });

  it('sends keyless messages to the dead-letter queue without running the handler (single and batch)', async () => {
    const [single, batch] = await Promise.all([
      createQueue(sqs, 'nokey-single'),
      createQueue(sqs, 'nokey-batch'),
    ]);
    const dedup = storeOptions('redis+postgres', { redis, dataSource });
    await sendBodies(single.url, [JSON.stringify({ no: 'eventId' }), JSON.stringify({ eventId: 'k1' })]);
    await sendBodies(batch.url, [
      'not json',
      JSON.stringify({ eventId: 'k2' }),
      JSON.stringify({ eventId: '' }),
    ]);
    const moduleRef = await start(dedup, [SingleHandler, BatchHandler], {
      single: single.url,
      batch: batch.url,
    });

    await eventually(
      'sources drained',
      async () => (await queueDepth(sqs, single.url)) + (await queueDepth(sqs, batch.url)) === 0,
    );
    expect(batches.flat().sort()).toEqual(['k1', 'k2']);
    expect(moduleRef.get(DedupMetrics).snapshot()['missing-key']).toBe(3);

    const receiveDlq = async (url: string) =>
      (
        await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: 10,
            MessageAttributeNames: ['All'],
            WaitTimeSeconds: 1,
          }),
        )
      ).Messages ?? [];
    const [singleDlq, batchDlq] = await Promise.all([receiveDlq(single.dlqUrl), receiveDlq(batch.dlqUrl)]);
    expect(singleDlq.map((m) => m.Body)).toEqual([JSON.stringify({ no: 'eventId' })]);
    expect(batchDlq.map((m) => m.Body).sort()).toEqual(['not json', JSON.stringify({ eventId: '' })].sort());
    for (const message of [...singleDlq, ...batchDlq]) {
      expect(message.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.reason]?.StringValue).toMatch(
        /^MissingIdempotencyKeyError: /,
      );
      expect(message.MessageAttributes?.[DEAD_LETTER_ATTRIBUTES.sourceMessageId]?.StringValue).toBeTruthy();
    }
  });
});
