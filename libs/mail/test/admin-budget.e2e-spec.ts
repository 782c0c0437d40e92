import { randomUUID } from 'node:crypto';
import { AdminErrorReporter, type AdminReportStatus, MailService } from '../src';
import {
  createMailTestApp,
  emulatorSesConfig,
  emailsTo,
  env,
  header,
  type MailTestApp,
  type StoredEmail,
  uniqueAddress,
  uniqueKey,
} from './support/mail-e2e.harness';

const WINDOW_MS = 15 * 60_000;
const BUDGET = 10;
const SECRET = `Sup3r-${randomUUID().slice(0, 8)}`;

const isSummary = (email: StoredEmail) =>
  (header(email, 'X-Once-Key') ?? '').startsWith('admin-error-summary:');

describe('admin error budget and summary (two apps on one Redis, ledger, SES emulator)', () => {
  const run = randomUUID().slice(0, 6);
  const admin = uniqueAddress('admin-budget');
  // A window of its own in the shared ledger (summary keys are named by window start).
  let now = new Date(Date.UTC(2031, 0, 1) + Math.floor(Math.random() * 100_000) * WINDOW_MS);
  const windowStart = now.toISOString();
  const prefix = `${env('REDIS_KEY_PREFIX')}mail:budget-${run}:`;
  let a: MailTestApp;
  let b: MailTestApp;
  let reporters: AdminErrorReporter[];

  const app = () =>
    createMailTestApp({
      redisKeyPrefix: prefix,
      rateLimit: {
        maxSendRate: 500,
        burst: 50,
        perRecipient: { limit: 3, windowMs: 3_600_000 },
        maxWaitMs: 1_000,
      },
      adminErrors: {
        recipients: [admin],
        appName: 'api',
        appVersion: '2.0.0',
        windowMs: WINDOW_MS,
        redact: { secrets: [SECRET] },
        budget: { mails: BUDGET, windowMs: WINDOW_MS, topFingerprints: 10 },
      },
      clock: () => now,
    });

  beforeAll(async () => {
    // One after the other: the first runs the migrations.
    a = await app();
    b = await app();
    reporters = [a.app.get(AdminErrorReporter), b.app.get(AdminErrorReporter)];
  });

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  /** Distinct by job name (the scope is part of the fingerprint); one stack, whoever calls. */
  const fail = (reporter: AdminErrorReporter, i: number) =>
    reporter.reportJobFailure(
      Object.assign(new Error(`burst failure: password=${SECRET}`), {
        stack: `Error: burst failure\n    at BurstJob.run (/app/dist/burst.job.js:7:11)`,
      }),
      { job: `burst-${run}-${i}` },
    );

  it('a burst of 500 distinct errors from two apps: the budget in mails, then one summary; a new error after the window is mailed', async () => {
    const started = Date.now();
    const statuses: AdminReportStatus[] = [];
    for (let i = 0; i < BUDGET; i++) statuses.push((await fail(reporters[i % 2], i)).status);
    const rest = await Promise.all(Array.from({ length: 490 }, (_, k) => fail(reporters[k % 2], BUDGET + k)));
    // Occurrences of one summarised error: it tops the summary.
    const repeats = await Promise.all(Array.from({ length: 5 }, (_, k) => fail(reporters[k % 2], 499)));
    statuses.push(...rest.map((result) => result.status), ...repeats.map((result) => result.status));
    await Promise.all(reporters.map((reporter) => reporter.flush()));
    const burstMs = Date.now() - started;

    expect(statuses.filter((status) => status === 'sent')).toHaveLength(BUDGET);
    expect(statuses.filter((status) => status === 'summarised')).toHaveLength(495);
    const inWindow = await emailsTo(admin);
    expect(inWindow).toHaveLength(BUDGET);
    expect(inWindow.filter(isSummary)).toHaveLength(0);

    now = new Date(now.getTime() + WINDOW_MS);
    const after = await fail(reporters[1], 500);
    expect(after.status).toBe('sent');
    await Promise.all(reporters.map((reporter) => reporter.flush()));

    const emails = await emailsTo(admin);
    const summaries = emails.filter(isSummary);
    expect(summaries).toHaveLength(1);
    expect(emails).toHaveLength(BUDGET + 2);
    const [summary] = summaries;
    const text = summary.body.text ?? '';
    expect(header(summary, 'X-Once-Key')).toBe(`admin-error-summary:${windowStart}`);
    expect(summary.subject).toBe('[Once] api: 490 more distinct errors not mailed (budget 10 per 15 min)');
    expect(text).toContain('490 more distinct errors (495 occurrences) were counted but not mailed.');
    expect(text).toMatch(
      new RegExp(
        `\\n +6 {2}[0-9a-f]{16} {2}Error in scheduler burst-${run}-499: burst failure: password=\\[REDACTED\\]\\n`,
      ),
    );
    expect(text.match(/^ +\d+ {2}[0-9a-f]{16} {2}/gm)).toHaveLength(10);
    expect(text).toContain('… and 480 more fingerprints.');
    expect(`${summary.subject}\n${text}`).not.toContain(SECRET);
    console.log(
      `500-burst: ${statuses.length} reports in ${burstMs} ms, ${inWindow.length} error mails in the window, then ${JSON.stringify(summary.subject)}`,
    );
  });

  it('user mail stays capped per recipient, admin mail is neither counted in nor refused by that cap', async () => {
    const mail = a.app.get(MailService);
    const sendTo = async (to: string) => {
      const results = [];
      for (let i = 0; i < 4; i++) {
        results.push(
          (await mail.send({ idempotencyKey: uniqueKey('cap'), to, subject: 'S', text: 'T' })).status,
        );
      }
      return results;
    };
    expect(await sendTo(uniqueAddress('user'))).toEqual(['sent', 'sent', 'sent', 'failed']);
    // Twelve admin mails went to this address already; its cap is untouched by them.
    expect(await sendTo(admin)).toEqual(['sent', 'sent', 'sent', 'failed']);

    const report = await fail(reporters[0], 501);
    expect(report.status).toBe('sent');
    const emails = await emailsTo(admin);
    expect(emails.filter((email) => email.subject.startsWith('[Once] api scheduler'))).toHaveLength(
      BUDGET + 2,
    );
  });

  it('a process shutting down sends the summary of what it counted in the open window', async () => {
    now = new Date(now.getTime() + WINDOW_MS);
    const open = new Date(now.getTime() - (now.getTime() % WINDOW_MS)).toISOString();
    const statuses = [];
    for (let i = 0; i < BUDGET + 2; i++) statuses.push((await fail(reporters[1], 600 + i)).status);
    expect(statuses.filter((status) => status === 'summarised')).toHaveLength(2);
    await b.close();
    b = undefined as unknown as MailTestApp;

    const summaries = (await emailsTo(admin)).filter(
      (email) => header(email, 'X-Once-Key') === `admin-error-summary:${open}`,
    );
    expect(summaries).toHaveLength(1);
    expect(summaries[0].body.text).toContain(
      '2 more distinct errors (2 occurrences) were counted but not mailed so far (sent early: the process is shutting down).',
    );
  });
});

describe('admin error summary under a flood, and after a failed send (real Redis, ledger, SES emulator)', () => {
  const run = randomUUID().slice(0, 6);
  const admin = uniqueAddress('admin-flood');
  let now = new Date(Date.UTC(2032, 0, 1) + Math.floor(Math.random() * 100_000) * WINDOW_MS);
  const windowStart = now.toISOString();
  const prefix = `${env('REDIS_KEY_PREFIX')}mail:flood-${run}:`;
  let good: MailTestApp;
  let dead: MailTestApp;

  const app = (ses?: ReturnType<typeof emulatorSesConfig>) =>
    createMailTestApp({
      redisKeyPrefix: prefix,
      ...(ses ? { ses, maxAttempts: 1 } : {}),
      adminErrors: {
        recipients: [admin],
        appName: 'api',
        appVersion: '2.0.0',
        windowMs: WINDOW_MS,
        budget: { mails: 3, windowMs: WINDOW_MS, topFingerprints: 5 },
      },
      clock: () => now,
    });

  beforeAll(async () => {
    good = await app();
    // Nothing listens on port 9: every SES call of this app fails.
    dead = await app(emulatorSesConfig('http://127.0.0.1:9', 1_000));
  });
  afterAll(async () => {
    await Promise.all([good?.close(), dead?.close()]);
  });

  it('a rare error stays visible past 300 attacker variants of one route, and a summary whose send failed is sent by the next report', async () => {
    const reporter = good.app.get(AdminErrorReporter);
    const search = (variant: number) =>
      // Letters, not digits: the fingerprint normalizes numbers and ids away.
      reporter.report(new Error(`bad query ${[...String(variant)].map((d) => 'abcdefghij'[+d]).join('')}`), {
        source: 'http',
        request: { method: 'GET', route: `/search-${run}` },
      });
    for (let i = 0; i < 3; i++) await search(i);
    await Promise.all(Array.from({ length: 300 }, (_, i) => search(3 + i)));
    await reporter.reportJobFailure(new RangeError('ledger out of balance'), { job: `nightly-${run}` });
    await reporter.flush();

    now = new Date(now.getTime() + WINDOW_MS);
    const failing = dead.app.get(AdminErrorReporter);
    await failing.reportJobFailure(new Error('first after the window'), { job: `after-${run}` });
    await failing.flush();
    expect((await emailsTo(admin)).filter(isSummary)).toHaveLength(0);
    // It took the summary, failed to send it and put it back.
    expect(await good.redis.get(`${prefix}admin-budget:${Date.parse(windowStart)}:restores`)).toBe('1');

    await reporter.reportJobFailure(new Error('second after the window'), { job: `after2-${run}` });
    await reporter.flush();
    const summaries = (await emailsTo(admin)).filter(isSummary);
    expect(summaries).toHaveLength(1);
    const text = summaries[0].body.text ?? '';
    expect(header(summaries[0], 'X-Once-Key')).toMatch(new RegExp(`^admin-error-summary:${windowStart}`));
    expect(text).toContain('301 more distinct errors (301 occurrences) were counted but not mailed.');
    expect(text).toContain('By error and where (rarest first):');
    expect(text).toMatch(new RegExp(`\\n +1 {2}RangeError in scheduler nightly-${run}\\n`));
    expect(text).toMatch(
      new RegExp(`\\n +300 {2}Error in http GET /search-${run} \\(300 fingerprints\\)\\n`),
    );
  });
});
