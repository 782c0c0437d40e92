import { MailValidationError } from '../mail.errors';
import { IDEMPOTENCY_KEY_HEADER, prepareMail } from './mail-message.builder';

const base = {
  idempotencyKey: 'digest:2026-11-22:user:42',
  to: 'ada@example.com',
  subject: 'Your digest',
  text: 'Hello',
};

function issuesOf(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(MailValidationError);
    return (error as MailValidationError).message;
  }
  throw new Error('expected a MailValidationError');
}

describe('prepareMail', () => {
  it('puts the idempotency key first, then List-Unsubscribe, List-Unsubscribe-Post and custom headers', () => {
    const mail = prepareMail(
      {
        ...base,
        headers: { 'X-Campaign': 'digest' },
        listUnsubscribe: { url: 'https://once.example/u?t=1', mailto: 'unsub@once.example', oneClick: true },
      },
      'digest@once.example',
    );
    expect(mail.from).toBe('digest@once.example');
    expect(mail.to).toEqual(['ada@example.com']);
    expect(mail.headers).toEqual([
      { name: IDEMPOTENCY_KEY_HEADER, value: base.idempotencyKey },
      { name: 'List-Unsubscribe', value: '<https://once.example/u?t=1>, <mailto:unsub@once.example>' },
      { name: 'List-Unsubscribe-Post', value: 'List-Unsubscribe=One-Click' },
      { name: 'X-Campaign', value: 'digest' },
    ]);
  });

  it('gives equal content the same hash and different content another', () => {
    const a = prepareMail(base, 'f@x.io');
    expect(prepareMail({ ...base }, 'f@x.io').contentHash).toBe(a.contentHash);
    expect(prepareMail({ ...base, text: 'Hello!' }, 'f@x.io').contentHash).not.toBe(a.contentHash);
  });

  it('refuses header injection, reserved headers and bad unsubscribe options', () => {
    expect(issuesOf(() => prepareMail({ ...base, subject: 'Hi\r\nBcc: x@evil.io' }, 'f@x.io'))).toContain(
      'subject',
    );
    expect(
      issuesOf(() => prepareMail({ ...base, headers: { 'X-A': 'v\r\nBcc: x@evil.io' } }, 'f@x.io')),
    ).toContain('headers');
    expect(issuesOf(() => prepareMail({ ...base, headers: { 'Message-ID': '<1@x>' } }, 'f@x.io'))).toContain(
      'reserved',
    );
    expect(issuesOf(() => prepareMail({ ...base, headers: { 'x-once-key': 'other' } }, 'f@x.io'))).toContain(
      'reserved',
    );
    expect(
      issuesOf(() =>
        prepareMail({ ...base, listUnsubscribe: { mailto: 'u@x.io', oneClick: true } }, 'f@x.io'),
      ),
    ).toContain('one-click');
    expect(
      issuesOf(() => prepareMail({ ...base, listUnsubscribe: { url: 'http://x.io/u' } }, 'f@x.io')),
    ).toContain('https');
  });

  it('refuses bad keys and addresses', () => {
    expect(issuesOf(() => prepareMail({ ...base, idempotencyKey: 'has space' }, 'f@x.io'))).toContain(
      'idempotencyKey',
    );
    expect(issuesOf(() => prepareMail({ ...base, idempotencyKey: '' }, 'f@x.io'))).toContain(
      'idempotencyKey',
    );
    expect(issuesOf(() => prepareMail({ ...base, to: 'not-an-address' }, 'f@x.io'))).toContain('to');
  });
});

describe('recipients', () => {
  it('sends one mail per mailbox: case and IDN spellings of one address are one recipient', () => {
    const mail = prepareMail(
      {
        ...base,
        to: ['x@example.com', 'X@EXAMPLE.COM', 'Ann@Bücher.de', 'ann@xn--bcher-kva.de', 'y@example.com'],
      },
      'f@x.io',
    );
    expect(mail.to).toEqual(['x@example.com', 'Ann@xn--bcher-kva.de', 'y@example.com']);
    expect(mail.recipientKeys).toEqual(['x@example.com', 'ann@xn--bcher-kva.de', 'y@example.com']);
  });

  it('refuses an address whose domain is not a hostname, naming its position', () => {
    const error = (() => {
      try {
        prepareMail({ ...base, to: ['x@example.com', 'y@localhost'] }, 'f@x.io');
      } catch (thrown) {
        return thrown as MailValidationError;
      }
      throw new Error('expected a MailValidationError');
    })();
    expect(error).toBeInstanceOf(MailValidationError);
    expect(error.fields).toEqual(['to.1']);
    expect(error.getStatus()).toBe(400);
    expect(error.message).toContain('hostname');
  });
});
