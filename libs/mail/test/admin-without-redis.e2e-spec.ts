import { OwnRedisServer, waitFor } from '@once/testing';
import { AdminErrorReporter, MailService } from '../src';
import { ADMIN_FALLBACK_BUDGET } from '../src/lib/rate-limit/local-fallback.budget';
import {
  createMailTestApp,
  emailsTo,
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
          windowMs: 15 * 60_000,
        },
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

    // Twice from one call site: one fingerprint. Without the Redis throttle the ledger key still
    // allows one mail per fingerprint and window.
    const reports = [];
    for (let i = 0; i < 2; i++)
      reports.push(await reporter.reportJobFailure(redisDown(), { job: 'daily-digest' }));
    expect(reports.map((report) => report.status)).toEqual(['sent', 'duplicate']);
    const emails = await waitForEmails(admin, 2);
    expect(emails.some((email) => email.subject.includes('redis is down'))).toBe(true);
    expect(await emailsTo(admin)).toHaveLength(2);
  });

  it('caps admin mail per process while Redis stays down, and uses Redis again once it is back', async () => {
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
    const sent = statuses.filter((status) => status === 'sent').length;
    // The budget counts every fallback grant in this process (the previous test used one).
    expect(sent).toBe(ADMIN_FALLBACK_BUDGET.limit - 1);
    expect(statuses.filter((status) => status === 'failed')).toHaveLength(words.length - sent);
    expect(await emailsTo(admin)).toHaveLength(2 + sent);

    await server.restart();
    await waitFor('the client to reconnect', () => (t.redis.status === 'ready' ? true : undefined), {
      timeoutMs: 30_000,
    });
    const after = [];
    for (let i = 0; i < 2; i++)
      after.push(await reporter.reportJobFailure(new Error('after the restart'), { job: 'restarted' }));
    // The Redis throttle is back: the second occurrence is only counted.
    expect(after.map((report) => report.status)).toEqual(['sent', 'throttled']);
  });
});
