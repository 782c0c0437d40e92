import fc from 'fast-check';
import { mailEnvSchema, schedulesEnvSchema, urlVariable } from './config.schemas';

describe('schedulesEnvSchema', () => {
  it('defaults to a 07:00 UTC digest and a reminder on the 1st at 09:00', () => {
    expect(schedulesEnvSchema.parse({})).toEqual({
      DIGEST_CRON: '0 7 * * *',
      REMINDER_CRON: '0 9 1 * *',
      SCHEDULER_TIMEZONE: 'UTC',
    });
  });

  it('accepts IANA zones and fixed offsets, and refuses unknown zones', () => {
    expect(schedulesEnvSchema.parse({ SCHEDULER_TIMEZONE: 'Europe/Berlin' }).SCHEDULER_TIMEZONE).toBe(
      'Europe/Berlin',
    );
    expect(schedulesEnvSchema.parse({ SCHEDULER_TIMEZONE: 'UTC+05:45' }).SCHEDULER_TIMEZONE).toBe(
      'UTC+05:45',
    );
    const refused = schedulesEnvSchema.safeParse({ SCHEDULER_TIMEZONE: 'Europe/Atlantis' });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]).toMatchObject({
      path: ['SCHEDULER_TIMEZONE'],
      message: expect.stringContaining('IANA time zone'),
    });
  });

  it('refuses a bad cron expression but accepts off', () => {
    expect(schedulesEnvSchema.parse({ REMINDER_CRON: 'off' }).REMINDER_CRON).toBe('off');
    expect(schedulesEnvSchema.safeParse({ DIGEST_CRON: 'every morning' }).success).toBe(false);
  });
});

describe('urlVariable', () => {
  const endpoint = urlVariable(['http:', 'https:']);

  it('refuses what is not a URL, another protocol, and (originOnly) anything beyond an origin', () => {
    const issue = (schema: typeof endpoint, value: string) =>
      schema.safeParse(value).error?.issues[0]?.message;
    expect(issue(endpoint, 'http://127.0.0.1:4566')).toBeUndefined();
    expect(issue(endpoint, 'HTTPS://Email.Example/')).toBeUndefined();
    expect(issue(endpoint, 'localhost:4566')).toBe('must be an http: or https: URL');
    expect(issue(endpoint, '127.0.0.1:4566')).toBe('not a valid URL');
    expect(issue(endpoint, 'http//127.0.0.1')).toBe('not a valid URL');
    expect(issue(urlVariable(['redis:', 'rediss:']), 'http://x')).toBe('must be a redis: or rediss: URL');
    const origin = urlVariable(['https:'], { originOnly: true });
    expect(issue(origin, 'https://site.example')).toBeUndefined();
    for (const value of ['https://site.example/x', 'https://site.example/?a', 'https://a:b@site.example']) {
      expect(issue(origin, value)).toMatch(/^must be an origin only/);
    }
  });

  it('never throws and never quotes the value, whatever the input (property)', () => {
    const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`config.schemas.spec urlVariable: fast-check seed ${seed}`);
    const database = urlVariable(['postgres:', 'postgresql:']);
    const origin = urlVariable(['http:', 'https:'], { originOnly: true });
    const input = fc.oneof(
      fc.string({ minLength: 12 }),
      fc.webUrl({ withQueryParameters: true, withFragments: true }),
      fc
        .tuple(
          fc.constantFrom('postgres', 'postgresql', 'mysql', 'http', 'https', 'redis', ''),
          fc.constantFrom('://', ':/', ':', '//'),
          fc.stringMatching(/^[a-z0-9:@%[\]. /-]{12,40}$/),
        )
        .map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(input, (value) => {
        for (const schema of [database, origin]) {
          const result = schema.safeParse(value);
          const shown = JSON.stringify(result.error?.issues.map((issue) => issue.message) ?? []);
          expect(shown).not.toContain(value);
          if (result.success) expect(URL.canParse(value)).toBe(true);
        }
      }),
      { seed, numRuns: 300 },
    );
  });
});

describe('mailEnvSchema admin error budget', () => {
  it('defaults to 10 admin mails per 15 minutes and refuses a budget of 0 or a sub-second window', () => {
    const parsed = mailEnvSchema.parse({});
    expect(parsed.ADMIN_ERROR_MAILS_PER_WINDOW).toBe(10);
    expect(parsed.ADMIN_ERROR_WINDOW_MS).toBe(900_000);
    expect(mailEnvSchema.parse({ ADMIN_ERROR_MAILS_PER_WINDOW: '25' }).ADMIN_ERROR_MAILS_PER_WINDOW).toBe(25);
    expect(mailEnvSchema.safeParse({ ADMIN_ERROR_MAILS_PER_WINDOW: '0' }).success).toBe(false);
    expect(mailEnvSchema.safeParse({ ADMIN_ERROR_WINDOW_MS: '10' }).success).toBe(false);
  });
});
