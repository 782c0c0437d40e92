import { OwnRedisServer, waitFor } from '@once/testing';
import { AdminErrorReporter, MailService } from '../src';
import {
  createMailTestApp,
  emailsTo,
  header,
  type MailTestApp,
  uniqueAddress,
  uniqueKey,
  waitForEmails,
} from './support/mail-e2e.harness';

/** The same error (message and stack) each time, so it has one fingerprint. */
const redisDown = () => new Error('ECONNREFUSED 127.0.0.1: redis is down');

describe('admin error mail while Redis is down (own redis-server, SES emulator)', () => {
  let server: OwnRedisServer;
  let t: MailTestApp;
  let reporter: AdminErrorReporter;
  const admin = uniqueAddress('admin-noredis');
  const WINDOW_MS = 15 * 60_000;
  const BUDGET = 10;
  // A window of its own in the shared ledger, a minute in.
  let now = new Date(Date.UTC(2032, 0, 1) + Math.floor(Math.random() * 100_000) * WINDOW_MS + 60_000);

  beforeAll(async () => {
    server = await OwnRedisServer.start();
    t = await createMailTestApp(
      {
        rateLimit: {
          maxSendRate: 50,
          burst: 1,
          perRecipient: { limit: 10, windowMs: 3_600_000 },
          maxWaitMs: 5_000,
        },
        adminErrors: {
          recipients: [admin],
          appName: 'scheduler',
          appVersion: '1.0.0',
          windowMs: WINDOW_MS,
          budget: { mails: BUDGET, windowMs: WINDOW_MS },
        },
        clock: () => now,
      },
      {},
      { redisUrl: server.url },
    );
    reporter = t.app.get(AdminErrorReporter);
  });

  afterAll(async () => {
    await t?.close();
    await server?.stop();
  });

  it('mails the report through an in-process budget, while ordinary mail fails retryable', async () => {
    const before = await reporter.reportJobFailure(new Error('warm-up before the outage'), {
      job: 'warm-up',
    });
    expect(before.status).toBe('sent');

    await server.kill();

    const ordinary = await t.app
      .get(MailService)
      .send({ idempotencyKey: uniqueKey('noredis'), to: uniqueAddress('user'), subject: 'S', text: 'T' });
    expect(ordinary).toMatchObject({
      status: 'failed',
      retryable: true,
      error: expect.stringContaining('rate limiter unavailable'),
    });

    // Twice from one call site: one fingerprint. Without Redis this process throttles it (and the
    // ledger key would still allow one mail per fingerprint and window).
    const reports = [];
    for (let i = 0; i < 2; i++)
      reports.push(await reporter.reportJobFailure(redisDown(), { job: 'daily-digest' }));
    expect(reports.map((report) => report.status)).toEqual(['sent', 'throttled']);
    const emails = await waitForEmails(admin, 2);
    expect(emails.some((email) => email.subject.includes('redis is down'))).toBe(true);
    expect(await emailsTo(admin)).toHaveLength(2);
  });

  it('keeps the budget per process while Redis stays down, summarises the rest, and sends that summary once Redis is back', async () => {
    const words =
      'alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu'.split(
        ' ',
      );
    const statuses: string[] = [];
    for (const word of words) {
      statuses.push(
        (await reporter.reportJobFailure(new Error(`storm ${word}`), { job: `storm-${word}` })).status,
      );
    }
    // The in-process budget counts this window's mails since Redis went down (the previous test sent one).
    const sent = statuses.filter((status) => status === 'sent').length;
    expect(sent).toBe(BUDGET - 1);
    expect(statuses.filter((status) => status === 'summarised')).toHaveLength(words.length - sent);
    expect(await emailsTo(admin)).toHaveLength(2 + sent);

    await server.restart();
    await waitFor('the client to reconnect', () => (t.redis.status === 'ready' ? true : undefined), {
      timeoutMs: 30_000,
    });
    const stormWindow = new Date(now.getTime() - (now.getTime() % WINDOW_MS)).toISOString();
    now = new Date(now.getTime() + WINDOW_MS);
    const after = [];
    for (let i = 0; i < 2; i++)
      after.push(await reporter.reportJobFailure(new Error('after the restart'), { job: 'restarted' }));
    // The Redis throttle is back: the second occurrence is only counted.
    expect(after.map((report) => report.status)).toEqual(['sent', 'throttled']);
    await reporter.flush();
    const summaries = (await emailsTo(admin)).filter((email) =>
      (header(email, 'X-Once-Key') ?? '').startsWith('admin-error-summary:'),
    );
    expect(summaries).toHaveLength(1);
    expect(header(summaries[0], 'X-Once-Key')).toMatch(
      new RegExp(`^admin-error-summary:${stormWindow.replace(/\./g, '\\.')}:process-[0-9a-f]{8}:1$`),
    );
    expect(summaries[0].body.text).toContain(
      `${words.length - sent} more distinct errors (${words.length - sent} occurrences) were counted but not mailed.`,
    );
  });
});
