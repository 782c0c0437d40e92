import { Logger } from '@nestjs/common';
import {
  type AdminErrorReporter,
  type MailLedgerEntry,
  type MailLedgerService,
  type MailSendResult,
  type MailService,
  type SendMailOptions,
  errorFingerprint,
} from '@once/mail';
import type { DedupEnv, SendEmailMessage } from '@once/platform';
import { Registry } from 'prom-client';
import type { SubscriptionReader } from './subscription.reader';
import { EmailDeliveryService, EmailLeftToOperatorError, RetryLaterError } from './email-delivery.service';

const email: SendEmailMessage = {
  eventId: 'digest:2026-11-22T07:00:00.000Z:user:42',
  to: 'ada@example.com',
  subject: 'Your daily digest',
  text: 'Hello',
  userId: '42',
};
const key = email.eventId;

/** A SubscriptionReader whose users table holds user 42 with `subscribed` (null: no user 42). */
function fakeUsers(subscribed: boolean | null): SubscriptionReader {
  return { isSubscribed: jest.fn(async () => subscribed ?? false) } as unknown as SubscriptionReader;
}

function setup(
  results: MailSendResult[],
  entry?: Partial<MailLedgerEntry>,
  dedup = true,
  subscribed: boolean | null = true,
) {
  const options: SendMailOptions[] = [];
  const mail = {
    send: jest.fn(async (_input: unknown, sendOptions: SendMailOptions) => {
      options.push(sendOptions);
      const next = results.shift();
      if (!next) throw new Error('no more results');
      return next;
    }),
  };
  const ledger = {
    get: jest.fn(async () => entry),
    resend: jest.fn(async (): Promise<MailSendResult> => ({
      status: 'sent',
      idempotencyKey: key,
      ledgerStatus: 'sent',
      attempts: 2,
    })),
  };
  const reporter = { reportWorkerFailure: jest.fn(async () => ({ status: 'sent' as const })) };
  const service = new EmailDeliveryService(
    mail as unknown as MailService,
    ledger as unknown as MailLedgerService,
    reporter as unknown as AdminErrorReporter,
    { DEDUP_ENABLED: dedup } as DedupEnv,
    fakeUsers(subscribed),
    new Registry(),
  );
  return { service, mail, ledger, reporter, options };
}

describe('EmailDeliveryService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it.each([
    ['unsubscribed', false],
    ['deleted', null],
  ])('skips, without calling the mail service, an email to a user who is now %s', async (_, subscribed) => {
    const { service, mail, reporter } = setup([], undefined, true, subscribed);
    await expect(service.deliver(email, 'm-1')).resolves.toMatchObject({
      status: 'suppressed',
      ledgerStatus: 'suppressed',
      attempts: 0,
    });
    expect(mail.send).not.toHaveBeenCalled();
    expect(reporter.reportWorkerFailure).not.toHaveBeenCalled();
  });

  it('takes over a first send that never reached SES only while @Idempotent holds the key', async () => {
    const sent: MailSendResult = { status: 'sent', idempotencyKey: key, ledgerStatus: 'sent', attempts: 1 };
    const withDedup = setup([sent]);
    await withDedup.service.deliver(email, 'm-1');
    expect(withDedup.options).toEqual([{ takeOverUnsent: true, likelyNew: false }]);

    const withoutDedup = setup([sent], undefined, false);
    await withoutDedup.service.deliver(email, 'm-1');
    expect(withoutDedup.options).toEqual([{ takeOverUnsent: false, likelyNew: false }]);
  });

  it('asks the mail ledger for its two-commit path only for a message received for the first time', async () => {
    const sent: MailSendResult = { status: 'sent', idempotencyKey: key, ledgerStatus: 'sent', attempts: 1 };
    const first = setup([sent]);
    await first.service.deliver(email, 'm-1', true);
    expect(first.options).toEqual([{ takeOverUnsent: true, likelyNew: true }]);
  });

  it('leaves a message whose first send is in flight for when that send leaves its window', async () => {
    const { service } = setup([
      {
        status: 'duplicate',
        idempotencyKey: key,
        ledgerStatus: 'pending',
        inFlight: true,
        retryAfterMs: 12_345,
        attempts: 1,
      },
    ]);
    const error = await service.deliver(email, 'm-1').catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(RetryLaterError);
    expect(error).toMatchObject({ idempotencyKey: key, retryAfterMs: 12_345 });
  });

  it('resends a first send that certainly never reached SES (retryable failure)', async () => {
    const { service, ledger } = setup(
      [{ status: 'duplicate', idempotencyKey: key, ledgerStatus: 'failed', retryable: true, attempts: 1 }],
      { retryable: true },
    );
    await expect(service.deliver(email, 'm-1')).resolves.toMatchObject({ status: 'sent', attempts: 2 });
    expect(ledger.resend).toHaveBeenCalledWith(key, { actor: 'worker:redelivery' });
  });

  it('acknowledges a duplicate of an unknown send without resending it, and tells the admins', async () => {
    const { service, ledger, reporter } = setup([
      { status: 'duplicate', idempotencyKey: key, ledgerStatus: 'unknown', attempts: 1 },
    ]);
    await expect(service.deliver(email, 'm-1')).resolves.toMatchObject({ ledgerStatus: 'unknown' });
    expect(ledger.resend).not.toHaveBeenCalled();
    expect(reporter.reportWorkerFailure).toHaveBeenCalledTimes(1);
  });

  const failed = (error: string, retryable: boolean): MailSendResult => ({
    status: 'failed',
    idempotencyKey: key,
    ledgerStatus: 'failed',
    error,
    retryable,
    attempts: 1,
  });
  const unknown = (error: string): MailSendResult => ({
    status: 'unknown',
    idempotencyKey: key,
    ledgerStatus: 'unknown',
    error,
    attempts: 1,
  });

  it('acknowledges a final failure and reports it to the admins with the message and key', async () => {
    const { service, reporter } = setup([
      failed('MessageRejected: Email address is not verified: ada@example.com (HTTP 400)', false),
    ]);
    await expect(service.deliver(email, 'm-1')).resolves.toMatchObject({
      status: 'failed',
      retryable: false,
    });
    expect(reporter.reportWorkerFailure).toHaveBeenCalledTimes(1);
    expect(reporter.reportWorkerFailure).toHaveBeenCalledWith(
      expect.any(EmailLeftToOperatorError),
      expect.objectContaining({
        handler: 'EmailDeliveryService.deliver',
        queue: 'send-email',
        messageId: 'm-1',
        idempotencyKey: key,
        ledgerStatus: 'failed',
        sesError: expect.stringContaining('MessageRejected'),
      }),
    );
    const [[reported]] = reporter.reportWorkerFailure.mock.calls as unknown as [[Error]];
    expect(reported.message).toContain('failed');
    expect(reported.message).toContain('MessageRejected');
  });

  it('acknowledges an unknown outcome and reports it to the admins', async () => {
    const { service, reporter } = setup([unknown('TimeoutError: Connection timed out after 15000 ms')]);
    await expect(service.deliver(email, 'm-2')).resolves.toMatchObject({ status: 'unknown' });
    expect(reporter.reportWorkerFailure).toHaveBeenCalledWith(
      expect.any(EmailLeftToOperatorError),
      expect.objectContaining({
        handler: 'EmailDeliveryService.deliver',
        queue: 'send-email',
        messageId: 'm-2',
        idempotencyKey: key,
        ledgerStatus: 'unknown',
      }),
    );
    const [[reported]] = reporter.reportWorkerFailure.mock.calls as unknown as [[Error]];
    expect(reported.message).toContain('unknown');
    expect(reported.message).toContain('TimeoutError');
  });

  it('reports one cause under one fingerprint, whatever the recipient or key, so it is mailed once per window', async () => {
    const { service, reporter } = setup([
      unknown('TimeoutError: Connection timed out after 15000 ms'),
      unknown('TimeoutError: Connection timed out after 15001 ms'),
      failed('MessageRejected: not verified: ada@example.com (HTTP 400)', false),
      failed('MessageRejected: not verified: grace@example.com (HTTP 400)', false),
    ]);
    for (const id of ['m-1', 'm-2', 'm-3', 'm-4']) {
      await service.deliver({ ...email, eventId: `${email.eventId}:${id}` }, id);
    }
    const fingerprints = reporter.reportWorkerFailure.mock.calls.map((call) =>
      errorFingerprint((call as unknown[])[0], 'worker EmailDeliveryService.deliver'),
    );
    expect(fingerprints[0]).toBe(fingerprints[1]);
    expect(fingerprints[2]).toBe(fingerprints[3]);
    expect(fingerprints[0]).not.toBe(fingerprints[2]);
  });

  it('retries a send SES certainly refused after a backoff that grows with the attempts (so no receive is spent)', async () => {
    const waits: number[] = [];
    for (const attempts of [1, 2, 3, 6, 7, 30]) {
      const { service } = setup([{ ...failed('Error: rate limiter unavailable: down', true), attempts }]);
      const error = await service.deliver(email, 'm-1').catch((thrown: unknown) => thrown);
      expect(error).toBeInstanceOf(RetryLaterError);
      waits.push((error as RetryLaterError).retryAfterMs ?? Number.NaN);
    }
    // Half of each delay is random: attempt n waits between half and all of min(60 s, 2^(n-1) s).
    const caps = [1000, 2000, 4000, 32_000, 60_000, 60_000];
    waits.forEach((wait, i) => {
      expect(wait).toBeGreaterThanOrEqual(caps[i]! / 2);
      expect(wait).toBeLessThanOrEqual(caps[i]!);
    });
  });

  it('does not report what it leaves to SQS redelivery or what was sent', async () => {
    const retry = setup([failed('Error: connect ECONNREFUSED 127.0.0.1:443', true)]);
    await expect(retry.service.deliver(email, 'm-1')).rejects.toBeInstanceOf(RetryLaterError);
    expect(retry.reporter.reportWorkerFailure).not.toHaveBeenCalled();

    const sent = setup([{ status: 'sent', idempotencyKey: key, ledgerStatus: 'sent', attempts: 1 }]);
    await sent.service.deliver(email, 'm-1');
    expect(sent.reporter.reportWorkerFailure).not.toHaveBeenCalled();
  });
});
