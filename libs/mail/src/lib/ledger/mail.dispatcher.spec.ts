import { AccountSuspendedException, MessageRejected, TooManyRequestsException } from '@aws-sdk/client-sesv2';
import { Logger } from '@nestjs/common';
import type { MailRateLimiter, RateReservation } from '../rate-limit/mail-rate.limiter';
import { SesDeadlineError, type SesTransport, type TransportMail } from '../ses/ses.transport';
import type { ResolvedMailOptions } from '../mail.options';
import { MailDispatcher } from './mail.dispatcher';
import type { LedgerOutcome, LedgerRow, MailLedgerRepository, SesCallStamp } from './mail-ledger.repository';

const row = {
  idempotency_key: 'digest:1',
  claim_token: 'token-1',
  attempts: 1,
  message: { to: ['a@example.com'], from: 'f@example.com', subject: 'S', text: 'T', headers: [] },
} as unknown as LedgerRow;

const options = {
  sesRequestTimeoutMs: 15_000,
  rateLimit: { maxWaitMs: 1_000 },
  throttleRetry: { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 2 },
} as unknown as ResolvedMailOptions;

function setup(
  sendImpl: (mail: TransportMail, deadlineMs: number, onLate?: (id: string) => void) => Promise<string>,
  slot: Partial<RateReservation> = {},
) {
  const outcomes: LedgerOutcome[] = [];
  const stamps: string[] = [];
  const repository = {
    markSesCall: jest.fn(
      async (key: string, _token: string, recipients: readonly string[]): Promise<SesCallStamp> => {
        stamps.push(key);
        return { status: 'stamped', recipients: [...recipients], suppressed: [] };
      },
    ),
    complete: jest.fn(async (_key: string, _token: string, outcome: LedgerOutcome) => {
      outcomes.push(outcome);
      return true;
    }),
    find: jest.fn(async () => ({ ...row, effective_status: 'pending', pending_for_ms: 4_000, attempts: 2 })),
    recordLateSent: jest.fn(async (_key: string, _token: string, sesMessageId: string) => {
      outcomes.push({ status: 'sent', sesMessageId });
      return true;
    }),
  };
  const limiter = {
    acquire: jest.fn(async () => ({ granted: true, waitMs: 0, slotAt: new Date(0), ...slot })),
  };
  const transport = { send: jest.fn(sendImpl) };
  const dispatcher = new MailDispatcher(
    options,
    repository as unknown as MailLedgerRepository,
    limiter as unknown as MailRateLimiter,
    transport as unknown as SesTransport,
  );
  return { dispatcher, outcomes, repository, limiter, transport, stamps };
}

const throttled = () =>
  new TooManyRequestsException({
    message: 'Maximum sending rate exceeded',
    $metadata: { httpStatusCode: 429 },
  });

describe('MailDispatcher', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('retries throttling with backoff, stamping the row before every SES call, and records the send once', async () => {
    let calls = 0;
    const { dispatcher, outcomes, transport, repository, stamps } = setup(async () => {
      calls++;
      expect(stamps).toHaveLength(calls);
      if (calls < 3) throw throttled();
      return 'ses-1';
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(result).toMatchObject({ status: 'sent', ledgerStatus: 'sent', sesMessageId: 'ses-1' });
    expect(transport.send).toHaveBeenCalledTimes(3);
    expect(repository.markSesCall).toHaveBeenCalledWith('digest:1', 'token-1', ['a@example.com']);
    expect(outcomes).toEqual([{ status: 'sent', sesMessageId: 'ses-1' }]);
  });

  it('does not call SES when the row was taken over before the call, and reports the new attempt in flight', async () => {
    const { dispatcher, outcomes, transport, repository } = setup(async () => 'ses-1');
    repository.markSesCall.mockResolvedValueOnce({ status: 'not-owned' });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).not.toHaveBeenCalled();
    expect(outcomes).toEqual([]);
    expect(result).toMatchObject({
      status: 'duplicate',
      ledgerStatus: 'pending',
      inFlight: true,
      retryAfterMs: 4_000,
      attempts: 2,
    });
  });

  it('gives each SES call what is left of a deadline that started before its stamp', async () => {
    const { dispatcher, transport } = setup(async () => 'ses-1');
    await dispatcher.deliver(row, ['a@example.com'], []);
    const deadlineMs = (transport.send.mock.calls[0] as unknown[])[1] as number;
    expect(deadlineMs).toBeGreaterThan(0);
    expect(deadlineMs).toBeLessThanOrEqual(15_000);
  });

  it('does not call SES when the stamp took the whole deadline, and records a retryable failure', async () => {
    const { dispatcher, outcomes, transport, repository } = setup(async () => 'ses-1');
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
    repository.markSesCall.mockImplementationOnce(async () => {
      clock.mockReturnValue(now + 15_000);
      return { status: 'stamped', recipients: ['a@example.com'], suppressed: [] };
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    clock.mockRestore();
    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('deadline'),
    });
    expect(outcomes[0]).toMatchObject({ status: 'failed', retryable: true, sesNotCalled: true });
  });

  it.each([
    ['14.8 s of the 15 s (two contended recipient locks)', 14_800],
    ['just over half of the deadline', 7_501],
  ])(
    'does not call SES when the stamp took %s, records a retryable failure and clears the stamp',
    async (_label, stampMs) => {
      const { dispatcher, outcomes, transport, repository } = setup(async () => 'ses-1');
      const now = Date.now();
      const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
      repository.markSesCall.mockImplementationOnce(async () => {
        clock.mockReturnValue(now + stampMs);
        return { status: 'stamped', recipients: ['a@example.com'], suppressed: [] };
      });
      const result = await dispatcher.deliver(row, ['a@example.com'], []);
      clock.mockRestore();
      expect(transport.send).not.toHaveBeenCalled();
      expect(result).toMatchObject({
        status: 'failed',
        ledgerStatus: 'failed',
        retryable: true,
        error: expect.stringContaining('SES was not called'),
      });
      // The stamp committed, but SES never saw the call: the row must not later read as unknown.
      expect(outcomes).toEqual([
        { status: 'failed', retryable: true, sesNotCalled: true, error: expect.stringContaining('deadline') },
      ]);
    },
  );

  it('calls SES when at least half of the deadline is left after the stamp', async () => {
    const { dispatcher, transport, repository } = setup(async () => 'ses-1');
    const now = Date.now();
    const clock = jest.spyOn(Date, 'now').mockReturnValue(now);
    repository.markSesCall.mockImplementationOnce(async (_key, _token, recipients) => {
      clock.mockReturnValue(now + 7_500);
      return { status: 'stamped', recipients: [...recipients], suppressed: [] };
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    clock.mockRestore();
    expect(result).toMatchObject({ status: 'sent' });
    expect((transport.send.mock.calls[0] as unknown[])[1]).toBe(7_500);
  });

  it('does not call SES when the stamp cannot be written, and records a retryable failure', async () => {
    const { dispatcher, outcomes, transport, repository } = setup(async () => 'ses-1');
    repository.markSesCall.mockRejectedValueOnce(new Error('connection terminated'));
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ status: 'failed', retryable: true });
    expect(outcomes[0]).toMatchObject({ status: 'failed', retryable: true });
  });

  it('gives up after the bounded attempts and records a retryable failure', async () => {
    const { dispatcher, outcomes, transport } = setup(async () => {
      throw throttled();
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).toHaveBeenCalledTimes(3);
    expect(result).toMatchObject({ status: 'failed', retryable: true });
    expect(outcomes[0]).toMatchObject({ status: 'failed', retryable: true });
  });

  it('records a rejection as a final, non-retryable failure without retrying', async () => {
    const { dispatcher, outcomes, transport } = setup(async () => {
      throw new MessageRejected({
        message: 'Email address is not verified',
        $metadata: { httpStatusCode: 400 },
      });
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(result).toMatchObject({
      status: 'failed',
      retryable: false,
      error: expect.stringContaining('MessageRejected'),
    });
    expect(outcomes[0]).toMatchObject({ status: 'failed', retryable: false });
  });

  it.each([
    [
      'SES was unreachable (connection refused)',
      () =>
        Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), {
          code: 'ECONNREFUSED',
          syscall: 'connect',
        }),
      'ECONNREFUSED',
    ],
    [
      'the credentials could not be loaded',
      () =>
        Object.assign(new Error('Could not load credentials from any providers'), {
          name: 'CredentialsProviderError',
        }),
      'CredentialsProviderError',
    ],
    [
      'SES refused for an account reason',
      () => new AccountSuspendedException({ message: 'suspended', $metadata: { httpStatusCode: 400 } }),
      'AccountSuspendedException',
    ],
  ])('records a retryable failure without retrying in process when %s', async (_label, error, name) => {
    const { dispatcher, outcomes, transport } = setup(async () => {
      throw error();
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(result).toMatchObject({
      status: 'failed',
      ledgerStatus: 'failed',
      retryable: true,
      error: expect.stringContaining(name),
    });
    expect(outcomes).toEqual([{ status: 'failed', retryable: true, error: expect.stringContaining(name) }]);
  });

  it('records a call that hit its deadline as unknown and never retries it', async () => {
    const { dispatcher, outcomes, transport } = setup(async () => {
      throw new SesDeadlineError('SendEmail', 15_000);
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(result).toMatchObject({
      status: 'unknown',
      ledgerStatus: 'unknown',
      error: expect.stringContaining('deadline'),
    });
    expect(outcomes[0]).toMatchObject({ status: 'unknown' });
  });

  it('records a MessageId that SES sends after the deadline as a late sent, after the unknown', async () => {
    let answerLate: ((id: string) => void) | undefined;
    const { dispatcher, outcomes, repository } = setup(async (_mail, _deadlineMs, onLate) => {
      answerLate = onLate;
      throw new SesDeadlineError('SendEmail', 15_000);
    });
    let finishUnknown: () => void = () => undefined;
    repository.complete.mockImplementationOnce(async (_key, _token, outcome) => {
      // The late answer arrives while the unknown is still being written.
      answerLate?.('ses-late');
      await new Promise<void>((resolve) => (finishUnknown = resolve));
      outcomes.push(outcome);
      return true;
    });
    const delivering = dispatcher.deliver(row, ['a@example.com'], []);
    await new Promise((resolve) => setImmediate(resolve));
    expect(repository.recordLateSent).not.toHaveBeenCalled();
    finishUnknown();
    const result = await delivering;
    expect(result).toMatchObject({ status: 'unknown', ledgerStatus: 'unknown' });
    await new Promise((resolve) => setImmediate(resolve));
    expect(repository.recordLateSent).toHaveBeenCalledWith('digest:1', 'token-1', 'ses-late');
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['unknown', 'sent']);
  });

  it('records a timeout as unknown and never retries it', async () => {
    const { dispatcher, outcomes, transport } = setup(async () => {
      throw Object.assign(new Error('Connection timed out after 15000 ms'), { name: 'TimeoutError' });
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).toHaveBeenCalledTimes(1);
    expect(result).toMatchObject({ status: 'unknown', ledgerStatus: 'unknown' });
    expect(outcomes[0]).toMatchObject({ status: 'unknown' });
  });

  it('does not call SES when no rate-limit slot is available in time', async () => {
    const { dispatcher, outcomes, transport } = setup(async () => 'ses-1', {
      granted: false,
      waitMs: 60_000,
    });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('rate limit'),
    });
    expect(outcomes[0]).toMatchObject({ status: 'failed', retryable: true });
  });

  it('reports a sent email whose outcome could not be recorded as sent with ledger status pending', async () => {
    const { dispatcher, repository } = setup(async () => 'ses-9');
    repository.complete.mockRejectedValueOnce(new Error('connection terminated'));
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(result).toMatchObject({ status: 'sent', ledgerStatus: 'pending', sesMessageId: 'ses-9' });
  });

  it('sends only to the recipients it is given', async () => {
    const { dispatcher, transport } = setup(async () => 'ses-2');
    const result = await dispatcher.deliver(row, ['b@example.com'], ['a@example.com']);
    expect(transport.send.mock.calls[0][0].to).toEqual(['b@example.com']);
    expect(result.suppressedRecipients).toEqual(['a@example.com']);
  });

  it('re-checks suppression at every stamp: a retry after throttling leaves out a recipient suppressed meanwhile', async () => {
    let calls = 0;
    const { dispatcher, transport, repository } = setup(async () => {
      calls++;
      if (calls === 1) throw throttled();
      return 'ses-3';
    });
    repository.markSesCall
      .mockResolvedValueOnce({
        status: 'stamped',
        recipients: ['a@example.com', 'b@example.com'],
        suppressed: [],
      })
      .mockResolvedValueOnce({
        status: 'stamped',
        recipients: ['b@example.com'],
        suppressed: ['a@example.com'],
      });
    const result = await dispatcher.deliver(row, ['a@example.com', 'b@example.com'], ['c@example.com']);
    expect(transport.send.mock.calls.map((call) => call[0].to)).toEqual([
      ['a@example.com', 'b@example.com'],
      ['b@example.com'],
    ]);
    expect(repository.markSesCall.mock.calls[1][2]).toEqual(['a@example.com', 'b@example.com']);
    expect(result).toMatchObject({
      status: 'sent',
      sesMessageId: 'ses-3',
      suppressedRecipients: ['c@example.com', 'a@example.com'],
    });
  });

  it('does not call SES when the stamp finds every recipient suppressed, and answers suppressed', async () => {
    const { dispatcher, transport, outcomes, repository } = setup(async () => 'ses-4');
    repository.markSesCall.mockResolvedValueOnce({ status: 'suppressed', suppressed: ['a@example.com'] });
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).not.toHaveBeenCalled();
    expect(outcomes).toEqual([]);
    expect(result).toMatchObject({
      status: 'suppressed',
      ledgerStatus: 'suppressed',
      suppressedRecipients: ['a@example.com'],
    });
  });

  it('answers suppressed when a suppression stopped this attempt before its stamp', async () => {
    const { dispatcher, transport, repository } = setup(async () => 'ses-5');
    repository.markSesCall.mockResolvedValueOnce({ status: 'not-owned' });
    repository.find.mockResolvedValueOnce({
      ...row,
      status: 'suppressed',
      effective_status: 'suppressed',
      pending_for_ms: null,
      attempts: 1,
    } as never);
    const result = await dispatcher.deliver(row, ['a@example.com'], []);
    expect(transport.send).not.toHaveBeenCalled();
    expect(result).toMatchObject({ status: 'suppressed', ledgerStatus: 'suppressed' });
  });
});
