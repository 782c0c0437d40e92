import { randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { MailService, MailSuppressionService, MailValidationError } from '../src';
import { SesMailbox } from '@once/testing';
import { createMailTestApp, emailsTo, env, type MailTestApp, uniqueKey } from './support/mail-e2e.harness';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`recipients.e2e: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

const id = () => randomUUID().slice(0, 8);

describe('one mail per mailbox (Postgres, Redis, SES emulator)', () => {
  let t: MailTestApp;
  let mail: MailService;
  let suppressions: MailSuppressionService;

  beforeAll(async () => {
    t = await createMailTestApp({
      rateLimit: { maxSendRate: 500, burst: 50, perRecipient: { limit: 1, windowMs: 3_600_000 } },
    });
    mail = t.app.get(MailService);
    suppressions = t.app.get(MailSuppressionService);
  });

  afterAll(() => t.close());

  const storedRow = async (key: string) =>
    (
      await t.dataSource.query(
        `SELECT recipients, message->'to' AS "to", history FROM mail_ledger WHERE idempotency_key = $1`,
        [key],
      )
    )[0] as { recipients: string[]; to: string[] } | undefined;

  it('mails addresses that differ only in case, or in the IDN spelling of the domain, once', async () => {
    const n = id();
    const key = uniqueKey('dedup');
    const result = await mail.send({
      idempotencyKey: key,
      to: [
        `x-${n}@example.com`,
        `X-${n}@EXAMPLE.COM`,
        `Ann-${n}@Bücher.example`,
        `ann-${n}@XN--BCHER-KVA.example`,
      ],
      subject: 'Once',
      text: 'T',
    });

    expect(result.status).toBe('sent');
    const emails = (await emailsTo(`x-${n}@example.com`)).filter((email) => email.subject === 'Once');
    expect(emails).toHaveLength(1);
    expect(emails[0].destination.to).toEqual([`x-${n}@example.com`, `Ann-${n}@xn--bcher-kva.example`]);
    // The ledger stores what was sent, and the comparison keys.
    await expect(storedRow(key)).resolves.toMatchObject({
      to: [`x-${n}@example.com`, `Ann-${n}@xn--bcher-kva.example`],
      recipients: [`x-${n}@example.com`, `ann-${n}@xn--bcher-kva.example`],
    });
  });

  it('checks the suppression list and the per-recipient cap on the same key', async () => {
    const n = id();
    await suppressions.suppress(`ANN-${n}@xn--bcher-kva.example`, 'manual');
    await suppressions.suppress(`y-${n}@Bücher.example`, 'manual');
    const a = await mail.send({
      idempotencyKey: uniqueKey('s'),
      to: `ann-${n}@Bücher.example`,
      subject: 'S',
      text: 'T',
    });
    const b = await mail.send({
      idempotencyKey: uniqueKey('s'),
      to: `Y-${n}@XN--bcher-kva.example`,
      subject: 'S',
      text: 'T',
    });
    expect(a).toMatchObject({
      status: 'suppressed',
      suppressedRecipients: [`ann-${n}@xn--bcher-kva.example`],
    });
    expect(b.status).toBe('suppressed');
    await expect(suppressions.isSuppressed(`Ann-${n}@BÜCHER.example`)).resolves.toBe(true);

    const first = await mail.send({
      idempotencyKey: uniqueKey('c'),
      to: `z-${n}@bücher.example`,
      subject: 'One',
      text: 'T',
    });
    const second = await mail.send({
      idempotencyKey: uniqueKey('c'),
      to: `Z-${n}@XN--BCHER-KVA.EXAMPLE`,
      subject: 'Two',
      text: 'T',
    });
    expect(first.status).toBe('sent');
    expect(second).toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('rate limit'),
    });
    expect((await emailsTo(`z-${n}@xn--bcher-kva.example`)).map((email) => email.subject)).toEqual(['One']);
  });

  it('refuses an address whose domain is not a hostname with a 400 naming the field, recording nothing', async () => {
    const key = uniqueKey('bad');
    const send = mail.send({
      idempotencyKey: key,
      to: [`ok-${id()}@example.com`, 'root@localhost'],
      subject: 'S',
      text: 'T',
    });
    await expect(send).rejects.toBeInstanceOf(MailValidationError);
    await expect(send).rejects.toMatchObject({ fields: ['to.1'], status: 400 });
    await expect(storedRow(key)).resolves.toBeUndefined();
  });

  it('any mix of spellings of k mailboxes reaches SES as k recipients, once each (property)', async () => {
    const spelling = fc.record({
      mailbox: fc.integer({ min: 0, max: 3 }),
      upper: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
      unicodeDomain: fc.boolean(),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(spelling, { minLength: 1, maxLength: 12 }), async (spellings) => {
        const n = id();
        const flip = (value: string, upper: boolean[]) =>
          [...value].map((char, i) => (upper[i % upper.length] ? char.toUpperCase() : char)).join('');
        const to = spellings.map(
          ({ mailbox, upper, unicodeDomain }) =>
            `${flip(`m${mailbox}-${n}`, upper)}@${flip(unicodeDomain ? 'bücher.example' : 'xn--bcher-kva.example', upper.slice(3))}`,
        );
        const result = await mail.send({ idempotencyKey: uniqueKey('p'), to, subject: `P ${n}`, text: 'T' });
        expect(result.status).toBe('sent');
        const mailboxes = new Set(spellings.map((s) => s.mailbox));
        const all = (await new SesMailbox(env('SES_ENDPOINT')).all()).filter(
          (email) => email.subject === `P ${n}`,
        );
        expect(all).toHaveLength(1);
        const recipients = all[0].destination.to.map((address) => address.toLowerCase());
        expect(recipients).toHaveLength(mailboxes.size);
        expect(new Set(recipients)).toEqual(
          new Set([...mailboxes].map((m) => `m${m}-${n}@xn--bcher-kva.example`)),
        );
      }),
      { seed, numRuns: 15 },
    );
  });
});
