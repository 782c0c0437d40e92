import { Logger } from '@nestjs/common';
import type { MailService } from '../mail.service';
import { type MailModuleOptions, resolveMailOptions } from '../mail.options';
import type { MailSendResult, SendMailInput } from '../mail.types';
import { ADMIN_FALLBACK_BUDGET, currentLocalFallback } from '../rate-limit/local-fallback.budget';
import { AdminErrorReporter } from './admin-error.reporter';

/** Just enough of ioredis for the throttle script: a window lock and a counter. */
class FakeRedis {
  readonly store = new Map<string, number>();
  async eval(_script: string, _n: number, lockKey: string, counterKey: string): Promise<number> {
    if (!this.store.has(lockKey)) {
      this.store.set(lockKey, 1);
      const count = this.store.get(counterKey) ?? 0;
      this.store.delete(counterKey);
      return count;
    }
    this.store.set(counterKey, (this.store.get(counterKey) ?? 0) + 1);
    return -1;
  }
}

function setup(
  send: (input: SendMailInput) => Promise<MailSendResult>,
  overrides: Partial<MailModuleOptions> = {},
) {
  let now = new Date('2026-11-22T10:00:00.000Z');
  const redis = new FakeRedis();
  const options = resolveMailOptions({
    ses: { region: 'us-east-1' },
    redis: redis as unknown as MailModuleOptions['redis'],
    defaultFrom: 'once@example.com',
    adminErrors: { recipients: ['ops@example.com'], appName: 'api', appVersion: '1.2.3', windowMs: 60_000 },
    clock: () => now,
    ...overrides,
  });
  const mail = { send: jest.fn(send) };
  const reporter = new AdminErrorReporter(options, mail as unknown as MailService);
  return { reporter, mail, redis, advance: (ms: number) => (now = new Date(now.getTime() + ms)) };
}

const sent = (input: SendMailInput): Promise<MailSendResult> =>
  Promise.resolve({
    status: 'sent',
    idempotencyKey: input.idempotencyKey,
    ledgerStatus: 'sent',
    sesMessageId: 'ses-1',
    attempts: 1,
  });

/** The same bug each time: same message, same stack. */
function boom(): Error {
  return Object.assign(new Error('database exploded'), {
    stack:
      'Error: database exploded\n    at Repo.save (/app/dist/repo.js:10:5)\n    at Digest.run (/app/dist/digest.js:20:7)',
  });
}

describe('AdminErrorReporter', () => {
  beforeAll(() => Logger.overrideLogger(false));

  it('mails once per fingerprint and window, then counts the rest into the next mail', async () => {
    const { reporter, mail, advance } = setup(sent);
    const failOnce = () => reporter.report(boom(), { source: 'worker', details: { handler: 'send-email' } });
    const results = [];
    for (let i = 0; i < 3; i++) results.push(await failOnce());
    const [first] = results;

    expect(results.map((result) => result.status)).toEqual(['sent', 'throttled', 'throttled']);
    expect(first.idempotencyKey).toBe(`admin-error:${first.fingerprint}:2026-11-22T10:00:00.000Z`);
    expect(mail.send).toHaveBeenCalledTimes(1);

    advance(60_000);
    const next = await failOnce();
    expect(next).toMatchObject({ status: 'sent', moreOccurrences: 2, fingerprint: first.fingerprint });
    expect(mail.send).toHaveBeenCalledTimes(2);
    expect(mail.send.mock.calls[1][0].text).toContain('2 more occurrence(s) of this error');
    expect(mail.send.mock.calls[1][0].to).toEqual(['ops@example.com']);
  });

  it('never throws and never reports its own failure', async () => {
    const { reporter, mail } = setup(() => Promise.reject(new Error('SES and Postgres are both down')));
    await expect(reporter.report(boom(), { source: 'scheduler' })).resolves.toEqual({ status: 'failed' });
    expect(mail.send).toHaveBeenCalledTimes(1);
  });

  it('keeps going without Redis, relying on the ledger key', async () => {
    const { reporter, mail, redis } = setup(sent);
    redis.eval = () => Promise.reject(new Error('ECONNREFUSED'));
    await expect(reporter.report(boom())).resolves.toMatchObject({ status: 'sent' });
    expect(mail.send).toHaveBeenCalledTimes(1);
  });

  it('sends inside the in-process fallback budget, so the limiter may grant without Redis', async () => {
    const budgets: unknown[] = [];
    const { reporter, redis } = setup((input) => {
      budgets.push(currentLocalFallback());
      return sent(input);
    });
    redis.eval = () => new Promise(() => undefined);
    (redis as unknown as { status: string }).status = 'reconnecting';
    await expect(reporter.report(boom())).resolves.toMatchObject({ status: 'sent' });
    expect(budgets).toEqual([ADMIN_FALLBACK_BUDGET]);
  });

  it('only logs when admin mail is not configured', async () => {
    const { reporter, mail } = setup(sent, { adminErrors: undefined });
    await expect(reporter.reportJobFailure(boom(), { job: 'daily-digest' })).resolves.toEqual({
      status: 'disabled',
    });
    expect(mail.send).not.toHaveBeenCalled();
  });

  it('tracks reports in flight until flushed', async () => {
    let release!: () => void;
    const { reporter } = setup((input) => new Promise((resolve) => (release = () => resolve(sent(input)))));
    let done = false;
    void reporter
      .reportWorkerFailure(boom(), { handler: 'jobs', queue: 'once-jobs', messageId: 'm-1' })
      .then(() => (done = true));
    const flushed = reporter.flush();
    await new Promise((resolve) => setImmediate(resolve));
    expect(done).toBe(false);
    release();
    await flushed;
    expect(done).toBe(true);
  });
});
