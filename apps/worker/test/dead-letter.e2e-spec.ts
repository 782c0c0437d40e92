import type { INestApplicationContext } from '@nestjs/common';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { DEAD_LETTER_ATTRIBUTES } from '@once/dedup/sqs';
import { drain, e2eQueueUrl, testSqsClient, waitFor } from '@once/testing';
import { bootstrap } from '../src/bootstrap';

/**
 * The worker's own dead-letter path (DeadLetterService; with @Idempotent off the dedup lib does not
 * see the message first): a malformed message with SQS's maximum of 10 attributes reaches the DLQ
 * with our reason and sources, and as many of its own attributes as fit.
 */
describe('worker dead-lettering without dedup', () => {
  const sqs = testSqsClient();
  let worker: INestApplicationContext;

  beforeAll(async () => {
    worker = await bootstrap({
      env: {
        DATABASE_MIGRATE_ON_BOOT: 'true',
        SQS_WAIT_TIME_SECONDS: '1',
        OPS_PORT: '0',
        DEDUP_ENABLED: 'false',
      },
    });
  });

  afterAll(async () => {
    await worker?.close();
    sqs.destroy();
  });

  it('keeps the reason and sources of a malformed message with 10 attributes, and 7 of its own', async () => {
    const own = Object.fromEntries(
      Array.from({ length: 10 }, (_, i) => [`attr-${i}`, { DataType: 'String', StringValue: `v${i}` }]),
    );
    const { MessageId } = await sqs.send(
      new SendMessageCommand({
        QueueUrl: e2eQueueUrl('once-send-email'),
        MessageBody: JSON.stringify({ eventId: 'dl-1', to: 'not-an-address' }),
        MessageAttributes: own,
      }),
    );

    const dead = await waitFor('the dead-lettered copy', async () => {
      const messages = await drain(sqs, e2eQueueUrl('once-send-email-dlq'));
      return messages.length ? messages : undefined;
    });

    expect(dead).toHaveLength(1);
    const attributes = dead[0]!.MessageAttributes ?? {};
    expect(Object.keys(attributes)).toHaveLength(10);
    expect(attributes[DEAD_LETTER_ATTRIBUTES.reason]?.StringValue).toMatch(/message body is invalid: .*to/);
    expect(attributes[DEAD_LETTER_ATTRIBUTES.sourceMessageId]?.StringValue).toBe(MessageId);
    expect(attributes[DEAD_LETTER_ATTRIBUTES.sourceQueue]?.StringValue).toBe(e2eQueueUrl('once-send-email'));
    expect(Object.keys(attributes).filter((name) => name.startsWith('attr-'))).toHaveLength(7);
    // The original was deleted, not left to be received again.
    expect(await drain(sqs, e2eQueueUrl('once-send-email'), 1)).toHaveLength(0);
  });
});
