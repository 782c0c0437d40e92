import { Logger } from '@nestjs/common';
import type {
  MailLedgerEntry,
  MailLedgerService,
  MailSendResult,
  MailService,
  SendMailOptions,
} from '@once/mail';
import type { DedupEnv, SendEmailMessage } from '@once/platform';
import { EmailDeliveryService, RetryLaterError } from './email-delivery.service';

const email: SendEmailMessage = {
  eventId: 'digest:2026-11-22T07:00:00.000Z:user:42',
  to: 'ada@example.com',
  subject: 'Your daily digest',
  text: 'Hello',
  userId: '42',
};
const key = email.eventId;

function setup(results: MailSendResult[], entry?: Partial<MailLedgerEntry>, dedup = true) {
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
  const service = new EmailDeliveryService(
    mail as unknown as MailService,
    ledger as unknown as MailLedgerService,
    { DEDUP_ENABLED: dedup } as DedupEnv,
  );
  return { service, mail, ledger, options };
}

describe('EmailDeliveryService', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('takes over a first send that never reached SES only while @Idempotent holds the key', async () => {
    const sent: MailSendResult = { status: 'sent', idempotencyKey: key, ledgerStatus: 'sent', attempts: 1 };
    const withDedup = setup([sent]);
    await withDedup.service.deliver(email, 'm-1');
    expect(withDedup.options).toEqual([{ takeOverUnsent: true }]);

    const withoutDedup = setup([sent], undefined, false);
    await withoutDedup.service.deliver(email, 'm-1');
    expect(withoutDedup.options).toEqual([{ takeOverUnsent: false }]);
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

  it('acknowledges a duplicate of an unknown send without resending it (an operator decides)', async () => {
    const { service, ledger } = setup([
      { status: 'duplicate', idempotencyKey: key, ledgerStatus: 'unknown', attempts: 1 },
    ]);
    await expect(service.deliver(email, 'm-1')).resolves.toMatchObject({ ledgerStatus: 'unknown' });
    expect(ledger.resend).not.toHaveBeenCalled();
  });
});
