import { randomUUID } from 'node:crypto';
import { MessageRejected } from '@aws-sdk/client-sesv2';
import { waitFor } from '@once/testing';
import fc from 'fast-check';
import {
  MailLedgerService,
  MailResendNotAllowedError,
  MailService,
  MailSuppressionService,
  MailValidationError,
  type SendMailInput,
} from '../src';
import { prepareMail } from '../src/lib/headers/mail-message.builder';
import { MailLedgerRepository, type NewLedgerRow } from '../src/lib/ledger/mail-ledger.repository';
import {
  createMailTestApp,
  emailsTo,
  emulatorSesClient,
  header,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
  waitForEmails,
} from './support/mail-e2e.harness';

function digest(to: string, key = uniqueKey('digest')): SendMailInput {
  return { idempotencyKey: key, to, subject: 'Your daily digest', text: 'Three new things happened.' };
}

/** The row a sender inserts before it waits for a rate-limit slot and calls SES. */
function unsentRow(input: SendMailInput): NewLedgerRow {
  const { idempotencyKey, contentHash, ...message } = prepareMail(input, 'Once <digest@once.example>');
  return {
    idempotencyKey,
    status: 'pending',
    recipients: message.to,
    message,
    contentHash,
    claimToken: randomUUID(),
    suppressed: [],
  };
}

describe('send ledger (Postgres + SES emulator)', () => {
  let t: MailTestApp;
  let mail: MailService;
  let ledger: MailLedgerService;

  beforeAll(async () => {
    t = await createMailTestApp();
    mail = t.app.get(MailService);
    ledger = t.app.get(MailLedgerService);
  });

  afterAll(() => t.close());

  it('sends once and returns the first result for the same key', async () => {
    const to = uniqueAddress();
    const input = {
      ...digest(to),
      html: '<p>Three new things happened.</p>',
      headers: { 'X-Campaign': 'digest' },
      listUnsubscribe: {
        url: 'https://once.example/unsubscribe?u=42',
        mailto: 'unsubscribe@once.example',
        oneClick: true,
      },
    };

    const first = await mail.send(input);
    const second = await mail.send(input);

    expect(first).toMatchObject({ status: 'sent', ledgerStatus: 'sent', attempts: 1 });
    expect(first.sesMessageId).toEqual(expect.any(String));
    expect(second).toMatchObject({
      status: 'duplicate',
      ledgerStatus: 'sent',
      sesMessageId: first.sesMessageId,
    });
    expect(second.inFlight).toBeUndefined();

    const emails = await emailsTo(to);
    expect(emails).toHaveLength(1);
    expect(emails[0]).toMatchObject({
      messageId: first.sesMessageId,
      from: 'Once <digest@once.example>',
      subject: 'Your daily digest',
      body: { text: 'Three new things happened.', html: '<p>Three new things happened.</p>' },
    });
    expect(header(emails[0], 'X-Once-Key')).toBe(input.idempotencyKey);
    expect(header(emails[0], 'List-Unsubscribe')).toBe(
      '<https://once.example/unsubscribe?u=42>, <mailto:unsubscribe@once.example>',
    );
    expect(header(emails[0], 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
    expect(header(emails[0], 'X-Campaign')).toBe('digest');

    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({
      status: 'sent',
      sesMessageId: first.sesMessageId,
      recipients: [to],
      history: [expect.objectContaining({ event: 'pending' }), expect.objectContaining({ event: 'sent' })],
    });
  });

  it.each([2, 20])(
    'sends exactly one email when the same key is sent %i times concurrently',
    async (times) => {
      const to = uniqueAddress();
      const input = digest(to);

      const results = await Promise.all(Array.from({ length: times }, () => mail.send(input)));

      const sent = results.filter((result) => result.status === 'sent');
      const duplicates = results.filter((result) => result.status === 'duplicate');
      expect(sent).toHaveLength(1);
      expect(duplicates).toHaveLength(times - 1);
      for (const duplicate of duplicates) {
        expect(duplicate.inFlight === true || duplicate.sesMessageId === sent[0].sesMessageId).toBe(true);
      }
      expect(await emailsTo(to)).toHaveLength(1);
    },
  );

  it('flags a key reused for different content and still does not send it', async () => {
    const to = uniqueAddress();
    const input = digest(to);
    await mail.send(input);
    const reused = await mail.send({ ...input, text: 'Something else entirely.' });
    expect(reused).toMatchObject({ status: 'duplicate', contentMismatch: true });
    expect(await emailsTo(to)).toHaveLength(1);
  });

  it('refuses invalid mail without recording it', async () => {
    const input = { ...digest(uniqueAddress()), subject: 'Hi\r\nBcc: all@evil.example' };
    await expect(mail.send(input)).rejects.toBeInstanceOf(MailValidationError);
    await expect(ledger.get(input.idempotencyKey)).resolves.toBeUndefined();
  });

  it('records suppressed sends without calling SES, and skips only the suppressed recipients', async () => {
    const suppressions = t.app.get(MailSuppressionService);
    const blocked = uniqueAddress('blocked');
    const open = uniqueAddress('open');
    await suppressions.suppress(blocked.toUpperCase(), 'manual', { by: 'test' });

    const alone = await mail.send(digest(blocked));
    expect(alone).toMatchObject({
      status: 'suppressed',
      ledgerStatus: 'suppressed',
      suppressedRecipients: [blocked],
    });
    await expect(ledger.get(alone.idempotencyKey)).resolves.toMatchObject({ status: 'suppressed' });

    const both = await mail.send({ ...digest(open), to: [blocked, open] });
    expect(both).toMatchObject({ status: 'sent', suppressedRecipients: [blocked] });
    expect(await emailsTo(blocked)).toHaveLength(0);
    expect(await emailsTo(open)).toHaveLength(1);
  });

  it('lists by status and recipient, newest first, with a cursor', async () => {
    const to = uniqueAddress('listed');
    const keys = [uniqueKey('list-a'), uniqueKey('list-b'), uniqueKey('list-c')];
    for (const key of keys) await mail.send(digest(to, key));

    const first = await ledger.list({ recipient: to.toUpperCase(), limit: 2 });
    expect(first.items.map((item) => item.idempotencyKey)).toEqual([keys[2], keys[1]]);
    expect(first.nextCursor).toEqual(expect.any(String));
    const second = await ledger.list({ recipient: to, limit: 2, cursor: first.nextCursor });
    expect(second.items.map((item) => item.idempotencyKey)).toEqual([keys[0]]);
    expect(second.nextCursor).toBeUndefined();

    const failedOnly = await ledger.list({ recipient: to, status: 'failed' });
    expect(failedOnly.items).toEqual([]);
  });

  it('lists by recipient under any spelling of the mailbox: case, IDN or punycode domain, display name (property)', async () => {
    const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`mail-ledger.e2e recipient spellings: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);
    const spelling = fc.record({
      upperLocal: fc.boolean(),
      domain: fc.constantFrom(
        'bücher.example',
        'BÜCHER.Example',
        'xn--bcher-kva.example',
        'XN--BCHER-KVA.EXAMPLE',
      ),
      name: fc.constantFrom(undefined, 'Ann', '"Ann, Reader"'),
      pad: fc.boolean(),
    });
    const spell = (
      local: string,
      s: { upperLocal: boolean; domain: string; name?: string; pad: boolean },
    ) => {
      const address = `${s.upperLocal ? local.toUpperCase() : local}@${s.domain}`;
      const mailbox = s.name ? `${s.name} <${address}>` : address;
      return s.pad ? `  ${mailbox} ` : mailbox;
    };
    await fc.assert(
      fc.asyncProperty(spelling, spelling, async (sentAs, askedAs) => {
        const local = `ann-${randomUUID().slice(0, 8)}`;
        const key = uniqueKey('spelling');
        const sent = await mail.send(digest(spell(local, { ...sentAs, name: undefined, pad: false }), key));
        expect(sent.status).toBe('sent');
        const page = await ledger.list({ recipient: spell(local, askedAs) });
        expect(page.items.map((item) => item.idempotencyKey)).toEqual([key]);
        expect(page.items[0].recipients).toEqual([`${local}@xn--bcher-kva.example`]);
      }),
      { seed, numRuns: 15 },
    );
  });

  it('lists by recipient rows stored before addresses were normalized (plain lower-case)', async () => {
    const local = `old-${randomUUID().slice(0, 8)}`;
    const input = digest(`${local}@xn--bcher-kva.example`);
    const row = unsentRow(input);
    await t.app.get(MailLedgerRepository).claim({ ...row, recipients: [`${local}@bücher.example`] });
    const page = await ledger.list({ recipient: `${local.toUpperCase()}@BÜCHER.example` });
    expect(page.items.map((item) => item.idempotencyKey)).toEqual([input.idempotencyKey]);
  });
});

describe('failures, the crash window and deliberate resends', () => {
  let t: MailTestApp;
  let mail: MailService;
  let ledger: MailLedgerService;
  const client = emulatorSesClient();
  let mode: 'pass' | 'reject-once' | 'crash-after-accept' = 'pass';
  let sesCalls = 0;
  let accepted: () => void = () => undefined;

  beforeAll(async () => {
    // Middleware around the real emulator: refuse a send, or let SES accept it and then never
    // return, which is what a crash between SES accepting and the ledger update looks like.
    client.middlewareStack.add(
      (next) => async (args) => {
        sesCalls++;
        if (mode === 'reject-once') {
          mode = 'pass';
          throw new MessageRejected({
            message: 'Email address is not verified.',
            $metadata: { httpStatusCode: 400 },
          });
        }
        const output = await next(args);
        if (mode === 'crash-after-accept') {
          mode = 'pass';
          accepted();
          return new Promise<never>(() => undefined);
        }
        return output;
      },
      { step: 'initialize', name: 'onceTestFaults' },
    );
    t = await createMailTestApp({ ses: { client } });
    mail = t.app.get(MailService);
    ledger = t.app.get(MailLedgerService);
  });

  afterAll(async () => {
    await t.close();
    client.destroy();
  });

  it('records a rejected send as failed, returns it for the same key, and resends it on request', async () => {
    const to = uniqueAddress();
    const input = digest(to);
    mode = 'reject-once';

    const failed = await mail.send(input);
    expect(failed).toMatchObject({
      status: 'failed',
      retryable: false,
      error: expect.stringContaining('MessageRejected'),
    });

    const callsBefore = sesCalls;
    await expect(mail.send(input)).resolves.toMatchObject({ status: 'duplicate', ledgerStatus: 'failed' });
    expect(sesCalls).toBe(callsBefore);
    expect(await emailsTo(to)).toHaveLength(0);

    const resent = await ledger.resend(input.idempotencyKey, { actor: 'ops@once.example' });
    expect(resent).toMatchObject({ status: 'sent', attempts: 2 });
    expect(await emailsTo(to)).toHaveLength(1);
    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({
      status: 'sent',
      attempts: 2,
      lastResendBy: 'ops@once.example',
      history: expect.arrayContaining([
        expect.objectContaining({ event: 'failed', attempt: 1 }),
        expect.objectContaining({
          event: 'resend',
          actor: 'ops@once.example',
          previousStatus: 'failed',
          attempt: 2,
        }),
        expect.objectContaining({ event: 'sent', attempt: 2, sesMessageId: resent.sesMessageId }),
      ]),
    });
    await expect(ledger.resend(input.idempotencyKey, { actor: 'ops@once.example' })).rejects.toBeInstanceOf(
      MailResendNotAllowedError,
    );
  });

  it('surfaces a send stuck after SES accepted it as unknown, never resends it blindly, and resends on request', async () => {
    const to = uniqueAddress();
    const input = digest(to);
    const sesAccepted = new Promise<void>((resolve) => (accepted = resolve));
    mode = 'crash-after-accept';

    void mail.send(input);
    await sesAccepted;
    expect(await waitForEmails(to, 1)).toHaveLength(1);

    const inFlight = await mail.send(input);
    expect(inFlight).toMatchObject({ status: 'duplicate', ledgerStatus: 'pending', inFlight: true });
    expect(inFlight.retryAfterMs).toBeGreaterThan(0);
    expect(inFlight.retryAfterMs).toBeLessThanOrEqual(20_000);
    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({ sesCalledAt: expect.any(Date) });
    // SES was called for this attempt: even a caller vouching that the sender is gone may not take it over.
    await expect(mail.send(input, { takeOverUnsent: true })).resolves.toMatchObject({
      status: 'duplicate',
      inFlight: true,
    });
    await expect(ledger.resend(input.idempotencyKey, { actor: 'ops' })).rejects.toBeInstanceOf(
      MailResendNotAllowedError,
    );

    // The process "died"; time passes beyond the stale window.
    await t.dataSource.query(
      `UPDATE mail_ledger SET attempt_started_at = now() - interval '1 hour', ses_called_at = now() - interval '1 hour'
        WHERE idempotency_key = $1`,
      [input.idempotencyKey],
    );
    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({ status: 'unknown' });
    const unknown = await ledger.list({ status: 'unknown', recipient: to });
    expect(unknown.items.map((item) => item.idempotencyKey)).toEqual([input.idempotencyKey]);

    const callsBefore = sesCalls;
    await expect(mail.send(input)).resolves.toMatchObject({ status: 'duplicate', ledgerStatus: 'unknown' });
    await expect(mail.send(input, { takeOverUnsent: true })).resolves.toMatchObject({
      status: 'duplicate',
      ledgerStatus: 'unknown',
    });
    expect(sesCalls).toBe(callsBefore);
    expect(await emailsTo(to)).toHaveLength(1);

    const resent = await ledger.resend(input.idempotencyKey, { actor: 'ops@once.example' });
    expect(resent).toMatchObject({ status: 'sent', attempts: 2 });
    expect(await emailsTo(to)).toHaveLength(2);
    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({
      status: 'sent',
      lastResendBy: 'ops@once.example',
      history: expect.arrayContaining([
        expect.objectContaining({ event: 'resend', previousStatus: 'unknown' }),
      ]),
    });
  });

  it('reads a send whose sender stopped before calling SES as failed (retryable) after the window, and resends it', async () => {
    const to = uniqueAddress();
    const input = digest(to);
    // A sender inserted the row and died before its SES call.
    await t.app.get(MailLedgerRepository).claim(unsentRow(input));
    const callsBefore = sesCalls;

    const inFlight = await mail.send(input);
    expect(inFlight).toMatchObject({ status: 'duplicate', ledgerStatus: 'pending', inFlight: true });
    expect(inFlight.retryAfterMs).toBeGreaterThan(20_000);
    expect(inFlight.retryAfterMs).toBeLessThanOrEqual(35_000);
    expect((await ledger.list({ recipient: to, status: 'pending' })).items).toHaveLength(1);
    const countsBefore = await ledger.countByStatus();

    await t.dataSource.query(
      `UPDATE mail_ledger SET attempt_started_at = now() - interval '36 seconds' WHERE idempotency_key = $1`,
      [input.idempotencyKey],
    );
    const countsAfter = await ledger.countByStatus();
    expect(countsAfter.failed - countsBefore.failed).toBe(1);
    expect(countsBefore.pending - countsAfter.pending).toBe(1);
    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('abandoned before SES was called'),
    });
    expect((await ledger.list({ recipient: to, status: 'failed' })).items).toHaveLength(1);
    expect((await ledger.list({ recipient: to, status: 'pending' })).items).toHaveLength(0);
    expect((await ledger.list({ recipient: to, status: 'unknown' })).items).toHaveLength(0);
    await expect(mail.send(input)).resolves.toMatchObject({
      status: 'duplicate',
      ledgerStatus: 'failed',
      retryable: true,
    });
    expect(sesCalls).toBe(callsBefore);

    const resent = await ledger.resend(input.idempotencyKey, { actor: 'worker:redelivery' });
    expect(resent).toMatchObject({ status: 'sent', attempts: 2 });
    expect(await emailsTo(to)).toHaveLength(1);
    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({
      status: 'sent',
      history: expect.arrayContaining([
        expect.objectContaining({ event: 'resend', previousStatus: 'failed', attempt: 2 }),
      ]),
    });
  });

  it('lets a caller that holds the key take over a send that never reached SES, at once', async () => {
    const to = uniqueAddress();
    const input = digest(to);
    await t.app.get(MailLedgerRepository).claim(unsentRow(input));

    const taken = await mail.send(input, { takeOverUnsent: true });
    expect(taken).toMatchObject({ status: 'sent', attempts: 2 });
    expect(await emailsTo(to)).toHaveLength(1);
    await expect(ledger.get(input.idempotencyKey)).resolves.toMatchObject({
      status: 'sent',
      history: expect.arrayContaining([expect.objectContaining({ event: 'taken-over', attempt: 2 })]),
    });
    await expect(mail.send(input, { takeOverUnsent: true })).resolves.toMatchObject({
      status: 'duplicate',
      ledgerStatus: 'sent',
    });
    expect(await emailsTo(to)).toHaveLength(1);
  });

  it('refuses to resend unknown keys or keys that were sent', async () => {
    await expect(ledger.resend(uniqueKey('missing'), { actor: 'ops' })).rejects.toThrow(/status is missing/);
    const sent = await mail.send(digest(uniqueAddress()));
    await expect(ledger.resend(sent.idempotencyKey, { actor: 'ops' })).rejects.toThrow(/status is sent/);
    await expect(ledger.resend(sent.idempotencyKey, { actor: ' ' })).rejects.toThrow(/actor/);
  });
});

describe('a first sender that is still alive when its row is taken over', () => {
  let t: MailTestApp;

  beforeAll(async () => {
    // One send per 2 s: the second send of a burst waits for its slot with its row claimed.
    t = await createMailTestApp({ rateLimit: { maxSendRate: 0.5, burst: 1, perRecipient: false } });
  });

  afterAll(() => t.close());

  it('does not call SES once its claim is gone: one email in total', async () => {
    const mail = t.app.get(MailService);
    await mail.send(digest(uniqueAddress('burst')));
    const to = uniqueAddress();
    const input = digest(to);

    const first = mail.send(input);
    await waitForRow(t, input.idempotencyKey);
    const second = await mail.send(input, { takeOverUnsent: true });

    expect(second).toMatchObject({ status: 'sent', attempts: 2 });
    // It woke up for its slot while the taker was still waiting for its own.
    await expect(first).resolves.toMatchObject({ status: 'duplicate', inFlight: true });
    expect(await emailsTo(to)).toHaveLength(1);
  });
});

function waitForRow(t: MailTestApp, key: string): Promise<unknown> {
  const ledger = t.app.get(MailLedgerService);
  return waitFor(`the ledger row of ${key}`, () => ledger.get(key), { timeoutMs: 5_000, intervalMs: 10 });
}
