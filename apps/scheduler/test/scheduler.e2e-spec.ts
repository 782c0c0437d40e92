import { jobMessageSchema } from '@once/platform';
import { drain, e2eQueueUrl, SesMailbox, waitFor } from '@once/testing';
import { schedulerHarness } from './support/scheduler-e2e.harness';
import { CronJobsRegistrar } from '../src/jobs/cron-jobs.registrar';

describe('scheduler', () => {
  // Each test gets its own dedup namespace so periods enqueued by one test do not collapse another's.
  const { sqs, nextRun, boot, stopAll, jobsOnQueue } = schedulerHarness('run');

  beforeEach(nextRun);

  afterEach(async () => {
    await stopAll();
    await drain(sqs, e2eQueueUrl('once-jobs'), 0);
  });

  afterAll(() => sqs.destroy());

  it('enqueues a job on its cron schedule, named by the period of its scheduled slot', async () => {
    await boot({ DIGEST_CRON: '* * * * * *' });
    const [message] = await waitFor('a job message', async () => {
      const messages = await drain(sqs, e2eQueueUrl('once-jobs'));
      return messages.length ? messages : undefined;
    });
    const job = jobMessageSchema.parse(JSON.parse(message.Body!));
    expect(job).toMatchObject({ job: 'daily-digest', trigger: 'cron' });
    expect(new Date(job.slot).getUTCMilliseconds()).toBe(0);
    expect(job.period).toBe(job.slot.slice(0, 10));
    expect(job.eventId).toBe(`daily-digest:${job.period}`);
    expect(Date.parse(job.firedAt)).toBeGreaterThanOrEqual(Date.parse(job.slot));
  });

  it('enqueues the period once although two replicas fire each of its slots', async () => {
    const env = {
      DIGEST_CRON: '*/2 * * * * *',
      REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}replicas:`,
    };
    await Promise.all([boot(env), boot(env)]);
    await new Promise((resolve) => setTimeout(resolve, 4500));
    await stopAll();
    const jobs = await jobsOnQueue();
    // Two replicas × two slots or more, all of one calendar day: one job (unless the test ran across midnight).
    expect(jobs.length).toBe(new Set(jobs.map((job) => job.period)).size);
    expect(jobs.length).toBeGreaterThanOrEqual(1);
  });

  it('collapses a manual trigger of a slot that was already enqueued', async () => {
    const scheduler = await boot({});
    const slot = new Date('2026-11-22T07:00:00.000Z');
    const first = await scheduler.get(CronJobsRegistrar).fire('daily-digest', slot, 'manual');
    const second = await scheduler.get(CronJobsRegistrar).fire('daily-digest', slot, 'cron');
    expect(first).toMatchObject({ status: 'enqueued', eventId: 'daily-digest:2026-11-22' });
    expect(second).toMatchObject({
      status: 'duplicate',
      enqueuedBy: expect.stringMatching(/^enqueued:manual:/),
    });
    expect(await jobsOnQueue()).toEqual([
      expect.objectContaining({ eventId: first.eventId, trigger: 'manual' }),
    ]);
  });

  it('catches up the slot it missed while down, once', async () => {
    const env = {
      REMINDER_CRON: '0 9 1 * *',
      SCHEDULER_CATCH_UP: 'true',
      SCHEDULER_CATCH_UP_WINDOW_HOURS: String(24 * 32),
    };
    await boot(env);
    await boot(env);
    const jobs = await jobsOnQueue();
    expect(jobs).toHaveLength(1);
    expect(jobs[0]).toMatchObject({ job: 'monthly-reminder', trigger: 'catch-up' });
    expect(jobs[0].slot).toMatch(/^\d{4}-\d{2}-01T09:00:00\.000Z$/);
  });

  it('mails the admins when a scheduled job cannot be enqueued', async () => {
    const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
    await mailbox.clear();
    await boot({
      DIGEST_CRON: '* * * * * *',
      SQS_JOBS_QUEUE: 'once-no-such-queue',
      ADMIN_EMAILS: 'ops@example.com',
      DATABASE_MIGRATE_ON_BOOT: 'true',
    });
    const [report] = await waitFor('the admin error mail', async () => {
      const mails = (await mailbox.all()).filter((mail) => mail.destination.to.includes('ops@example.com'));
      return mails.length ? mails : undefined;
    });
    expect(report.subject).toContain('scheduler');
    expect(report.body.text).toContain('daily-digest');
    expect(report.body.text).toContain('once-no-such-queue');
  });

  it('refuses a bad cron expression at boot, naming the variable', async () => {
    await expect(boot({ DIGEST_CRON: 'every morning' })).rejects.toThrow(
      /DIGEST_CRON: must be a cron expression/,
    );
  });
});
