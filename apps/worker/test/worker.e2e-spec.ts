import { INestApplicationContext } from '@nestjs/common';
import { getDataSourceToken } from '@nestjs/typeorm';
import { jobEventId, legacyJobEventId, seedUsers } from '@once/platform';
import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import {
  createTestQueue,
  drain,
  e2eQueueUrl,
  sendJson,
  SesMailbox,
  testSqsClient,
  waitFor,
} from '@once/testing';
import { DataSource } from 'typeorm';
import { OpsHttpServer } from '@once/platform';
import { bootstrap } from '../src/bootstrap';
import { DEAD_LETTER_ATTRIBUTES, IdempotencyService } from '@once/dedup';

describe('worker', () => {
  const sqs = testSqsClient();
  const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
  let worker: INestApplicationContext;

  beforeAll(async () => {
    worker = await bootstrap({
      env: { DATABASE_MIGRATE_ON_BOOT: 'true', SQS_WAIT_TIME_SECONDS: '1', OPS_PORT: '0' },
    });
    await seedUsers(worker.get<DataSource>(getDataSourceToken()), 6);
  });

  afterAll(async () => {
    await worker?.close();
    sqs.destroy();
  });

  it('fans a digest job out to one email per subscribed user', async () => {
    await mailbox.clear();
    const slot = new Date('2026-11-22T07:00:00.000Z');
    await sendJson(sqs, e2eQueueUrl('once-jobs'), {
      eventId: jobEventId('daily-digest', '2026-11-22'),
      job: 'daily-digest',
      slot: slot.toISOString(),
      period: '2026-11-22',
      firedAt: new Date().toISOString(),
    });

    const emails = await waitFor('6 digest emails', async () => {
      const all = await mailbox.all();
      return all.length >= 6 ? all : undefined;
    });
    const recipients = emails.map((email) => email.destination.to[0]).sort();
    expect(recipients).toEqual([1, 2, 3, 4, 5, 6].map((n) => `user${n}@example.com`).sort());
    const first = emails.find((email) => email.destination.to[0] === 'user1@example.com')!;
    expect(first.subject).toBe('Your daily digest for 2026-11-22');
    expect(first.body.text).toContain('Hello User 1,');
    expect(first.body.text).toContain('(ref daily-digest:2026-11-22)');
    expect(first.from).toBe('digest@once.local');
  });

  it('moves a malformed message straight to the dead-letter queue with the reason', async () => {
    const messageId = await sendJson(sqs, e2eQueueUrl('once-send-email'), {
      eventId: 'x',
      to: 'not-an-address',
    });
    const dead = await waitFor('the dead-lettered copy', async () => {
      const messages = await drain(sqs, e2eQueueUrl('once-send-email-dlq'));
      return messages.length ? messages : undefined;
    });
    expect(dead).toHaveLength(1);
    expect(JSON.parse(dead[0].Body!)).toEqual({ eventId: 'x', to: 'not-an-address' });
    const attributes = dead[0].MessageAttributes!;
    expect(attributes[DEAD_LETTER_ATTRIBUTES.sourceMessageId].StringValue).toBe(messageId);
    expect(attributes[DEAD_LETTER_ATTRIBUTES.reason].StringValue).toMatch(/message body is invalid: .*to/);

    // Rejected before any claim: a corrected copy with the same key is processed, not turned away.
    await expect(worker.get(IdempotencyService).get('x', { scope: 'send-email' })).resolves.toBeNull();
    await mailbox.clear();
    await sendJson(sqs, e2eQueueUrl('once-send-email'), {
      eventId: 'x',
      to: 'corrected@example.com',
      subject: 'Corrected',
      text: 'The fixed copy',
    });
    const corrected = await waitFor('the corrected email', async () => {
      const all = await mailbox.all();
      return all.length > 0 ? all : undefined;
    });
    expect(corrected.map((email) => email.destination.to[0])).toEqual(['corrected@example.com']);
  });

  it('serves health and metrics on its ops port', async () => {
    const port = worker.get(OpsHttpServer).port;
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({
      status: 'ok',
      info: { postgres: { status: 'up' }, ses: { status: 'up' } },
    });
    const metrics = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(await metrics.text()).toContain('app="worker"');
  });

  it('sends a message delivered three times exactly once and records it in the ledger', async () => {
    await mailbox.clear();
    const body = {
      eventId: 'digest:2026-11-23T07:00:00.000Z:user:99',
      to: 'twice@example.com',
      subject: 'Only once',
      // No userId: not a fan-out email, so no subscription to check.
      text: 'Hello once',
    };
    await Promise.all([1, 2, 3].map(() => sendJson(sqs, e2eQueueUrl('once-send-email'), body)));
    await waitFor('the email', async () => ((await mailbox.all()).length > 0 ? true : undefined));
    await waitFor('the queue to drain', async () => {
      const [{ depth }] = await worker
        .get<DataSource>(getDataSourceToken())
        .query(
          `SELECT count(*)::int AS depth FROM mail_ledger WHERE idempotency_key = $1 AND status = 'sent'`,
          [body.eventId],
        );
      return depth === 1 ? true : undefined;
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const emails = await mailbox.all();
    expect(emails).toHaveLength(1);
    // A first receive takes the mail ledger's two-commit path: its row was inserted already stamped.
    const [row] = await worker
      .get<DataSource>(getDataSourceToken())
      .query(
        `SELECT ses_called_at = attempt_started_at AS "insertedStamped" FROM mail_ledger WHERE idempotency_key = $1`,
        [body.eventId],
      );
    expect(row).toEqual({ insertedStamped: true });
    const record = await worker.get(IdempotencyService).get(body.eventId, { scope: 'send-email' });
    expect(record).toMatchObject({ state: 'COMPLETED', scope: 'send-email', key: body.eventId });
    expect(emails[0].headers).toEqual(
      expect.arrayContaining([
        { name: 'X-Once-Key', value: body.eventId },
        expect.objectContaining({ name: 'List-Unsubscribe' }),
      ]),
    );
  });

  it('runs a job delivered twice once: the duplicate never fans out again', async () => {
    await mailbox.clear();
    const slot = new Date('2026-11-24T07:00:00.000Z');
    // Enqueued before periods existed (no period, slot-based eventId): still run, once.
    const job = {
      eventId: legacyJobEventId('daily-digest', slot),
      job: 'daily-digest',
      slot: slot.toISOString(),
      firedAt: new Date().toISOString(),
    };
    const metricsPort = worker.get(OpsHttpServer).port;
    const dedupEvents = async (event: string, scope: string): Promise<number> => {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('once_dedup_events_total{') &&
            l.includes(`event="${event}"`) &&
            l.includes(`scope="${scope}"`),
        );
      return line ? Number(line.split(' ').pop()) : 0;
    };
    const claimedBefore = await dedupEvents('claimed', 'jobs');
    const duplicatesBefore = await dedupEvents('duplicate-completed', 'jobs');

    await sendJson(sqs, e2eQueueUrl('once-jobs'), job);
    await waitFor('6 digest emails', async () => ((await mailbox.all()).length >= 6 ? true : undefined));
    await sendJson(sqs, e2eQueueUrl('once-jobs'), job);
    await waitFor('the duplicate to be turned away', async () =>
      (await dedupEvents('duplicate-completed', 'jobs')) > duplicatesBefore ? true : undefined,
    );

    expect(await dedupEvents('claimed', 'jobs')).toBe(claimedBefore + 1);
    expect(await mailbox.all()).toHaveLength(6);
    const record = await worker.get(IdempotencyService).get(job.eventId, { scope: 'jobs' });
    expect(record).toMatchObject({ state: 'COMPLETED', attempts: 1 });
  });

  it('on shutdown finishes the messages in hand: sent once, completed and deleted before it closes', async () => {
    const email = await createTestQueue(sqs, `shutdown-email-${Date.now()}`, { visibilityTimeout: 30 });
    const jobs = await createTestQueue(sqs, `shutdown-jobs-${Date.now()}`);
    // One email a second: the last of three is still waiting for its slot when close() starts.
    const slow = await bootstrap({
      env: {
        SQS_WAIT_TIME_SECONDS: '1',
        OPS_PORT: '0',
        SQS_EMAIL_QUEUE: email.url,
        SQS_JOBS_QUEUE: jobs.url,
        MAIL_MAX_SEND_RATE: '1',
      },
    });
    await mailbox.clear();
    const keys = [1, 2, 3].map((n) => `shutdown:${Date.now()}:${n}`);
    for (const [i, eventId] of keys.entries()) {
      await sendJson(sqs, email.url, { eventId, to: `drain${i}@example.com`, subject: 'Drain', text: 'x' });
    }
    await waitFor('the first email', async () => ((await mailbox.all()).length > 0 ? true : undefined));
    await slow.close();

    const sent = (await mailbox.all()).map((mail) => mail.destination.to[0]).sort();
    expect(sent).toEqual(['drain0@example.com', 'drain1@example.com', 'drain2@example.com']);
    const dedup = worker.get(IdempotencyService);
    for (const key of keys) {
      await expect(dedup.get(key, { scope: 'send-email' })).resolves.toMatchObject({ state: 'COMPLETED' });
    }
    const { Attributes } = await sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: email.url, AttributeNames: ['All'] }),
    );
    expect(Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '0',
    });
  });
});
