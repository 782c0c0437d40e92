import { SESv2Client } from '@aws-sdk/client-sesv2';
import { resolveMailOptions } from './mail.options';

const redis = { eval: () => undefined } as never;

describe('resolveMailOptions', () => {
  it('applies defaults', () => {
    const options = resolveMailOptions({
      ses: { region: 'eu-west-1' },
      redis,
      defaultFrom: 'once@example.com',
    });
    expect(options).toMatchObject({
      redisKeyPrefix: 'once:mail:',
      staleAfterMs: 20_000,
      abandonedAfterMs: 35_000,
      rateLimit: {
        fallbackMaxSendRate: 1,
        burst: 1,
        perRecipient: { limit: 10, windowMs: 3_600_000 },
        maxWaitMs: 30_000,
      },
      throttleRetry: { maxAttempts: 4 },
      statementBatching: { claimWindowMs: 2, outcomeWindowMs: 5 },
    });
    expect(options.rateLimit.maxSendRate).toBeUndefined();
    expect(options.clock()).toBeInstanceOf(Date);
  });

  it('accepts a client instead of config', () => {
    const client = new SESv2Client({ region: 'us-east-1' });
    expect(resolveMailOptions({ ses: { client }, redis, defaultFrom: 'a@b.io' }).ses).toEqual({ client });
    client.destroy();
  });

  it('names every bad field', () => {
    expect(() =>
      resolveMailOptions({
        ses: { region: 'us-east-1' },
        redis,
        defaultFrom: 'x',
        rateLimit: { maxSendRate: -1 },
        statementBatching: { claimWindowMs: -1, outcomeWindowMs: 101 },
        adminErrors: { recipients: ['not-an-email'], appName: 'api', appVersion: '1' },
      }),
    ).toThrow(
      /defaultFrom[\s\S]*rateLimit\.maxSendRate[\s\S]*statementBatching\.claimWindowMs[\s\S]*statementBatching\.outcomeWindowMs[\s\S]*adminErrors\.recipients\.0/,
    );
  });

  it('derives the pending windows from the SES timeout and the rate-limit wait', () => {
    const options = resolveMailOptions({
      ses: { region: 'us-east-1', requestTimeoutMs: 8_000 },
      redis,
      defaultFrom: 'a@b.io',
      rateLimit: { maxWaitMs: 2_000 },
    });
    expect(options).toMatchObject({ staleAfterMs: 13_000, abandonedAfterMs: 7_000 });
  });

  it('refuses a stale window shorter than an SES call can take', () => {
    expect(() =>
      resolveMailOptions({
        ses: { region: 'us-east-1' },
        redis,
        defaultFrom: 'a@b.io',
        staleAfterMs: 10_000,
      }),
    ).toThrow(/staleAfterMs must exceed the SES request timeout/);
  });

  it('takes the SES deadline for a user-supplied client too', () => {
    const client = new SESv2Client({ region: 'us-east-1' });
    const options = resolveMailOptions({
      ses: { client, requestTimeoutMs: 2_000 },
      redis,
      defaultFrom: 'a@b.io',
    });
    expect(options).toMatchObject({ sesRequestTimeoutMs: 2_000, staleAfterMs: 7_000 });
    expect(resolveMailOptions({ ses: { client }, redis, defaultFrom: 'a@b.io' }).sesRequestTimeoutMs).toBe(
      15_000,
    );
    client.destroy();
  });

  it('refuses a stale window that leaves less than the margin after the SES deadline', () => {
    const base = { ses: { region: 'us-east-1', requestTimeoutMs: 4_000 }, redis, defaultFrom: 'a@b.io' };
    expect(() => resolveMailOptions({ ...base, staleAfterMs: 4_999 })).toThrow(/by at least 1000 ms/);
    expect(resolveMailOptions({ ...base, staleAfterMs: 5_000 }).staleAfterMs).toBe(5_000);
  });

  it('refuses an abandoned window shorter than a rate-limit wait', () => {
    expect(() =>
      resolveMailOptions({
        ses: { region: 'us-east-1' },
        redis,
        defaultFrom: 'a@b.io',
        abandonedAfterMs: 30_000,
      }),
    ).toThrow(/abandonedAfterMs must exceed rateLimit.maxWaitMs/);
  });

  it('refuses a missing redis or ses', () => {
    expect(() => resolveMailOptions({ ses: { region: '' }, redis, defaultFrom: 'a@b.io' })).toThrow(/ses/);
    expect(() =>
      resolveMailOptions({ ses: { region: 'x' }, redis: {} as never, defaultFrom: 'a@b.io' }),
    ).toThrow(/redis/);
  });

  describe('From mailboxes are parsed at boot, as a send would', () => {
    const base = { ses: { region: 'us-east-1' }, redis, defaultFrom: 'Once <digest@once.example>' };
    const admin = { recipients: ['ops@once.example'], appName: 'api', appVersion: '1' };

    it.each([
      ['two mailboxes', 'a@once.example, b@once.example'],
      ['a header injection', 'Once <digest@once.example>\r\nBcc: all@evil.example'],
      ['a line separator', 'Once\u2028 <digest@once.example>'],
      ['an unquoted special in the name', 'Once, Inc <digest@once.example>'],
      ['no domain', 'digest@'],
      ['a bidi override', 'Once \u202e <digest@once.example>'],
      ['an IP literal', 'digest@[127.0.0.1]'],
    ])('refuses a defaultFrom with %s, naming the option', (_label, from) => {
      expect(() => resolveMailOptions({ ...base, defaultFrom: from })).toThrow(
        /Invalid MailModule options:[\s\S]*- defaultFrom: /,
      );
    });

    it('refuses a bad adminErrors.from, naming the option', () => {
      expect(() =>
        resolveMailOptions({ ...base, adminErrors: { ...admin, from: 'Ops <ops@once.example> x' } }),
      ).toThrow(/- adminErrors\.from: /);
    });

    it('refuses admin recipients a send would refuse, naming each', () => {
      expect(() =>
        resolveMailOptions({
          ...base,
          adminErrors: { ...admin, recipients: ['ops@once.example', 'ops@localhost'] },
        }),
      ).toThrow(/- adminErrors\.recipients\.1: /);
    });

    it('names every bad From at once', () => {
      expect(() =>
        resolveMailOptions({ ...base, defaultFrom: 'nobody', adminErrors: { ...admin, from: 'a@b@c' } }),
      ).toThrow(/defaultFrom[\s\S]*adminErrors\.from/);
    });

    it('accepts display names, quoted names, RFC 2047-worthy names and IDN domains', () => {
      for (const from of [
        'digest@once.example',
        'Once Digest <digest@once.example>',
        '"Once, Inc" <digest@once.example>',
        'Ünïcødé Once <digest@bücher.example>',
      ]) {
        expect(
          resolveMailOptions({
            ...base,
            defaultFrom: from,
            adminErrors: { ...admin, from, recipients: ['ops@bücher.example'] },
          }).defaultFrom,
        ).toBe(from);
      }
    });
  });
  describe('adminErrors.budget', () => {
    const base = { ses: { region: 'us-east-1' }, redis, defaultFrom: 'once@example.com' };
    const admin = { recipients: ['ops@once.example'], appName: 'api', appVersion: '1' };

    it('defaults to 10 mails per 15 minutes and a top-10 summary', () => {
      expect(resolveMailOptions({ ...base, adminErrors: admin }).adminErrors?.budget).toEqual({
        mails: 10,
        windowMs: 15 * 60_000,
        topFingerprints: 10,
      });
    });

    it('refuses a budget that would silence or flood alerting, naming each field', () => {
      expect(() =>
        resolveMailOptions({
          ...base,
          adminErrors: { ...admin, budget: { mails: 0, windowMs: 10, topFingerprints: 1_000 } },
        }),
      ).toThrow(
        /adminErrors\.budget\.mails[\s\S]*adminErrors\.budget\.windowMs[\s\S]*adminErrors\.budget\.topFingerprints/,
      );
      expect(() =>
        resolveMailOptions({ ...base, adminErrors: { ...admin, budget: { mails: 1.5 } } }),
      ).toThrow(/adminErrors\.budget\.mails/);
    });
  });
});
