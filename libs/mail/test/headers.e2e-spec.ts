import fc from 'fast-check';
import { MailService, MailValidationError, type SendMailInput } from '../src';
import {
  createMailTestApp,
  emailsTo,
  header,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
} from './support/mail-e2e.harness';

// An independent RFC 5322 address-list parser as the oracle (nodemailer's, installed with the SES emulator).
const addressparser = require('nodemailer/lib/addressparser') as (
  value: string,
) => Array<{ name: string; address?: string; group?: unknown[] }>;

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`headers.e2e: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

describe('headers that cannot be injected (MailService → SES emulator)', () => {
  let t: MailTestApp;
  let mail: MailService;

  beforeAll(async () => {
    t = await createMailTestApp();
    mail = t.app.get(MailService);
  });

  afterAll(() => t.close());

  const recorded = async (key: string) =>
    ((await t.dataSource.query('SELECT 1 FROM mail_ledger WHERE idempotency_key = $1', [key])) as unknown[])
      .length;

  async function refusal(input: SendMailInput): Promise<MailValidationError> {
    const error = await mail.send(input).then(
      () => undefined,
      (thrown: unknown) => thrown,
    );
    expect(error).toBeInstanceOf(MailValidationError);
    expect(await recorded(input.idempotencyKey)).toBe(0);
    return error as MailValidationError;
  }

  it('sends From and List-Unsubscribe as one mailbox and the given targets, serialized', async () => {
    const to = uniqueAddress('hdr');
    const result = await mail.send({
      idempotencyKey: uniqueKey('hdr'),
      to,
      from: '"Once, Inc." <digest@Once.Example>',
      subject: 'S',
      text: 'T',
      listUnsubscribe: {
        url: 'https://Bücher.example/u/ä?t=1',
        mailto: 'mailto:Unsub@Bücher.example?subject=unsub',
        oneClick: true,
      },
    });
    expect(result.status).toBe('sent');
    const [email] = await emailsTo(to);
    expect(addressparser(email.from)).toEqual([{ name: 'Once, Inc.', address: 'digest@once.example' }]);
    expect(header(email, 'List-Unsubscribe')).toBe(
      '<https://xn--bcher-kva.example/u/%C3%A4?t=1>, <mailto:Unsub@xn--bcher-kva.example?subject=unsub>',
    );
    expect(header(email, 'List-Unsubscribe-Post')).toBe('List-Unsubscribe=One-Click');
  });

  it('refuses injected unsubscribe targets and From tricks with a 400 naming the field', async () => {
    const base = { to: uniqueAddress('inj'), subject: 'S', text: 'T' };
    const cases: Array<[Partial<SendMailInput>, string]> = [
      [
        { listUnsubscribe: { url: 'https://once.example/u>, <https://evil.example/x' } },
        'listUnsubscribe.url',
      ],
      [{ listUnsubscribe: { url: 'https://once.example/u,https://evil.example/x' } }, 'listUnsubscribe.url'],
      [{ listUnsubscribe: { url: 'https://once.example/u x' } }, 'listUnsubscribe.url'],
      [{ listUnsubscribe: { mailto: 'u@once.example>, <https://evil.example/' } }, 'listUnsubscribe.mailto'],
      [{ from: 'Once\u2028Bcc: all@evil.example <digest@once.example>' }, 'from'],
      [{ from: '"security@bank.example" <evil@evil.example>' }, 'from'],
      [{ from: 'digest@once.example, all@evil.example' }, 'from'],
      [{ subject: 'Hi\u2029Bcc: all@evil.example' }, 'subject'],
      [{ subject: 'Hi\u0000' }, 'subject'],
    ];
    for (const [overrides, field] of cases) {
      const error = await refusal({ idempotencyKey: uniqueKey('inj'), ...base, ...overrides });
      expect(error.fields).toEqual([field]);
      expect(error.getStatus()).toBe(400);
      expect(error.getResponse()).toMatchObject({
        statusCode: 400,
        issues: [expect.stringContaining(field)],
      });
    }
    expect(await emailsTo(base.to)).toHaveLength(0);
  });

  it('whatever From and unsubscribe URL a caller passes, SES gets one mailbox and one target, or nothing (property)', async () => {
    const piece = fc.oneof(
      fc.constantFrom(
        '<',
        '>',
        ',',
        '"',
        '\\',
        '@',
        ' ',
        '\r\n',
        '\u2028',
        '\u0000',
        '=?UTF-8?B?PGE+?=',
        'ü',
        ';',
      ),
      fc.string({ maxLength: 5 }),
    );
    const junk = fc.array(piece, { maxLength: 4 }).map((parts) => parts.join(''));
    const seen = { sent: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(junk, junk, async (name, path) => {
        const to = uniqueAddress('prop');
        const input: SendMailInput = {
          idempotencyKey: uniqueKey('prop'),
          to,
          from: `${name} <digest@once.example>`,
          subject: 'S',
          text: 'T',
          listUnsubscribe: { url: `https://once.example/u/${path}` },
        };
        const outcome = await mail.send(input).catch((error: unknown) => error);
        const emails = await emailsTo(to);
        if (outcome instanceof MailValidationError) {
          expect(outcome.fields.every((field) => ['from', 'listUnsubscribe.url'].includes(field))).toBe(true);
          expect(emails).toHaveLength(0);
          expect(await recorded(input.idempotencyKey)).toBe(0);
          seen.refused++;
          return;
        }
        seen.sent++;
        expect(outcome).toMatchObject({ status: 'sent' });
        expect(emails).toHaveLength(1);
        const from = addressparser(emails[0].from);
        expect(from).toHaveLength(1);
        expect(from[0].address).toBe('digest@once.example');
        const targets = /^<([^<>\s,]+)>$/.exec(header(emails[0], 'List-Unsubscribe') ?? '');
        expect(new URL(targets![1]).host).toBe('once.example');
      }),
      { seed, numRuns: 40 },
    );
    console.log(`headers.e2e property: ${seen.sent} sent, ${seen.refused} refused`);
    expect(seen.sent).toBeGreaterThan(0);
    expect(seen.refused).toBeGreaterThan(0);
  });
});
