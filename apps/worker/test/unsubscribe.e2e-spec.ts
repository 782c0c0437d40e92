import { INestApplicationContext } from '@nestjs/common';
import { messagesLeft, readQueueDepth } from '@once/dedup/sqs';
import { getDataSourceToken } from '@nestjs/typeorm';
import { MailLedgerService } from '@once/mail';
import { jobEventId, JobMessage, METRICS_REGISTRY, seedUsers, User } from '@once/platform';
import { drain, e2eQueueUrl, sendJson, SesMailbox, testSqsClient, waitFor } from '@once/testing';
import { LinkBuilder } from '@once/tracking';
import type { Registry } from 'prom-client';
import { DataSource } from 'typeorm';
import { bootstrap } from '../src/bootstrap';
import { jobEmail, jobEmailKey } from '../src/jobs/job-email.template';

/**
 * Issue 11: a user who unsubscribes between a crashed fan-out and its rerun gets none of the rest
 * of that digest, including the emails the crashed run had already enqueued.
 */
describe('worker: unsubscribed between a crashed fan-out and its rerun', () => {
  const sqs = testSqsClient();
  const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
  const env = {
    DATABASE_MIGRATE_ON_BOOT: 'true',
    SQS_WAIT_TIME_SECONDS: '1',
    OPS_PORT: '0',
    FANOUT_PAGE_SIZE: '2',
    REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}unsubscribe:`,
  };
  let worker: INestApplicationContext | undefined;
  let resubscribe: (() => Promise<unknown>) | undefined;

  afterAll(async () => {
    // Other suites share the database and count on every seeded user being subscribed.
    await resubscribe?.();
    await worker?.close();
    sqs.destroy();
  });

  it('skips the already-enqueued email of the user who unsubscribed, and the rerun leaves them out', async () => {
    // A worker that ran the first page of the fan-out, then died (its job message is redelivered).
    const crashed = await bootstrap({ env: { ...env, SQS_WAIT_TIME_SECONDS: '0' } });
    const dataSource = crashed.get<DataSource>(getDataSourceToken());
    await seedUsers(dataSource, 6);
    const users = await dataSource.getRepository(User).find({ order: { id: 'ASC' } });
    const links = crashed.get(LinkBuilder);
    const leaver = users[1];
    // Between the crash and the rerun the second user unsubscribes (the page they were on was enqueued).
    await dataSource.getRepository(User).update({ id: leaver.id }, { subscribed: false });
    await crashed.close();
    resubscribe = () =>
      worker!
        .get<DataSource>(getDataSourceToken())
        .getRepository(User)
        .update({ id: leaver.id }, { subscribed: true });
    await drain(sqs, e2eQueueUrl('once-jobs'), 0);
    await drain(sqs, e2eQueueUrl('once-send-email'), 0);
    await mailbox.clear();

    const job: JobMessage = {
      eventId: jobEventId('daily-digest', '2026-11-25'),
      job: 'daily-digest',
      slot: '2026-11-25T07:00:00.000Z',
      period: '2026-11-25',
      firedAt: new Date().toISOString(),
      trigger: 'cron',
    };
    for (const user of users.slice(0, 2))
      await sendJson(sqs, e2eQueueUrl('once-send-email'), jobEmail(job, user, links));
    await sendJson(sqs, e2eQueueUrl('once-jobs'), job);

    worker = await bootstrap({ env });
    const registry = worker.get<Registry>(METRICS_REGISTRY);
    const skipped = async () =>
      (await registry.getSingleMetric('once_emails_skipped_total')?.get())?.values.find(
        (value) => value.labels['reason'] === 'unsubscribed',
      )?.value;
    const emails = await waitFor(`${users.length - 1} digests`, async () => {
      const all = await mailbox.all();
      return all.length >= users.length - 1 ? all : undefined;
    });
    const ledger = worker.get(MailLedgerService);
    await waitFor('every other user sent', async () => {
      const entries = await Promise.all(
        users.filter((user) => user.id !== leaver.id).map((user) => ledger.get(jobEmailKey(job, user.id))),
      );
      return entries.every((entry) => entry?.status === 'sent') ? true : undefined;
    });
    const settled = async (queue: string) =>
      messagesLeft(await readQueueDepth(sqs, e2eQueueUrl(queue)), { withDelayed: false }) === 0;
    await waitFor('both queues settled', async () =>
      (await settled('once-jobs')) && (await settled('once-send-email')) ? true : undefined,
    );

    const recipients = emails.map((email) => email.destination.to[0]).sort();
    expect(recipients).toEqual(
      users
        .filter((user) => user.id !== leaver.id)
        .map((user) => user.email)
        .sort(),
    );
    expect(await ledger.get(jobEmailKey(job, leaver.id))).toBeUndefined();
    expect(await skipped()).toBe(1);
  });
});
