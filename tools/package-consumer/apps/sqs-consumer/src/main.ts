// A Nest 11 worker built only from the published packages: an @Idempotent @SqsMessageHandler
// consumer on the Redis store. The runner sends three copies of one event before it starts; this
// app drains the queue and prints what happened as one `RESULT {...}` line.
import 'reflect-metadata';
import {
  GetQueueAttributesCommand,
  SQSClient,
  type Message,
  type QueueAttributeName,
} from '@aws-sdk/client-sqs';
import { Injectable, Logger, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { DedupModule, DedupMetrics, Idempotent } from '@once/dedup';
import { SqsQueueOps } from '@once/dedup/sqs';
import { DEDUP_ENTITIES } from '@once/dedup/typeorm';
import { addressKey } from '@once/mail';
import { signLink } from '@once/tracking';
import { SqsConsumerEventHandler, SqsMessageHandler, SqsModule } from '@ssut/nestjs-sqs';
import Redis from 'ioredis';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
};

const queueUrl = env('QUEUE_URL');
const dlqUrl = env('DLQ_URL');
const sqs = new SQSClient({
  region: 'us-east-1',
  endpoint: env('SQS_ENDPOINT'),
  credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
});
const redis = new Redis(env('REDIS_URL'), { maxRetriesPerRequest: 1 });

const effects: string[] = [];
let deliveries = 0;

@Injectable()
class OrderPlacedConsumer {
  @SqsMessageHandler('orders', false)
  @Idempotent({ scope: 'order-placed' })
  async handle(message: Message): Promise<void> {
    const { eventId } = JSON.parse(message.Body ?? '{}') as { eventId: string };
    effects.push(eventId);
  }

  @SqsConsumerEventHandler('orders', 'message_received')
  received(): void {
    deliveries++;
  }
}

@Module({
  imports: [
    DedupModule.forRoot({
      store: 'redis',
      redis,
      keyPrefix: env('KEY_PREFIX'),
      leaseMs: 3000,
      enabled: process.env.DEDUP_ENABLED !== 'false',
    }),
    SqsModule.register({
      consumers: [
        {
          name: 'orders',
          queueUrl,
          sqs,
          waitTimeSeconds: 1,
          pollingWaitTimeMs: 0,
          messageSystemAttributeNames: ['ApproximateReceiveCount'],
          messageAttributeNames: ['All'],
        },
      ],
    }),
  ],
  providers: [OrderPlacedConsumer],
})
class WorkerModule {}

async function depth(url: string): Promise<number> {
  const names: QueueAttributeName[] = [
    'ApproximateNumberOfMessages',
    'ApproximateNumberOfMessagesNotVisible',
    'ApproximateNumberOfMessagesDelayed',
  ];
  const { Attributes = {} } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names }),
  );
  return names.reduce((sum, name) => sum + Number(Attributes[name] ?? 0), 0);
}

async function main(): Promise<void> {
  const app = await NestFactory.createApplicationContext(WorkerModule, { logger: ['error', 'warn'] });
  await app.init();
  // Drained: at least one effect and the queue (visible, in flight, delayed copies) empty on two polls in a row.
  const deadline = Date.now() + 45_000;
  let emptyPolls = 0;
  while (emptyPolls < 2 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 500));
    emptyPolls = effects.length > 0 && (await depth(queueUrl)) === 0 ? emptyPolls + 1 : 0;
  }
  const counters = app.get(DedupMetrics).snapshot();
  const result = {
    drained: emptyPolls >= 2,
    deliveries,
    effects: effects.length,
    dlq: await depth(dlqUrl),
    counters,
    subpaths: {
      sqs: typeof SqsQueueOps === 'function',
      typeorm: DEDUP_ENTITIES.map((entity) => entity.name),
    },
    mail: addressKey('Ada <Ada@Example.COM>'),
    tracking: signLink('secret', { target: '/welcome', campaign: 'c1' }).length,
  };
  await app.close();
  redis.disconnect();
  sqs.destroy();
  console.log(`RESULT ${JSON.stringify(result)}`);
}

main().catch((error: unknown) => {
  new Logger('sqs-consumer').error(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exit(1);
});
