import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import type { INestApplicationContext } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { RETRY_DEFERRALS_ATTRIBUTE } from '@once/dedup/sqs';
import { createTestQueue, LogLines, sendJson, testSqsClient, waitFor } from '@once/testing';
import { randomUUID } from 'node:crypto';
import type { DataSource } from 'typeorm';
import { bootstrap } from '../src/bootstrap';

/**
 * A send the rate limiter refuses (the recipient's hourly cap is used up) fails retryable, and the
 * batch consumer defers the message by a counted delayed copy (`retryLater`) instead of letting its
 * receives run out. With a redrive policy of 3 receives, a fourth try proves no receive was spent
 * on the waits.
 */
describe('worker: a send that must wait (rate limited) waits without spending receives', () => {
  const sqs = testSqsClient();
  const logs = new LogLines();
  const run = randomUUID().slice(0, 8);
  let worker: INestApplicationContext | undefined;

  afterAll(async () => {
    await worker?.close();
    sqs.destroy();
  });

  it('retries past maxReceiveCount by copies that count their deferrals; nothing reaches the DLQ', async () => {
    const [email, jobs] = await Promise.all([
      createTestQueue(sqs, `once-send-email-retry-${run}`, { maxReceiveCount: 3 }),
      createTestQueue(sqs, `once-jobs-retry-${run}`),
    ]);
    worker = await bootstrap({
      logDestination: logs,
      env: {
        DATABASE_MIGRATE_ON_BOOT: 'true',
        SQS_WAIT_TIME_SECONDS: '1',
        OPS_PORT: '0',
        LOG_LEVEL: 'warn',
        LOG_PRETTY: 'false',
        ADMIN_EMAILS: '',
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}send-retry-${run}:`,
        SQS_EMAIL_QUEUE: email.url,
        SQS_JOBS_QUEUE: jobs.url,
        // The first email uses the recipient's cap up; the second is refused its slot (retryable).
        MAIL_PER_RECIPIENT_PER_HOUR: '1',
      },
    });
    const to = `retry-${run}@example.com`;
    await sendJson(sqs, email.url, { eventId: `first:${run}`, to, subject: 'S', text: 'T' });
    const ledgerRow = async (key: string) =>
      (
        await worker!
          .get<DataSource>(getDataSourceToken())
          .query(`SELECT status, retryable FROM mail_ledger WHERE idempotency_key = $1`, [key])
      )[0] as { status: string; retryable: boolean | null } | undefined;
    await waitFor('the first email to be sent', async () =>
      (await ledgerRow(`first:${run}`))?.status === 'sent' ? true : undefined,
    );
    const eventId = `retry:${run}`;
    await sendJson(sqs, email.url, { eventId, to, subject: 'S', text: 'T' });

    const retries = () =>
      logs.lines.filter((line) => line.includes('message left for redelivery') && line.includes(eventId));
    await waitFor('four tries of the send', () => (retries().length >= 4 ? true : undefined), {
      timeoutMs: 40_000,
    });
    expect(await ledgerRow(eventId)).toEqual({ status: 'failed', retryable: true });
    await worker.close();
    worker = undefined;

    // The message still on the queue is a copy: received at most once, counting its deferrals.
    const copy = await waitFor(
      'the deferred copy',
      async () => {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: email.url,
            WaitTimeSeconds: 1,
            MessageAttributeNames: ['All'],
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
          }),
        );
        return Messages?.[0];
      },
      { timeoutMs: 40_000 },
    );
    expect(Number(copy.MessageAttributes?.[RETRY_DEFERRALS_ATTRIBUTE]?.StringValue)).toBeGreaterThanOrEqual(
      3,
    );
    expect(Number(copy.Attributes?.ApproximateReceiveCount)).toBeLessThanOrEqual(2);
    const { Messages: dead } = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: email.dlqUrl, WaitTimeSeconds: 1 }),
    );
    expect(dead ?? []).toEqual([]);
  }, 90_000);
});
