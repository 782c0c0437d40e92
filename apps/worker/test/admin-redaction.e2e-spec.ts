import type { INestApplicationContext } from '@nestjs/common';
import { AdminErrorReporter } from '@once/mail';
import {
  CONFIGURED_SECRETS,
  createTestQueue,
  leakedItems,
  leakedLines,
  leakedSecretNames,
  LogLines,
  mailText,
  OwnRedisServer,
  plantScenario,
  REDACTION_CORPUS,
  secretBearingEnv,
  sendJson,
  SesMailbox,
  testSqsClient,
  waitFor,
  withUrlPassword,
} from '@once/testing';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import { bootstrap } from '../src/bootstrap';

const run = randomUUID().slice(0, 8);
const admin = `worker-redaction-${run}@example.com`;

/** Where the worker's real config holds each corpus secret it can hold (the rest is the mail lib test's). */
const reversedAwsSecret = CONFIGURED_SECRETS.awsSecret.split('').reverse().join('');
const ENV_SECRETS = {
  AWS_SECRET_ACCESS_KEY: CONFIGURED_SECRETS.awsSecret,
  'TRACKING_SECRETS (current)': CONFIGURED_SECRETS.trackingSecret,
  'TRACKING_SECRETS (previous)': reversedAwsSecret,
  'DATABASE_URL password': CONFIGURED_SECRETS.databasePassword,
  'REDIS_URL password': CONFIGURED_SECRETS.redisPassword,
  'SQS_ENDPOINT password': CONFIGURED_SECRETS.b64,
  'SES_ENDPOINT password': CONFIGURED_SECRETS.embedded,
};
const mappedSecrets = new Set<string>(Object.values(ENV_SECRETS));
/** Corpus items the worker must hide: every item but the configured ones its env cannot hold. */
const CHECKED = REDACTION_CORPUS.filter((item) => !item.configured || mappedSecrets.has(item.secret));

describe('worker: admin error mail from the real app hides the corpus and the configured secrets', () => {
  const sqs = testSqsClient();
  const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
  const logs = new LogLines();
  let redis: OwnRedisServer | undefined;
  let worker: INestApplicationContext | undefined;
  let emailQueueUrl: string;
  const failureLines = () =>
    logs.text.split('\n').filter((line) => line.includes('"msg":"send-email handler failed"'));

  beforeAll(async () => {
    // A Redis of the test's own that really requires the password in REDIS_URL.
    redis = await OwnRedisServer.start();
    const setup = new Redis(redis.url);
    await setup.config('SET', 'requirepass', CONFIGURED_SECRETS.redisPassword);
    setup.disconnect();
    const [email, jobs] = await Promise.all([
      createTestQueue(sqs, `once-send-email-redaction-${run}`),
      createTestQueue(sqs, `once-jobs-redaction-${run}`),
    ]);
    emailQueueUrl = email.url;
    worker = await bootstrap({
      env: {
        DATABASE_MIGRATE_ON_BOOT: 'true',
        SQS_WAIT_TIME_SECONDS: '1',
        OPS_PORT: '0',
        LOG_LEVEL: 'info',
        ADMIN_EMAILS: admin,
        // Throttle windows start on the clock's multiples of their length: with the default 15 min a
        // run that straddles a quarter hour mailed the redelivery's failure again (a new window).
        // A day's window makes that a run straddling midnight UTC.
        ADMIN_ERROR_WINDOW_MS: '86400000',
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}admin-redaction-${run}:`,
        SQS_EMAIL_QUEUE: email.url,
        SQS_JOBS_QUEUE: jobs.url,
        ...secretBearingEnv(ENV_SECRETS, redis.url),
        TRACKING_SECRETS: `${ENV_SECRETS['TRACKING_SECRETS (current)']},${ENV_SECRETS['TRACKING_SECRETS (previous)']}`,
      },
      logDestination: logs,
    });
  });

  afterAll(async () => {
    await worker?.close();
    await redis?.stop();
    sqs.destroy();
  });

  it('mails a real handler failure and the planted corpus with 0 secrets in any encoding', async () => {
    const reporter = worker!.get(AdminErrorReporter);
    const echoedItem = REDACTION_CORPUS.find((item) => item.id === 'url-empty-user')!;
    // A real failure after validation: userId is a string in the message schema but a bigint in
    // Postgres, so the subscription lookup throws a QueryFailedError that echoes the value.
    const echoed = [
      'u-1',
      ENV_SECRETS['DATABASE_URL password'],
      ENV_SECRETS.AWS_SECRET_ACCESS_KEY,
      ENV_SECRETS['REDIS_URL password'],
      ENV_SECRETS['TRACKING_SECRETS (current)'],
      echoedItem.plant.in === 'message' ? echoedItem.plant.text : '',
    ].join(' ');
    await sendJson(sqs, emailQueueUrl, {
      eventId: `redaction-${run}`,
      to: 'reader@example.com',
      subject: 'Never sent',
      text: 'The subscription lookup fails first',
      userId: echoed,
    });

    const scenario = plantScenario(REDACTION_CORPUS, `worker-${run}`);
    const reports = await Promise.all([
      reporter.reportWorkerFailure(scenario.error, {
        handler: `corpus-worker-${run}`,
        queue: 'send-email',
        messageId: 'm-1',
        ...scenario.details,
      }),
      ...scenario.thrown.map((value, index) =>
        reporter.reportWorkerFailure(value, {
          handler: `corpus-thrown-${index}-${run}`,
          ...scenario.details,
        }),
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
    const real = emails.find((email) => email.subject.includes('invalid input syntax for type bigint'));
    expect(real?.body.text).toContain('SendEmailConsumer.handle');

    const all = emails.map(mailText).join('\n');
    expect(leakedItems(all, CHECKED)).toEqual([]);
    expect(leakedSecretNames(all, ENV_SECRETS)).toEqual([]);
    expect(CHECKED.length).toBeGreaterThanOrEqual(115);

    // The redelivered message fails again: counted into the next mail of its fingerprint, not mailed.
    await waitFor('the redelivery to fail', () => (failureLines().length >= 2 ? true : undefined));
    await reporter.flush();
    const after = (await mailbox.all()).filter((email) => email.destination.to.includes(admin));
    expect(after).toHaveLength(expected);
  });

  // ConsumerErrorsService logs the handler error's message; the platform logger must redact it.
  it('logs the real failure without the configured secrets or the corpus item it echoes', () => {
    const lines = logs.text.split('\n');
    expect(failureLines().length).toBeGreaterThanOrEqual(1);
    expect(lines.some((line) => line.includes('"msg":"admin error mail"'))).toBe(true);
    expect(leakedLines(lines, ENV_SECRETS, CHECKED)).toEqual([]);
  });

  it('refuses to boot in production when ADMIN_EMAILS is set and a secret is too short to hide, naming the variable', async () => {
    const short = 'Zq7xK';
    const failure = bootstrap({
      env: {
        NODE_ENV: 'production',
        ADMIN_EMAILS: admin,
        TRACKING_SECRETS: CONFIGURED_SECRETS.trackingSecret,
        DATABASE_URL: withUrlPassword(process.env.DATABASE_URL!, short, 'postgres'),
      },
    });
    await expect(failure).rejects.toThrow(
      /DATABASE_URL: its password is shorter than 8 characters; admin error mail could not hide it/,
    );
    await expect(failure).rejects.not.toThrow(short);
  });
});
