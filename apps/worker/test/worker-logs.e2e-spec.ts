import type { INestApplicationContext } from '@nestjs/common';
import { Logger as NestLogger } from '@nestjs/common';
import { createTestQueue, LogLines, sendJson, testSqsClient, waitFor } from '@once/testing';
import { randomUUID } from 'node:crypto';
import { bootstrap } from '../src/bootstrap';

const run = randomUUID().slice(0, 8);
/** A configured secret (the worker's env), and credentials only the value rules can recognise. */
const AWS_SECRET = `wJalrXUtnFEMI/K7MDENG/${run}bPxRfiCYLOGS`;
const SECRETS = [AWS_SECRET, 'longpassword', 'abcdef123456'];
const PLANTED = `postgres://u:longpassword@h Bearer abcdef123456 ${AWS_SECRET}`;

/** Lines holding any planted secret, raw or URL-encoded. */
const leaks = (logs: LogLines) =>
  logs.lines
    .filter((line) =>
      SECRETS.some((secret) => line.includes(secret) || line.includes(encodeURIComponent(secret))),
    )
    .map((line) => line.slice(0, 300));

describe('worker logs hide secrets of failing handlers', () => {
  const sqs = testSqsClient();
  const logs = new LogLines();
  let worker: INestApplicationContext | undefined;
  let emailQueueUrl: string;

  beforeAll(async () => {
    const [email, jobs] = await Promise.all([
      createTestQueue(sqs, `once-send-email-logs-${run}`),
      createTestQueue(sqs, `once-jobs-logs-${run}`),
    ]);
    emailQueueUrl = email.url;
    worker = await bootstrap({
      logDestination: logs,
      env: {
        DATABASE_MIGRATE_ON_BOOT: 'true',
        SQS_WAIT_TIME_SECONDS: '1',
        OPS_PORT: '0',
        LOG_LEVEL: 'info',
        LOG_PRETTY: 'false',
        ADMIN_EMAILS: '',
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}worker-logs-${run}:`,
        SQS_EMAIL_QUEUE: email.url,
        SQS_JOBS_QUEUE: jobs.url,
        AWS_SECRET_ACCESS_KEY: AWS_SECRET,
      },
    });
  });

  afterAll(async () => {
    await worker?.close();
    sqs.destroy();
  });

  it('logs a real handler failure whose error echoes credentials and a configured secret, without them', async () => {
    // userId is a string in the message schema but a bigint in Postgres: the lookup's QueryFailedError echoes it.
    await sendJson(sqs, emailQueueUrl, {
      eventId: `worker-logs-${run}`,
      to: 'reader@example.com',
      subject: 'Never sent',
      text: 'The subscription lookup fails first',
      userId: PLANTED,
    });
    const failures = await waitFor('the handler failure line', () => {
      const found = logs.lines.filter((line) => line.includes('send-email handler failed'));
      return found.length ? found : undefined;
    });
    expect(failures[0]).toContain('invalid input syntax for type bigint');
    expect(failures[0]).toContain('[REDACTED]');
    expect(leaks(logs)).toEqual([]);
  });

  it('hides them in what app code logs through the Nest logger, in every shape', () => {
    const logger = new NestLogger('LogsE2e');
    const error = new Error(`connect ${PLANTED} failed`, { cause: new Error(PLANTED) });
    const before = logs.lines.length;
    logger.error(error);
    logger.error({ err: error });
    logger.error({ msg: 'job failed', err: error.message });
    logger.warn({ msg: 'retrying', error: String(error), reason: PLANTED });
    logger.error(`job failed: ${String(error)}`, error.stack);
    logger.error(`job failed: ${error.message}`);
    expect(logs.lines.length - before).toBe(6);
    expect(leaks(logs)).toEqual([]);
  });
});
