import type { INestApplicationContext } from '@nestjs/common';
import { AdminErrorReporter } from '@once/mail';
import {
  CONFIGURED_SECRETS,
  leakedItems,
  leakedLines,
  leakedSecretNames,
  LogLines,
  mailText,
  OwnRedisServer,
  plantScenario,
  REDACTION_CORPUS,
  REDACTION_LOOKALIKES,
  secretBearingEnv,
  SesMailbox,
  waitFor,
} from '@once/testing';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { bootstrap } from '../src/bootstrap';
import { QUIET_SCHEDULER_ENV } from './support/scheduler-e2e.harness';

const run = randomUUID().slice(0, 8);
const admin = `scheduler-redaction-${run}@example.com`;

/** Where the scheduler's real config holds each corpus secret it can hold (the rest is the mail lib test's). */
const ENV_SECRETS = {
  AWS_SECRET_ACCESS_KEY: CONFIGURED_SECRETS.awsSecret,
  'DATABASE_URL password': CONFIGURED_SECRETS.databasePassword,
  'REDIS_URL password': CONFIGURED_SECRETS.redisPassword,
  // 40 characters planted at the end of a 20 000-character property: redacted before truncation.
  'SQS_ENDPOINT password': CONFIGURED_SECRETS.awsSecret.split('').reverse().join(''),
  'SES_ENDPOINT password': CONFIGURED_SECRETS.quoted,
};
const mappedSecrets = new Set<string>(Object.values(ENV_SECRETS));
/** Corpus items the scheduler must hide: every item but the configured ones its env cannot hold. */
const CHECKED = REDACTION_CORPUS.filter((item) => !item.configured || mappedSecrets.has(item.secret));

describe('scheduler: admin error mail from the real app hides the corpus and the configured secrets', () => {
  const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
  const logs = new LogLines();
  const missingQueue = `once-jobs-missing-${run}`;
  let redis: OwnRedisServer | undefined;
  let scheduler: INestApplicationContext | undefined;

  beforeAll(async () => {
    // A Redis of the test's own that really requires the password in REDIS_URL.
    redis = await OwnRedisServer.start();
    const setup = new Redis(redis.url);
    await setup.config('SET', 'requirepass', CONFIGURED_SECRETS.redisPassword);
    setup.disconnect();
    // A real job failure at boot: catch-up publishes the current reminder period to a queue that
    // does not exist, and the first failed attempt is reported (retries come a minute later). Not
    // the digest: scheduler.e2e-spec mails the same error for it, and the ledger (shared database)
    // would take its mail for a duplicate of this one within the throttle window.
    scheduler = await bootstrap({
      env: {
        ...QUIET_SCHEDULER_ENV,
        REMINDER_CRON: '* * * * *',
        SCHEDULER_CATCH_UP: 'true',
        SCHEDULER_RETRY_BASE_MS: '60000',
        SQS_JOBS_QUEUE: missingQueue,
        DATABASE_MIGRATE_ON_BOOT: 'true',
        LOG_LEVEL: 'info',
        ADMIN_EMAILS: admin,
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}admin-redaction-${run}:`,
        ...secretBearingEnv(ENV_SECRETS, redis.url),
      },
      logDestination: logs,
    });
  });

  afterAll(async () => {
    await scheduler?.close();
    await redis?.stop();
  });

  it('mails a real job failure and the planted corpus with 0 secrets in any encoding', async () => {
    const reporter = scheduler!.get(AdminErrorReporter);
    const scenario = plantScenario(REDACTION_CORPUS, `scheduler-${run}`);
    const reports = await Promise.all([
      reporter.reportJobFailure(scenario.error, {
        ...scenario.details,
        job: `corpus-job-${run}`,
        slot: '2026-11-22T07:00:00.000Z',
        lookalikes: [...REDACTION_LOOKALIKES],
      }),
      ...scenario.thrown.map((value, index) =>
        reporter.reportJobFailure(value, { ...scenario.details, job: `corpus-thrown-${index}-${run}` }),
      ),
    ]);
    expect(reports.map((report) => report.status)).toEqual(reports.map(() => 'sent'));

    const expected = reports.length + 1;
    const emails = await waitFor(`${expected} admin mails`, async () => {
      const mine = (await mailbox.all()).filter((email) => email.destination.to.includes(admin));
      return mine.length >= expected ? mine : undefined;
    });
    await reporter.flush();
    expect(emails).toHaveLength(expected);
    const real = emails.find((email) => email.subject.includes(`Cannot resolve SQS queue "${missingQueue}"`));
    expect(real?.body.text).toContain('"job": "monthly-reminder"');

    const all = emails.map(mailText).join('\n');
    expect(leakedItems(all, CHECKED)).toEqual([]);
    expect(leakedSecretNames(all, ENV_SECRETS)).toEqual([]);
    expect(CHECKED.length).toBeGreaterThanOrEqual(115);

    // Over-redaction: harmless text that looks like secrets survives in the corpus job's mail.
    const corpusMail = mailText(
      emails.find((email) => email.body.text?.includes(`"job": "corpus-job-${run}"`))!,
    );
    expect(
      REDACTION_LOOKALIKES.filter((text) => !corpusMail.includes(JSON.stringify(text).slice(1, -1))),
    ).toEqual([]);
  });

  it('logs the real failure and the reports without the configured secrets or corpus items', () => {
    const lines = logs.text.split('\n');
    expect(
      lines.some((line) => line.includes('"msg":"job enqueue failed; retrying until the period ends"')),
    ).toBe(true);
    expect(lines.some((line) => line.includes('"msg":"admin error mail"'))).toBe(true);
    expect(leakedLines(lines, ENV_SECRETS, CHECKED)).toEqual([]);
  });

  it('refuses to boot in production when ADMIN_EMAILS is set and a secret is too short to hide, naming the variable', async () => {
    const short = 'Zq7xK';
    const failure = bootstrap({
      env: {
        ...QUIET_SCHEDULER_ENV,
        NODE_ENV: 'production',
        ADMIN_EMAILS: admin,
        AWS_SECRET_ACCESS_KEY: short,
      },
    });
    await expect(failure).rejects.toThrow(
      /AWS_SECRET_ACCESS_KEY: its value is shorter than 8 characters; admin error mail could not hide it/,
    );
    await expect(failure).rejects.not.toThrow(short);
  });
});
