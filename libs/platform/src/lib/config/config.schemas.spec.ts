import fc from 'fast-check';
import {
  dedupEnvIssues,
  dedupEnvSchema,
  mailEnvSchema,
  schedulesEnvSchema,
  urlVariable,
} from './config.schemas';

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

describe('dedupEnvSchema DEDUP_REDIS_ONLY_SCOPES', () => {
  it('defaults to send-email, parses a comma list (trimmed) and takes none as no scope', () => {
    expect(dedupEnvSchema.parse({}).DEDUP_REDIS_ONLY_SCOPES).toEqual(['send-email']);
    expect(
      dedupEnvSchema.parse({ DEDUP_REDIS_ONLY_SCOPES: ' send-email, sms ' }).DEDUP_REDIS_ONLY_SCOPES,
    ).toEqual(['send-email', 'sms']);
    expect(dedupEnvSchema.parse({ DEDUP_REDIS_ONLY_SCOPES: 'none' }).DEDUP_REDIS_ONLY_SCOPES).toEqual([]);
    expect(dedupEnvSchema.parse({ DEDUP_REDIS_ONLY_SCOPES: ' none ' }).DEDUP_REDIS_ONLY_SCOPES).toEqual([]);
  });

  it('refuses a scope the dedup lib would refuse and an empty entry, naming the variable and the entry', () => {
    const messages = (value: string) =>
      dedupEnvSchema
        .safeParse({ DEDUP_REDIS_ONLY_SCOPES: value })
        .error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    expect(messages('send-email,a:b')).toEqual([
      expect.stringMatching(/^DEDUP_REDIS_ONLY_SCOPES: entry 2 of 2 /),
    ]);
    expect(messages('send-email,,sms')).toEqual(['DEDUP_REDIS_ONLY_SCOPES: entry 2 of 3 is empty']);
    expect(messages(' ')).toEqual(['DEDUP_REDIS_ONLY_SCOPES: entry 1 of 1 is empty']);
    expect(messages('sms,sms')).toEqual(['DEDUP_REDIS_ONLY_SCOPES: entry 2 of 2 repeats entry 1']);
  });
});

describe('dedupEnvSchema DEDUP_REDIS_CLUSTER_NODES', () => {
  const messages = (value: string) =>
    dedupEnvSchema
      .safeParse({ DEDUP_REDIS_CLUSTER_NODES: value })
      .error?.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);

  it('is unset by default: dedup stays on REDIS_URL', () => {
    expect(dedupEnvSchema.parse({}).DEDUP_REDIS_CLUSTER_NODES).toBeUndefined();
  });

  it('parses host:port seeds (names, IPv4, bracketed IPv6), trimming blanks around entries', () => {
    expect(
      dedupEnvSchema.parse({
        DEDUP_REDIS_CLUSTER_NODES: ' 127.0.0.1:7000, Redis-1.cache.internal:7001,[::1]:7002,redis_2:6379',
      }).DEDUP_REDIS_CLUSTER_NODES,
    ).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: 'redis-1.cache.internal', port: 7001 },
      { host: '::1', port: 7002 },
      { host: 'redis_2', port: 6379 },
    ]);
  });

  it('refuses empty entries, bad ports, URLs and duplicates, naming the variable and the entry', () => {
    expect(messages('127.0.0.1:7000,,127.0.0.1:7001')).toEqual([
      'DEDUP_REDIS_CLUSTER_NODES: entry 2 of 3 is empty',
    ]);
    expect(messages('127.0.0.1:7000,')).toEqual(['DEDUP_REDIS_CLUSTER_NODES: entry 2 of 2 is empty']);
    expect(messages('127.0.0.1:0')).toEqual([
      'DEDUP_REDIS_CLUSTER_NODES: entry 1 of 1 has a port outside 1-65535',
    ]);
    expect(messages('127.0.0.1:70000')).toEqual([
      'DEDUP_REDIS_CLUSTER_NODES: entry 1 of 1 has a port outside 1-65535',
    ]);
    for (const value of [
      '127.0.0.1',
      '127.0.0.1:',
      'cache:port',
      'cache :7000',
      '::1:7000',
      'redis://cache:7000',
    ])
      expect(messages(value)).toEqual([
        'DEDUP_REDIS_CLUSTER_NODES: entry 1 of 1 must be host:port (a URL, TLS or a password is not supported)',
      ]);
    expect(messages('a:7000,b:7000,A:7000,b:7001')).toEqual([
      'DEDUP_REDIS_CLUSTER_NODES: entry 3 of 4 repeats entry 1',
    ]);
    expect(messages(',x:1,x:1')).toEqual([
      'DEDUP_REDIS_CLUSTER_NODES: entry 1 of 3 is empty',
      'DEDUP_REDIS_CLUSTER_NODES: entry 3 of 3 repeats entry 2',
    ]);
  });

  it('never quotes an entry (a mistaken URL may carry a password)', () => {
    const shown = JSON.stringify(messages('rediss://ops:Pa55-w0rd-secret@cache:7000,cache:7001'));
    expect(shown).not.toContain('Pa55-w0rd-secret');
    expect(shown).not.toContain('cache');
  });

  it('is only allowed with a store that uses Redis', () => {
    const nodes = [{ host: '127.0.0.1', port: 7000 }];
    expect(dedupEnvIssues({ DEDUP_STORE: 'redis', DEDUP_REDIS_CLUSTER_NODES: nodes })).toEqual([]);
    expect(dedupEnvIssues({ DEDUP_STORE: 'redis+postgres', DEDUP_REDIS_CLUSTER_NODES: nodes })).toEqual([]);
    expect(dedupEnvIssues({ DEDUP_STORE: 'postgres' })).toEqual([]);
    expect(dedupEnvIssues({ DEDUP_STORE: 'postgres', DEDUP_REDIS_CLUSTER_NODES: nodes })).toEqual([
      {
        variable: 'DEDUP_REDIS_CLUSTER_NODES',
        message: expect.stringMatching(/needs DEDUP_STORE redis or redis\+postgres.*DEDUP_STORE postgres/),
      },
    ]);
  });
});
