import { Logger } from '@nestjs/common';
import type { MailService } from '../mail.service';
import { type MailModuleOptions, resolveMailOptions } from '../mail.options';
import type { MailSendResult, SendMailInput } from '../mail.types';
import { currentLocalFallback, recipientCapApplies } from '../rate-limit/local-fallback.budget';
import { AdminErrorReporter, SUMMARY_GRACE_MS } from './admin-error.reporter';

/**
 * The admin budget scripts over Maps (no TTLs): dispatched on the script, with the script's KEYS and
 * ARGV. Shared by reporters to stand for several processes on one Redis.
 */
class FakeRedis {
  status = 'ready';
  readonly strings = new Map<string, number>();
  readonly hashes = new Map<string, Map<string, string>>();
  readonly pending = new Set<number>();
  async eval(script: string, n: number, ...rest: Array<string | number>): Promise<unknown> {
    const keys = rest.slice(0, n).map(String);
    const argv = rest.slice(n).map(String);
    const hash = (key: string) => this.hashes.get(key) ?? this.hashes.set(key, new Map()).get(key)!;
    const incr = (key: string) => this.strings.set(key, (this.strings.get(key) ?? 0) + 1).get(key)!;
    if (script.includes('cjson')) {
      const [counts, meta, overflowCount, , groups, restores] = keys;
      if (incr(restores) > Number(argv[2])) return 0;
      const payload = JSON.parse(argv[3]) as {
        counts: Array<[string, number, string?]>;
        groups: Array<[string, number]>;
        extra: number;
      };
      for (const [fingerprint, count, details] of payload.counts) {
        hash(counts).set(fingerprint, String(Number(hash(counts).get(fingerprint) ?? 0) + count));
        if (details && !hash(meta).has(fingerprint)) hash(meta).set(fingerprint, details);
      }
      for (const [group, count] of payload.groups)
        hash(groups).set(group, String(Number(hash(groups).get(group) ?? 0) + count));
      this.strings.set(overflowCount, (this.strings.get(overflowCount) ?? 0) + payload.extra);
      this.pending.add(Number(argv[0]));
      return 1;
    }
    if (script.includes('ZRANGEBYSCORE')) {
      const [lock, unreported, used, counts, meta, , overflowCount, , groups] = keys;
      const due = [...this.pending].filter((start) => start < Number(argv[7])).map(String);
      if (this.strings.has(lock)) {
        incr(unreported);
        return ['throttled', 0, due];
      }
      const spent = incr(used);
      if (spent <= Number(argv[2])) {
        this.strings.set(lock, 1);
        const count = this.strings.get(unreported) ?? 0;
        this.strings.delete(unreported);
        return ['mail', count, due];
      }
      if (hash(counts).has(argv[4]) || hash(counts).size < Number(argv[6])) {
        hash(counts).set(argv[4], String(Number(hash(counts).get(argv[4]) ?? 0) + 1));
        if (!hash(meta).has(argv[4])) hash(meta).set(argv[4], argv[5]);
      } else incr(overflowCount);
      if (hash(groups).has(argv[8]) || hash(groups).size < Number(argv[9]))
        hash(groups).set(argv[8], String(Number(hash(groups).get(argv[8]) ?? 0) + 1));
      this.pending.add(Number(argv[7]));
      return ['summarised', spent - Number(argv[2]), due];
    }
    const [counts, meta, , overflowCount, , seq, groups] = keys;
    this.pending.delete(Number(argv[0]));
    if (!this.hashes.get(counts)?.size && !this.strings.get(overflowCount)) return [0];
    const flat = (key: string) => [...(this.hashes.get(key) ?? [])].flat();
    const reply = [
      incr(seq),
      flat(counts),
      flat(meta),
      0,
      this.strings.get(overflowCount) ?? 0,
      flat(groups),
    ];
    for (const key of [counts, meta, groups]) this.hashes.delete(key);
    this.strings.delete(overflowCount);
    return reply;
  }
}

const START = new Date('2026-11-22T10:00:00.000Z');

function setup(
  send: (input: SendMailInput) => Promise<MailSendResult>,
  overrides: Partial<MailModuleOptions> = {},
  shared?: { redis: FakeRedis; clock: { now: Date } },
) {
  const clock = shared?.clock ?? { now: START };
  const redis = shared?.redis ?? new FakeRedis();
  const options = resolveMailOptions({
    ses: { region: 'us-east-1' },
    redis: redis as unknown as MailModuleOptions['redis'],
    defaultFrom: 'once@example.com',
    adminErrors: {
      recipients: ['ops@example.com'],
      appName: 'api',
      appVersion: '1.2.3',
      windowMs: 60_000,
      redact: { secrets: ['hunter2-from-config'] },
      budget: { mails: 3, windowMs: 60_000, topFingerprints: 2 },
    },
    clock: () => clock.now,
    ...overrides,
  });
  const mail = { send: jest.fn(send) };
  const reporter = new AdminErrorReporter(options, mail as unknown as MailService);
  const advance = (ms: number) => (clock.now = new Date(clock.now.getTime() + ms));
  return { reporter, mail, redis, clock, advance };
}

/** A distinct error per job name (the scope is part of the fingerprint); the same stack each time. */
const jobFailure = (reporter: AdminErrorReporter, job: string, message = 'job failed') =>
  reporter.reportJobFailure(
    Object.assign(new Error(message), { stack: `Error: ${message}\n    at Job.run (/app/dist/job.js:1:1)` }),
    { job },
  );

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
    const { reporter, mail, advance } = setup(sent, {
      adminErrors: { recipients: ['ops@example.com'], appName: 'api', appVersion: '1.2.3', windowMs: 60_000 },
    });
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

  it('keeps going without Redis, throttling in this process', async () => {
    const { reporter, mail, redis } = setup(sent);
    redis.eval = () => Promise.reject(new Error('ECONNREFUSED'));
    await expect(reporter.report(boom())).resolves.toMatchObject({ status: 'sent' });
    await expect(reporter.report(boom())).resolves.toMatchObject({ status: 'throttled' });
    expect(mail.send).toHaveBeenCalledTimes(1);
  });

  it('sends outside the per-recipient cap and inside an in-process fallback budget (the admin budget and its summaries)', async () => {
    const policies: unknown[] = [];
    const { reporter, redis } = setup((input) => {
      policies.push({ fallback: currentLocalFallback(), recipientCap: recipientCapApplies() });
      return sent(input);
    });
    redis.eval = () => new Promise(() => undefined);
    redis.status = 'reconnecting';
    await expect(reporter.report(boom())).resolves.toMatchObject({ status: 'sent' });
    expect(policies).toEqual([{ fallback: { limit: 5, windowMs: 60_000 }, recipientCap: false }]);
    expect(recipientCapApplies()).toBe(true);
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

describe('AdminErrorReporter budget and summary', () => {
  let warn: jest.SpyInstance;
  beforeAll(() => Logger.overrideLogger(false));
  beforeEach(() => (warn = jest.spyOn(Logger.prototype, 'warn')));
  afterEach(() => {
    warn.mockRestore();
    jest.useRealTimers();
  });

  const summaries = (mail: { send: jest.Mock }) =>
    (mail.send.mock.calls as Array<[SendMailInput]>)
      .map(([input]) => input)
      .filter((input) => input.idempotencyKey.startsWith('admin-error-summary:'));

  it('past the budget counts distinct errors into one summary, sent at the first report after the window, and mails the new error', async () => {
    const { reporter, mail, advance } = setup(sent);
    const statuses = [];
    for (const job of ['a', 'b', 'c', 'd', 'e', 'f']) statuses.push((await jobFailure(reporter, job)).status);
    // Occurrences of a summarised fingerprint add to its count; of a mailed one, to its next mail.
    statuses.push((await jobFailure(reporter, 'e')).status, (await jobFailure(reporter, 'a')).status);
    expect(statuses).toEqual([
      'sent',
      'sent',
      'sent',
      'summarised',
      'summarised',
      'summarised',
      'summarised',
      'throttled',
    ]);
    expect(mail.send).toHaveBeenCalledTimes(3);
    const exhausted = warn.mock.calls.filter(([entry]) =>
      /budget used up/.test((entry as { msg: string }).msg),
    );
    expect(exhausted).toHaveLength(1);

    advance(60_000);
    await expect(jobFailure(reporter, 'g')).resolves.toMatchObject({ status: 'sent' });
    await reporter.flush();
    const [summary, ...more] = summaries(mail);
    expect(more).toEqual([]);
    expect(summary).toMatchObject({
      idempotencyKey: 'admin-error-summary:2026-11-22T10:00:00.000Z',
      to: ['ops@example.com'],
    });
    expect(summary.subject).toBe('[Once] api: 3 more distinct errors not mailed (budget 3 per 1 min)');
    expect(summary.text).toContain('3 more distinct errors (4 occurrences) were counted but not mailed.');
    expect(summary.text).toContain('Top 2 fingerprints by count:');
    expect(summary.text).toMatch(/ {5}2 {2}[0-9a-f]{16} {2}Error in scheduler e: job failed\n/);
    expect(summary.text).toContain('… and 1 more fingerprint.');
    expect(mail.send).toHaveBeenCalledTimes(5);
  });

  it('never puts a raw secret into the summary', async () => {
    const { reporter, mail, advance } = setup(sent);
    for (const job of ['a', 'b', 'c']) await jobFailure(reporter, job);
    await jobFailure(
      reporter,
      'token=abcdef123456 job',
      'login failed for postgres://u:hunter2-from-config@db password=s3cr3t-value',
    );
    advance(60_000);
    await jobFailure(reporter, 'next');
    await reporter.flush();
    const [summary] = summaries(mail);
    expect(summary.text).toContain('[REDACTED]');
    for (const secret of ['hunter2-from-config', 's3cr3t-value', 'abcdef123456']) {
      expect(`${summary.subject}\n${summary.text}`).not.toContain(secret);
    }
  });

  it('sends the summary at the window end by timer when no later error comes', async () => {
    jest.useFakeTimers({ now: START });
    const { reporter, mail, advance } = setup(sent);
    for (const job of ['a', 'b', 'c', 'd']) await jobFailure(reporter, job);
    advance(30_000);
    await jest.advanceTimersByTimeAsync(30_000);
    await jobFailure(reporter, 'e');
    expect(summaries(mail)).toHaveLength(0);
    advance(30_000);
    await jest.advanceTimersByTimeAsync(30_000 + SUMMARY_GRACE_MS - 1);
    expect(summaries(mail)).toHaveLength(0);
    await jest.advanceTimersByTimeAsync(1);
    await reporter.flush();
    expect(summaries(mail).map((input) => input.text.split('\n')[1])).toEqual([
      '2 more distinct errors (2 occurrences) were counted but not mailed.',
    ]);
  });

  it('at shutdown sends what it counted in the open window, marked partial', async () => {
    const { reporter, mail } = setup(sent);
    for (const job of ['a', 'b', 'c', 'd']) await jobFailure(reporter, job);
    await reporter.beforeApplicationShutdown();
    const [summary] = summaries(mail);
    expect(summary.text).toContain(
      'were counted but not mailed so far (sent early: the process is shutting down).',
    );
  });

  it('two processes on one Redis: the budget is shared, and the summary is taken once', async () => {
    const first = setup(sent);
    const second = setup(sent, {}, { redis: first.redis, clock: first.clock });
    const statuses = [];
    for (const [i, job] of ['a', 'b', 'c', 'd', 'e', 'f'].entries()) {
      statuses.push((await jobFailure(i % 2 ? second.reporter : first.reporter, job)).status);
    }
    expect(statuses.filter((status) => status === 'sent')).toHaveLength(3);
    first.advance(60_000);
    await Promise.all([jobFailure(first.reporter, 'g'), jobFailure(second.reporter, 'h')]);
    await Promise.all([first.reporter.flush(), second.reporter.flush()]);
    await Promise.all([
      first.reporter.beforeApplicationShutdown(),
      second.reporter.beforeApplicationShutdown(),
    ]);
    expect([...summaries(first.mail), ...summaries(second.mail)]).toHaveLength(1);
  });

  it('errors counted after the summary was taken get a summary of their own', async () => {
    const { reporter, mail, advance } = setup(sent);
    for (const job of ['a', 'b', 'c', 'd']) await jobFailure(reporter, job);
    await reporter.beforeApplicationShutdown();
    const restarted = setup(
      sent,
      {},
      {
        redis: (reporter as unknown as { options: { redis: FakeRedis } }).options.redis,
        clock: { now: START },
      },
    );
    await jobFailure(restarted.reporter, 'late');
    advance(60_000);
    restarted.advance(60_000);
    await jobFailure(restarted.reporter, 'next window');
    await restarted.reporter.flush();
    expect(summaries(mail).map((input) => input.idempotencyKey)).toEqual([
      'admin-error-summary:2026-11-22T10:00:00.000Z',
    ]);
    expect(summaries(restarted.mail).map((input) => input.idempotencyKey)).toEqual([
      'admin-error-summary:2026-11-22T10:00:00.000Z:2',
    ]);
  });

  it('without Redis keeps the budget and the summary in this process', async () => {
    const { reporter, mail, redis, advance } = setup(sent);
    redis.eval = () => Promise.reject(new Error('ECONNREFUSED'));
    const statuses = [];
    for (const job of ['a', 'b', 'c', 'd', 'e']) statuses.push((await jobFailure(reporter, job)).status);
    expect(statuses).toEqual(['sent', 'sent', 'sent', 'summarised', 'summarised']);
    advance(60_000);
    await jobFailure(reporter, 'f');
    await reporter.flush();
    const [summary] = summaries(mail);
    expect(summary.idempotencyKey).toMatch(
      /^admin-error-summary:2026-11-22T10:00:00\.000Z:process-[0-9a-f]{8}:1$/,
    );
    expect(summary.text).toContain('2 more distinct errors (2 occurrences)');
    const fallbackWarnings = warn.mock.calls.filter(([entry]) =>
      /unavailable in Redis/.test((entry as { msg: string }).msg),
    );
    expect(fallbackWarnings).toHaveLength(2);
  });

  it('a failing summary send is logged, never thrown', async () => {
    const { reporter, mail, advance } = setup(sent);
    for (const job of ['a', 'b', 'c', 'd']) await jobFailure(reporter, job);
    mail.send.mockImplementation(() => Promise.reject(new Error('SES down')));
    advance(60_000);
    await expect(jobFailure(reporter, 'e')).resolves.toEqual({ status: 'failed' });
    await expect(reporter.flush()).resolves.toBeUndefined();
    expect(summaries(mail)).toHaveLength(1);
  });
});

describe('AdminErrorReporter with hostile thrown values', () => {
  beforeAll(() => Logger.overrideLogger(false));

  class FieldMessage extends Error {
    // A class field left undefined (`message: any;` under define semantics) shadows the message Error set.
    override message = undefined as unknown as string;
  }
  const throwing = () => {
    throw new Error('trap hunter2-from-config');
  };
  const values: Record<string, () => unknown> = {
    'a message getter that throws': () => Object.defineProperty(new Error('x'), 'message', { get: throwing }),
    'a stack getter that throws': () => Object.defineProperty(new Error('x'), 'stack', { get: throwing }),
    'a message left undefined by a class field': () => new FieldMessage('shadowed'),
    'a number message': () => Object.assign(new Error('x'), { message: 42 }),
    'an object name': () =>
      Object.assign(new Error('x'), { name: { toString: () => 'hunter2-from-config' } }),
    'a Proxy property whose ownKeys trap throws': () =>
      Object.assign(new Error('proxy prop'), { context: new Proxy({}, { ownKeys: throwing }) }),
    'a thrown Proxy whose get trap throws': () =>
      new Proxy({ message: 'p' }, { get: (_, key) => (key === 'message' ? 'pm' : throwing()) }),
    'a Proxy of an Error': () => new Proxy(new Error('pe'), { getPrototypeOf: throwing }),
    'a revoked Proxy': () => {
      const { proxy, revoke } = Proxy.revocable({}, {});
      revoke();
      return proxy;
    },
    'a symbol': () => Symbol('thrown'),
  };

  it.each(Object.keys(values))('mails %s (status sent, a body, no secret)', async (label) => {
    const { reporter, mail } = setup(sent);
    const result = await reporter.report(values[label](), { source: 'worker', details: { handler: label } });
    expect(result.status).toBe('sent');
    expect(mail.send).toHaveBeenCalledTimes(1);
    const { subject, text } = mail.send.mock.calls[0][0];
    expect(text).toContain(`Fingerprint: ${result.fingerprint}`);
    expect(`${subject}\n${text}`).not.toContain('hunter2-from-config');
  });

  it('the same hostile value in the next window is mailed again (its lock was not spent silently)', async () => {
    const { reporter, mail, advance } = setup(sent);
    const make = values['a Proxy property whose ownKeys trap throws'];
    expect((await reporter.report(make(), { source: 'api' })).status).toBe('sent');
    advance(60_000);
    expect((await reporter.report(make(), { source: 'api' })).status).toBe('sent');
    expect(mail.send).toHaveBeenCalledTimes(2);
  });

  it('when rendering itself fails, sends a minimal mail naming the type and fingerprint', async () => {
    const { reporter, mail } = setup(sent);
    const details = new Proxy({ handler: 'h' }, { ownKeys: throwing });
    const result = await reporter.report(new TypeError('hunter2-from-config'), { source: 'worker', details });
    expect(result.status).toBe('sent');
    const { subject, text } = mail.send.mock.calls[0][0];
    expect(subject).toContain('an error that could not be rendered (TypeError)');
    expect(text).toContain(`Fingerprint: ${result.fingerprint}`);
    expect(`${subject}\n${text}`).not.toContain('hunter2-from-config');
  });
});

describe('AdminErrorReporter summary under a flood', () => {
  beforeAll(() => Logger.overrideLogger(false));
  const summaries = (mail: { send: jest.Mock }) =>
    (mail.send.mock.calls as Array<[SendMailInput]>)
      .map(([input]) => input)
      .filter((input) => input.idempotencyKey.startsWith('admin-error-summary:'));

  /** 40 distinct messages on one route, each twice: many fingerprints, one error name and scope. */
  async function flood(reporter: AdminErrorReporter) {
    for (let round = 0; round < 2; round++) {
      for (let variant = 0; variant < 40; variant++) {
        await reporter.report(new Error(`bad input ${'x'.repeat(variant)}`), {
          source: 'http',
          request: { method: 'GET', route: '/search' },
        });
      }
    }
  }

  it('a rare real error stays visible: the summary lists every error name and scope, the flood as one line', async () => {
    const { reporter, mail, advance } = setup(sent);
    await flood(reporter);
    await reporter.reportJobFailure(new RangeError('ledger out of balance'), { job: 'nightly-ledger' });
    advance(60_000);
    await jobFailure(reporter, 'next');
    await reporter.flush();
    const [summary] = summaries(mail);
    expect(summary.text).toContain('By error and where (rarest first):');
    expect(summary.text).toMatch(/ {5}1 {2}RangeError in scheduler nightly-ledger\n/);
    expect(summary.text).toMatch(/ {4}75 {2}Error in http GET \/search \(38 fingerprints\)\n/);
  });

  it('a summary whose send fails is kept and sent with the next report', async () => {
    const { reporter, mail, advance } = setup(sent);
    for (const job of ['a', 'b', 'c', 'd', 'e']) await jobFailure(reporter, job);
    let failures = 1;
    mail.send.mockImplementation((input) =>
      input.idempotencyKey.startsWith('admin-error-summary:') && failures-- > 0
        ? Promise.reject(new Error('SES down'))
        : sent(input),
    );
    advance(60_000);
    await jobFailure(reporter, 'f');
    await reporter.flush();
    expect(summaries(mail)).toHaveLength(1);
    await jobFailure(reporter, 'g');
    await reporter.flush();
    const [failed, retried] = summaries(mail);
    expect(retried).toBeDefined();
    expect(retried.idempotencyKey).not.toBe(failed.idempotencyKey);
    expect(retried.text).toContain('2 more distinct errors (2 occurrences)');
  });
});
