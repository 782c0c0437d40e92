import { INestApplicationContext } from '@nestjs/common';
import Redis from 'ioredis';
import { drain, e2eQueueUrl, testSqsClient } from '@once/testing';
import { bootstrap } from '../src/bootstrap';
import { schedulerHarness } from './support/scheduler-e2e.harness';
import { CronJobsRegistrar } from '../src/jobs/cron-jobs.registrar';

/** Issue 11 item 4: a digest is once per period (the scheduler's calendar day), not once per instant. */
describe('scheduler: one job per period', () => {
  // Each test gets its own dedup namespace so periods enqueued by one test do not collapse another's.
  const { sqs, nextRun, boot, stopAll, jobsOnQueue } = schedulerHarness('periods');

  beforeEach(nextRun);

  afterEach(async () => {
    await stopAll();
    await drain(sqs, e2eQueueUrl('once-jobs'), 0);
  });

  afterAll(() => sqs.destroy());

  it('collapses two slots of one day and a time zone changed between deploys into one digest', async () => {
    const utc = (await boot({})).get(CronJobsRegistrar);
    const first = await utc.fire('daily-digest', new Date('2026-11-22T07:00:00.000Z'), 'cron');
    const sameDay = await utc.fire('daily-digest', new Date('2026-11-22T07:00:00.001Z'), 'manual');
    const evening = await utc.fire('daily-digest', new Date('2026-11-22T19:00:00.000Z'), 'cron');
    await stopAll();
    const berlin = (await boot({ SCHEDULER_TIMEZONE: 'Europe/Berlin' })).get(CronJobsRegistrar);
    // 07:00 in Berlin is 06:00Z: the same calendar day, whichever zone names it.
    const redeployed = await berlin.fire('daily-digest', new Date('2026-11-22T06:00:00.000Z'), 'catch-up');
    // 23:30Z is already the 23rd in Berlin: a new period.
    const nextDay = await berlin.fire('daily-digest', new Date('2026-11-22T23:30:00.000Z'), 'cron');

    expect(first).toMatchObject({ status: 'enqueued', eventId: 'daily-digest:2026-11-22' });
    for (const duplicate of [sameDay, evening, redeployed])
      expect(duplicate).toMatchObject({ status: 'duplicate', eventId: 'daily-digest:2026-11-22' });
    expect(nextDay).toMatchObject({ status: 'enqueued', eventId: 'daily-digest:2026-11-23' });
    const jobs = await jobsOnQueue();
    expect(jobs.map((job) => [job.eventId, job.period, job.slot])).toEqual([
      ['daily-digest:2026-11-22', '2026-11-22', '2026-11-22T07:00:00.000Z'],
      ['daily-digest:2026-11-23', '2026-11-23', '2026-11-22T23:30:00.000Z'],
    ]);
  });

  it('names a monthly reminder by its month', async () => {
    const registrar = (await boot({})).get(CronJobsRegistrar);
    const first = await registrar.fire('monthly-reminder', new Date('2026-11-01T09:00:00.000Z'), 'cron');
    const later = await registrar.fire('monthly-reminder', new Date('2026-11-15T09:00:00.000Z'), 'manual');
    expect(first).toMatchObject({ status: 'enqueued', eventId: 'monthly-reminder:2026-11' });
    expect(later).toMatchObject({ status: 'duplicate', eventId: 'monthly-reminder:2026-11' });
    expect(await jobsOnQueue()).toHaveLength(1);
  });

  it('catches up once although DIGEST_CRON changed between deploys', async () => {
    // Two daily schedules whose latest slots both fell earlier today in the scheduler's zone.
    const timeZone = new Date().getUTCHours() < 2 ? 'Etc/GMT-6' : 'UTC';
    const env = { SCHEDULER_CATCH_UP: 'true', SCHEDULER_TIMEZONE: timeZone };
    await boot({ ...env, DIGEST_CRON: '0 0 * * *' });
    await stopAll();
    await boot({ ...env, DIGEST_CRON: '30 1 * * *' });
    const jobs = await jobsOnQueue();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ job: 'daily-digest', trigger: 'catch-up' });
    expect(jobs[0].eventId).toBe(`daily-digest:${jobs[0].period}`);
  });
});

describe('scheduler: the deploy boundary (claims from before periods)', () => {
  const sqs = testSqsClient();
  const prefix = `${process.env.REDIS_KEY_PREFIX}boundary:`;
  const redis = new Redis(process.env.REDIS_URL!);
  let app: INestApplicationContext | undefined;

  afterAll(async () => {
    await app?.close();
    await drain(sqs, e2eQueueUrl('once-jobs'), 0);
    redis.disconnect();
    sqs.destroy();
  });

  it('treats a slot an older scheduler enqueued as its period, and leaves a claim older replicas see', async () => {
    // What the previous release left after enqueueing the 22nd's digest.
    await redis.set(
      `${prefix}enqueue:daily-digest:2026-11-22T07:00:00.000Z`,
      'enqueued:cron:old-message',
      'PX',
      60_000,
    );
    app = await bootstrap({
      env: {
        DIGEST_CRON: 'off',
        REMINDER_CRON: 'off',
        SCHEDULER_CATCH_UP: 'false',
        OPS_PORT: '0',
        REDIS_KEY_PREFIX: prefix,
      },
    });
    const registrar = app.get(CronJobsRegistrar);
    const caughtUp = await registrar.fire('daily-digest', new Date('2026-11-22T07:00:00.000Z'), 'catch-up');
    const later = await registrar.fire('daily-digest', new Date('2026-11-22T09:00:00.000Z'), 'manual');
    expect(caughtUp).toMatchObject({ status: 'duplicate', enqueuedBy: 'enqueued:legacy:cron:old-message' });
    expect(later).toMatchObject({ status: 'duplicate', eventId: 'daily-digest:2026-11-22' });

    const next = await registrar.fire('daily-digest', new Date('2026-11-23T07:00:00.000Z'), 'cron');
    expect(next).toMatchObject({ status: 'enqueued', eventId: 'daily-digest:2026-11-23' });
    // An older replica still running claims `enqueue:<job>:<slot>`: it finds this one's claim.
    expect(await redis.get(`${prefix}enqueue:daily-digest:2026-11-23T07:00:00.000Z`)).toMatch(
      /^enqueued:cron:/,
    );
    const jobs = (await drain(sqs, e2eQueueUrl('once-jobs'), 0)).map((m) => JSON.parse(m.Body!).eventId);
    expect(jobs).toEqual(['daily-digest:2026-11-23']);
  });

  it("honours an older release's claim on an earlier slot of the period (a cron firing several times a day)", async () => {
    await app?.close();
    const hourly = `${process.env.REDIS_KEY_PREFIX}boundary-hourly:`;
    // The previous release enqueued 07:00Z and mailed under digest:<slot>; at 10:00Z it was mid-send.
    await redis.set(
      `${hourly}enqueue:daily-digest:2026-11-22T07:00:00.000Z`,
      'enqueued:cron:old-7',
      'PX',
      60_000,
    );
    await redis.set(`${hourly}enqueue:daily-digest:2026-11-24T10:00:00.000Z`, 'pending:cron', 'PX', 60_000);
    app = await bootstrap({
      env: {
        // Hourly at :00: no tick of its own runs during the test.
        DIGEST_CRON: '0 0 * * * *',
        REMINDER_CRON: 'off',
        SCHEDULER_CATCH_UP: 'false',
        OPS_PORT: '0',
        REDIS_KEY_PREFIX: hourly,
      },
    });
    const registrar = app.get(CronJobsRegistrar);
    const later = await registrar.fire('daily-digest', new Date('2026-11-22T09:00:00.000Z'), 'cron');
    expect(later).toMatchObject({
      status: 'duplicate',
      eventId: 'daily-digest:2026-11-22',
      enqueuedBy: 'enqueued:legacy:cron:old-7',
    });
    // The period is remembered as enqueued: a later slot or a restart sees it without the legacy keys.
    expect(await redis.get(`${hourly}enqueue:daily-digest:2026-11-22`)).toBe('enqueued:legacy:cron:old-7');
    // An older release still sending an earlier slot of the 24th: not enqueued here, asked again later.
    const busy = await registrar.fire('daily-digest', new Date('2026-11-24T13:00:00.000Z'), 'cron');
    expect(busy).toMatchObject({ status: 'duplicate', enqueuedBy: 'pending:cron' });
    expect(await redis.get(`${hourly}enqueue:daily-digest:2026-11-24`)).toBeNull();
    // A period the older release never touched is enqueued once.
    const fresh = await registrar.fire('daily-digest', new Date('2026-11-23T09:00:00.000Z'), 'cron');
    expect(fresh).toMatchObject({ status: 'enqueued', eventId: 'daily-digest:2026-11-23' });
    const jobs = (await drain(sqs, e2eQueueUrl('once-jobs'), 0)).map((m) => JSON.parse(m.Body!).eventId);
    expect(jobs.filter((id) => id.startsWith('daily-digest:2026-11-2'))).toEqual(['daily-digest:2026-11-23']);
  });
});
