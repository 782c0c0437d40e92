import {
  ChangeMessageVisibilityCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import type { TestingModule } from '@nestjs/testing';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import type Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { Idempotent, type DedupMetricEvent, type DedupStoreMode } from '../../src';
import { messagesLeft, readQueueDepth } from '../../src/sqs';
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
} from './dedup.fixtures';

/**
 * Issue #10 item 7: an in-flight duplicate must not burn its receives while the holder runs. The
 * holder outlives its lease ~8 times (the heartbeat keeps lease and visibility); meanwhile a
 * redelivered duplicate, producer duplicates and a redelivery of the holder's own message arrive.
 * The queue's maxReceiveCount is 3: deferring by visibility alone sends them to the DLQ.
 */
const LEASE_MS = 1000;
const HOLD_MS = 8 * LEASE_MS;
const VISIBILITY_SECONDS = 2;

interface Run {
  mode: 'complete' | 'fail';
  attempts: number;
  effects: number;
  holderMessageId?: string;
  /** The producer's attribute on every message a handler attempt got (copies must keep it). */
  traces: (string | undefined)[];
}
const run: Run = { mode: 'complete', attempts: 0, effects: 0, traces: [] };
let sqs: SQSClient;
let queueUrl = '';

async function work(messages: readonly Message[]): Promise<void> {
  run.attempts += 1;
  run.traces.push(...messages.map((message) => message.MessageAttributes?.['trace']?.StringValue));
  if (run.attempts === 1) {
    const [own] = messages;
    run.holderMessageId = own?.MessageId;
    await sleep(HOLD_MS / 4);
    // A missed heartbeat: the holder's own message becomes visible and is redelivered while it runs.
    await sqs
      .send(
        new ChangeMessageVisibilityCommand({
          QueueUrl: queueUrl,
          ReceiptHandle: own?.ReceiptHandle,
          VisibilityTimeout: 0,
        }),
      )
      .catch(() => undefined);
    await sleep((HOLD_MS * 3) / 4);
    if (run.mode === 'fail') throw new Error('holder failed after a long run');
  }
  run.effects += 1;
}

@Injectable()
class SingleConsumers {
  @SqsMessageHandler('single-a', false)
  @Idempotent({ scope: 'deferral-single', leaseMs: LEASE_MS })
  async onA(message: Message): Promise<void> {
    await work([message]);
  }

  @SqsMessageHandler('single-b', false)
  @Idempotent({ scope: 'deferral-single', leaseMs: LEASE_MS })
  async onB(message: Message): Promise<void> {
    await work([message]);
  }
}

@Injectable()
class BatchConsumers {
  @SqsMessageHandler('batch-a', true)
  @Idempotent({ scope: 'deferral-batch', leaseMs: LEASE_MS })
  async onA(messages: Message[]): Promise<void> {
    await work(messages);
  }

  @SqsMessageHandler('batch-b', true)
  @Idempotent({ scope: 'deferral-batch', leaseMs: LEASE_MS })
  async onB(messages: Message[]): Promise<void> {
    await work(messages);
  }
}

/** Visible, in flight and delayed (re-sent copies wait out their DelaySeconds). */
async function messagesIn(url: string): Promise<number> {
  return messagesLeft(await readQueueDepth(sqs, url));
}

/** The scenario for one handler kind (a file each, to keep each file well under a minute). */
export function describeInFlightDeferral(kind: 'single' | 'batch'): void {
  describe(`in-flight duplicates of a long-running holder never reach the DLQ (${kind} handler, fauxqs, maxReceiveCount 3)`, () => {
    let redis: Redis;
    let dataSource: DataSource;
    const modules: TestingModule[] = [];

    beforeAll(async () => {
      quietLogs();
      sqs = localSqs();
      redis = openRedis();
      dataSource = await openDataSource();
    });

    afterEach(async () => {
      for (const moduleRef of modules.splice(0)) await closeModule(moduleRef);
    });

    afterAll(async () => {
      sqs.destroy();
      await redis.quit();
      await dataSource.destroy();
    });

    const cases: [DedupStoreMode, Run['mode']][] =
      kind === 'single'
        ? [
            ['redis', 'complete'],
            ['redis+postgres', 'fail'],
          ]
        : [
            ['redis+postgres', 'complete'],
            ['redis', 'fail'],
          ];

    it.each(cases)(
      '%s store, holder that ends with %s: one effect, nothing dead-lettered, queue drained',
      async (store, mode) => {
        const batch = kind === 'batch';
        Object.assign(run, { mode, attempts: 0, effects: 0, holderMessageId: undefined, traces: [] });
        const queue = await createQueue(sqs, `deferral-${kind}`, VISIBILITY_SECONDS);
        queueUrl = queue.url;
        const body = JSON.stringify({ eventId: `k-${randomUUID()}` });
        const produced = new Set<string>();
        const send = async () => {
          const { MessageId } = await sqs.send(
            new SendMessageCommand({
              QueueUrl: queue.url,
              MessageBody: body,
              MessageAttributes: { trace: { DataType: 'String', StringValue: 'trace-1' } },
            }),
          );
          if (MessageId) produced.add(MessageId);
        };

        // A duplicate a crashed consumer received and dropped: it comes back as a redelivery (count 2).
        await send();
        const { Messages: dropped } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queue.url, VisibilityTimeout: VISIBILITY_SECONDS }),
        );
        expect(dropped).toHaveLength(1);
        await send(); // the holder's message

        const events: DedupMetricEvent[] = [];
        const moduleRef = await startModule(
          storeOptions(store, { redis, dataSource }, { metricsListener: (event) => events.push(event) }),
          [batch ? BatchConsumers : SingleConsumers],
          {
            consumers: ['a', 'b'].map((suffix) => ({
              name: `${kind}-${suffix}`,
              queueUrl: queue.url,
              ...consumerDefaults(sqs),
              ...(batch ? { batchSize: 10 } : {}),
            })),
          },
        );
        modules.push(moduleRef);

        await eventually('holder started', () => run.attempts === 1, 5000);
        // Producer duplicates while the holder runs.
        const started = Date.now();
        for (const at of [300, 1500, 3000, 5000]) {
          await sleep(at - (Date.now() - started));
          await send();
        }
        await eventually(
          'holder done and duplicates drained',
          async () => run.effects === 1,
          HOLD_MS + 10_000,
        );
        await eventually('queue drained', async () => (await messagesIn(queue.url)) === 0, 15_000);

        const inFlight = events.filter((event) => event.counter === 'duplicate-in-flight');
        expect(run.effects).toBe(1);
        expect(run.attempts).toBe(mode === 'fail' ? 2 : 1);
        // More in-flight turn-aways than maxReceiveCount allows receives: deferrals did not count.
        expect(inFlight.length).toBeGreaterThan(3);
        expect(events.some((event) => event.counter === 'stale-token')).toBe(false);
        // Deferred duplicates came back as copies (MessageIds no producer sent), counted as redeliveries.
        const turnedAway = events.filter((event) => event.counter.startsWith('duplicate-'));
        const copies = turnedAway.filter((event) => event.messageId && !produced.has(event.messageId));
        expect(copies.length).toBeGreaterThan(0);
        expect(copies.every((event) => event.cause === 'redelivery')).toBe(true);
        expect(turnedAway.find((event) => event.messageId === dropped?.[0]?.MessageId)?.cause).toBe(
          'redelivery',
        );
        // The holder's own message, redelivered while it ran, was turned away too (and not lost).
        expect(turnedAway.find((event) => event.messageId === run.holderMessageId)?.cause).toBe('redelivery');
        expect(run.traces.length).toBeGreaterThan(0);
        expect(run.traces.every((trace) => trace === 'trace-1')).toBe(true);
        if (process.env.DEDUP_E2E_LOGS)
          console.log(kind, store, mode, {
            holder: run.holderMessageId,
            turnedAway,
            produced: [...produced],
          });
        expect(await messagesIn(queue.dlqUrl)).toBe(0);
        const { Messages: deadLettered } = await sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queue.dlqUrl, WaitTimeSeconds: 0 }),
        );
        expect(deadLettered ?? []).toHaveLength(0);
      },
      45_000,
    );
  });
}
