import {
  ChangeMessageVisibilityCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import type Redis from 'ioredis';
import type { DataSource } from 'typeorm';
import { DedupMetrics, Idempotent, type DedupModuleOptions } from '../src';
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
  sleep,
  startModule,
  storeOptions,
} from './support/dedup.fixtures';

/** Side effects performed by the handlers below, by eventId (reset per test). */
const effects = new Map<string, number>();
const calls: string[] = [];
const eventIdOf = (message: Message) => (JSON.parse(message.Body ?? '{}') as { eventId: string }).eventId;
const effect = (message: Message) => {
  const id = eventIdOf(message);
  effects.set(id, (effects.get(id) ?? 0) + 1);
};

@Injectable()
class AboveHandler {
  @Idempotent({ scope: 'above' })
  @SqsMessageHandler('above', false)
  async handle(message: Message): Promise<void> {
    calls.push(`above:${eventIdOf(message)}`);
    effect(message);
  }
}

@Injectable()
class BelowHandler {
  @SqsMessageHandler('below', false)
  @Idempotent({ scope: 'below' })
  async handle(message: Message): Promise<void> {
    calls.push(`below:${eventIdOf(message)}`);
    effect(message);
  }
}

@Injectable()
class FlakyHandler {
  @SqsMessageHandler('flaky', false)
  @Idempotent({ scope: 'flaky' })
  async handle(message: Message): Promise<void> {
    calls.push(eventIdOf(message));
    if (calls.length === 1) throw new Error('SES throttled');
    effect(message);
  }
}

@Injectable()
class RaceHandler {
  @SqsMessageHandler('race', false)
  @Idempotent({ scope: 'race', leaseMs: 1000 })
  async handle(message: Message): Promise<void> {
    effect(message);
    await sleep(600);
  }
}

@Injectable()
class SlowHandler {
  @SqsMessageHandler('slow-a', false)
  @Idempotent({ scope: 'slow', leaseMs: 1500 })
  async onA(message: Message): Promise<void> {
    return this.work(message);
  }

  @SqsMessageHandler('slow-b', false)
  @Idempotent({ scope: 'slow', leaseMs: 1500 })
  async onB(message: Message): Promise<void> {
    return this.work(message);
  }

  private async work(message: Message): Promise<void> {
    calls.push(eventIdOf(message));
    effect(message);
    await sleep(4500);
  }
}

describe('@Idempotent on @SqsMessageHandler methods (real SqsModule consumers on fauxqs)', () => {
  let sqs: SQSClient;
  let redis: Redis;
  let dataSource: DataSource;
  const modules: TestingModule[] = [];

  const send = (url: string, eventIds: string[]) =>
    sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: eventIds.map((eventId, i) => ({ Id: String(i), MessageBody: JSON.stringify({ eventId }) })),
      }),
    );
  const start = async (
    dedup: DedupModuleOptions,
    providers: unknown[],
    consumers: Record<string, string>,
    extra = {},
  ) => {
    const moduleRef = await startModule(dedup, providers as never[], {
      consumers: Object.entries(consumers).map(([name, queueUrl]) => ({
        name,
        queueUrl,
        ...consumerDefaults(sqs),
        ...extra,
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
  });

  beforeEach(() => {
    effects.clear();
    calls.length = 0;
  });

  afterEach(async () => {
    for (const moduleRef of modules.splice(0)) await closeModule(moduleRef);
  });

  afterAll(async () => {
    sqs.destroy();
    await redis.quit();
    await dataSource.destroy();
  });

  it('wraps at decoration time, above or below @SqsMessageHandler: duplicates are acknowledged without running', async () => {
    const [above, below] = await Promise.all([createQueue(sqs, 'above'), createQueue(sqs, 'below')]);
    const moduleRef = await start(
      storeOptions('redis+postgres', { redis, dataSource }),
      [AboveHandler, BelowHandler],
      {
        above: above.url,
        below: below.url,
      },
    );

    await Promise.all([send(above.url, ['a1', 'a2']), send(below.url, ['b1', 'b2'])]);
    await eventually('first deliveries handled', () => effects.size === 4);
    await Promise.all([send(above.url, ['a1', 'a2']), send(below.url, ['b1'])]);
    await eventually(
      'duplicates acknowledged',
      async () => (await queueDepth(sqs, above.url)) + (await queueDepth(sqs, below.url)) === 0,
    );

    expect(Object.fromEntries(effects)).toEqual({ a1: 1, a2: 1, b1: 1, b2: 1 });
    expect(calls.sort()).toEqual(['above:a1', 'above:a2', 'below:b1', 'below:b2']);
    expect(moduleRef.get(DedupMetrics).snapshot()).toMatchObject({
      claimed: 4,
      completed: 4,
      'duplicate-completed': 3,
    });
    expect((await queueDepth(sqs, above.dlqUrl)) + (await queueDepth(sqs, below.dlqUrl))).toBe(0);
  });

  it('does not repeat the effect when the worker crashed after it but before the delete', async () => {
    const queue = await createQueue(sqs, 'crash');
    const dedup = storeOptions('redis+postgres', { redis, dataSource });
    await send(queue.url, ['crash-1']);

    // The crashing worker: handles the message, then dies before sqs-consumer deletes it.
    const crashed = await startModule(dedup, [AboveHandler]);
    const { Messages } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queue.url, WaitTimeSeconds: 1 }),
    );
    const [received] = Messages ?? [];
    await crashed.get(AboveHandler).handle(received as Message);
    await crashed.close();
    expect(effects.get('crash-1')).toBe(1);
    // Its visibility timeout runs out: SQS redelivers to a healthy worker.
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queue.url,
        ReceiptHandle: received?.ReceiptHandle,
        VisibilityTimeout: 0,
      }),
    );
    const healthy = await start(dedup, [AboveHandler], { above: queue.url });

    await eventually('redelivery acknowledged', async () => (await queueDepth(sqs, queue.url)) === 0);
    expect(effects.get('crash-1')).toBe(1);
    expect(healthy.get(DedupMetrics).snapshot()).toMatchObject({ claimed: 0, 'duplicate-completed': 1 });
    expect(await queueDepth(sqs, queue.dlqUrl)).toBe(0);
  });

  it('retries a handler that threw, and the retry succeeds', async () => {
    const queue = await createQueue(sqs, 'flaky');
    await send(queue.url, ['f1']);
    const moduleRef = await start(
      storeOptions('postgres', { redis, dataSource }),
      [FlakyHandler],
      { flaky: queue.url },
      { terminateVisibilityTimeout: true },
    );

    await eventually(
      'queue drained',
      async () => effects.get('f1') === 1 && (await queueDepth(sqs, queue.url)) === 0,
    );
    expect(calls).toEqual(['f1', 'f1']);
    expect(moduleRef.get(DedupMetrics).snapshot()).toMatchObject({ claimed: 2, released: 1, completed: 1 });
    expect(await queueDepth(sqs, queue.dlqUrl)).toBe(0);
  });

  it('defers an in-flight duplicate until the first delivery completed, then acknowledges it', async () => {
    const queue = await createQueue(sqs, 'race');
    await send(queue.url, ['r1', 'r1']);
    // batchSize 2: both copies arrive in one receive and are handled concurrently.
    const moduleRef = await start(
      storeOptions('redis+postgres', { redis, dataSource }),
      [RaceHandler],
      { race: queue.url },
      { batchSize: 2 },
    );

    await eventually(
      'in-flight duplicate seen',
      () => moduleRef.get(DedupMetrics).snapshot()['duplicate-in-flight'] === 1,
    );
    // The duplicate waits as a delayed copy (its original acknowledged): it comes back after the lease.
    await eventually(
      'the deferred duplicate came back and was acknowledged',
      async () =>
        moduleRef.get(DedupMetrics).snapshot()['duplicate-completed'] === 1 &&
        (await queueDepth(sqs, queue.url)) === 0,
      20_000,
    );

    expect(effects.get('r1')).toBe(1);
    expect(moduleRef.get(DedupMetrics).snapshot()).toMatchObject({
      claimed: 1,
      completed: 1,
      'duplicate-completed': 1,
    });
    expect(await queueDepth(sqs, queue.dlqUrl)).toBe(0);
  });

  it('extends the lease and the message visibility together while the handler outlives both', async () => {
    const queue = await createQueue(sqs, 'slow', 2);
    await send(queue.url, ['slow-1']);
    // Two consumers on one queue: the idle one would receive the message if it became visible.
    const moduleRef = await start(storeOptions('redis', { redis, dataSource }), [SlowHandler], {
      'slow-a': queue.url,
      'slow-b': queue.url,
    });

    await eventually(
      'handled',
      async () => effects.get('slow-1') === 1 && (await queueDepth(sqs, queue.url)) === 0,
      20_000,
    );
    const snapshot = moduleRef.get(DedupMetrics).snapshot();
    expect(calls).toEqual(['slow-1']);
    expect(snapshot['lease-extended']).toBeGreaterThanOrEqual(3);
    expect(snapshot['duplicate-in-flight']).toBe(0);
    expect(snapshot['stale-token']).toBe(0);
    expect(snapshot.completed).toBe(1);
  });
});
