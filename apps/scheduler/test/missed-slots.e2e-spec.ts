import { INestApplicationContext } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { JobMessage, METRICS_REGISTRY } from '@once/platform';
import { createTestQueue, drain, e2eQueueUrl, OwnRedisServer, SesMailbox, waitFor } from '@once/testing';
import type { Registry } from 'prom-client';
import { schedulerHarness } from './support/scheduler-e2e.harness';
import { CronJobsRegistrar } from '../src/jobs/cron-jobs.registrar';
import { SlowTcpProxy } from './support/slow-tcp.proxy';

/**
 * Issue 11 items 5 and 6, with real crons (per-second or a single slot a few seconds ahead), a
 * real SQS emulator behind a slow TCP proxy, a real redis-server of the test's own that is killed
 * and restarted, and period boundaries made to fall during the test by a fixed-offset time zone.
 */
describe('scheduler: no silently lost slots, failed fires retried', () => {
  // Each test gets its own dedup namespace so periods enqueued by one test do not collapse another's.
  const { sqs, nextRun, boot, stopAll, jobsOnQueue } = schedulerHarness('missed');
  const cleanups: Array<() => Promise<void>> = [];
  const counter = async (
    app: INestApplicationContext,
    name: string,
    job: string,
  ): Promise<number | undefined> => {
    const metric = app.get<Registry>(METRICS_REGISTRY).getSingleMetric(name);
    if (!metric) return undefined;
    const { values } = await metric.get();
    return values.find((value) => value.labels['job'] === job)?.value ?? 0;
  };
  const sleepUntil = (at: number) =>
    new Promise((resolve) => setTimeout(resolve, Math.max(at - Date.now(), 0)));
  /** The next whole UTC minute at least `leadMs` away. */
  const nextMinute = (leadMs: number) => Math.ceil((Date.now() + leadMs) / 60_000) * 60_000;
  /** A fixed-offset zone whose local midnight is `instant` (a whole UTC minute). */
  const zoneWithMidnightAt = (instant: number): string => {
    const date = new Date(instant);
    let offset = (1440 - (date.getUTCHours() * 60 + date.getUTCMinutes())) % 1440;
    if (offset > 14 * 60) offset -= 1440;
    const abs = Math.abs(offset);
    return `UTC${offset < 0 ? '-' : '+'}${Math.floor(abs / 60)}:${String(abs % 60).padStart(2, '0')}`;
  };
  /** A daily cron (6 fields, UTC) whose only slot today is `at`. */
  const dailyAt = (at: number) => {
    const d = new Date(at);
    return `${d.getUTCSeconds()} ${d.getUTCMinutes()} ${d.getUTCHours()} * * *`;
  };

  beforeEach(nextRun);

  afterEach(async () => {
    await stopAll();
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    await drain(sqs, e2eQueueUrl('once-jobs'), 0);
  });

  afterAll(() => sqs.destroy());

  // Both scenarios need a period boundary during the test, and fixed-offset zones put local
  // midnight only on a whole UTC minute: they share one midnight (and one wait for it).
  it('around one midnight: slow publishes lose no period; a period whose fire kept failing counts as missed and mails the admins once', async () => {
    const midnight = nextMinute(9_000);
    const { url: queueUrl } = await createTestQueue(sqs, `once-jobs-missed-${Date.now()}`);
    const slowPublishes = async () => {
      const endpoint = new URL(process.env.SQS_ENDPOINT!);
      const proxy = new SlowTcpProxy(endpoint.hostname, Number(endpoint.port));
      const port = await proxy.listen();
      cleanups.push(() => proxy.close());
      // The first tick (about 3 s before midnight) publishes the old day for 4.5 s, across midnight.
      await sleepUntil(midnight - 3_800);
      await boot({
        DIGEST_CRON: '* * * * * *',
        SCHEDULER_TIMEZONE: zoneWithMidnightAt(midnight),
        // Requests go to the endpoint; the queue URL in them names the emulator's queue.
        SQS_ENDPOINT: `http://127.0.0.1:${port}`,
      });
      proxy.delayMs = 4_500;

      const seen: JobMessage[] = [];
      const jobs = await waitFor(
        'a digest for the day before and the day after midnight',
        async () => {
          const all = (await jobsOnQueue()).concat(seen);
          seen.splice(0, seen.length, ...all);
          const periods = new Set(all.map((job) => job.period));
          return periods.size >= 2 && Date.now() > midnight + 8_000 ? all : undefined;
        },
        { timeoutMs: 30_000 },
      );
      expect(jobs).toHaveLength(2);
      const [before, after] = [...jobs].sort((a, b) => a.slot.localeCompare(b.slot));
      expect(Date.parse(before.slot)).toBeLessThan(midnight);
      // The new day goes out at its first tick, while the old day's publish is still running.
      expect(Date.parse(after.slot)).toBeGreaterThanOrEqual(midnight);
      expect(Date.parse(after.slot) - midnight).toBeLessThan(2_000);
      expect(after.period).not.toBe(before.period);
      for (const job of jobs) {
        expect(job.eventId).toBe(`daily-digest:${job.period}`);
        // Named by the slot that was due when the tick ran, never a stale one from ticks ago.
        expect(Date.parse(job.firedAt) - Date.parse(job.slot)).toBeLessThan(2_000);
      }
    };
    const failingFire = async () => {
      const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
      await mailbox.clear();
      const redis = await OwnRedisServer.start();
      cleanups.push(() => redis.stop());
      const slot = midnight - 3_000;
      await sleepUntil(slot - 4_000);
      const app = await boot({
        SQS_JOBS_QUEUE: queueUrl,
        REDIS_URL: redis.url,
        // 23:59:57 local, three seconds before the zone's midnight.
        DIGEST_CRON: '57 59 23 * * *',
        SCHEDULER_TIMEZONE: zoneWithMidnightAt(midnight),
        SCHEDULER_RETRY_BASE_MS: '200',
        SCHEDULER_RETRY_MAX_MS: '1000',
        ADMIN_EMAILS: 'ops@example.com',
        DATABASE_MIGRATE_ON_BOOT: 'true',
      });
      await redis.kill();
      const missed = await waitFor(
        'the missed period counted',
        async () =>
          (await counter(app, 'once_scheduler_missed_periods_total', 'daily-digest')) ? true : undefined,
        { timeoutMs: 20_000 },
      );
      expect(missed).toBe(true);
      expect(Date.now()).toBeGreaterThanOrEqual(midnight);
      const registrar = app.get(CronJobsRegistrar);
      expect(registrar.status().pending).toEqual([]);
      expect(registrar.status().missed).toEqual([{ job: 'daily-digest', period: expect.any(String) }]);
      const period = registrar.status().missed[0].period;
      // The admin reports go out although the Redis the scheduler (and its throttle) uses is down.
      const reports = await waitFor('the missed-period admin mail', async () => {
        const mails = (await mailbox.all()).filter(
          (mail) =>
            mail.destination.to.includes('ops@example.com') &&
            (mail.body.text ?? '').includes('never enqueued'),
        );
        return mails.length ? mails : undefined;
      });
      expect(reports).toHaveLength(1);
      expect(reports[0].body.text).toContain(`daily-digest for period ${period}`);
      expect(await drain(sqs, queueUrl, 0)).toEqual([]);
    };
    await Promise.all([slowPublishes(), failingFire()]);
  }, 120_000);

  it('counts and logs the slots whose ticks a stalled event loop skipped', async () => {
    const app = await boot({ DIGEST_CRON: '* * * * * *' });
    await waitFor('the first digest', async () => ((await jobsOnQueue()).length ? true : undefined));
    const stalledUntil = Date.now() + 3_200;
    while (Date.now() < stalledUntil) {
      // A real stall (a long GC or CPU starvation): no timer of the cron runs meanwhile.
    }
    const skipped = await waitFor(
      'the skipped slots counted',
      async () => {
        const value = await counter(app, 'once_scheduler_skipped_slots_total', 'daily-digest');
        return value ? value : undefined;
      },
      { timeoutMs: 10_000 },
    );
    expect(skipped).toBeGreaterThanOrEqual(2);
    expect(app.get(CronJobsRegistrar).status().pending).toEqual([]);
  });

  it('retries a fire that failed while Redis was down, until it goes out', async () => {
    const redis = await OwnRedisServer.start();
    cleanups.push(() => redis.stop());
    const slot = Date.now() + 4_000;
    const app = await boot({
      REDIS_URL: redis.url,
      DIGEST_CRON: dailyAt(slot),
      SCHEDULER_RETRY_BASE_MS: '200',
      SCHEDULER_RETRY_MAX_MS: '1000',
    });
    await redis.kill();
    await sleepUntil(slot + 2_500);
    const registrar = app.get(CronJobsRegistrar);
    expect(registrar.status().pending).toEqual([
      expect.objectContaining({
        job: 'daily-digest',
        slot: new Date(Math.floor(slot / 1000) * 1000).toISOString(),
      }),
    ]);
    expect(
      await counter(app, 'once_scheduler_publish_failures_total', 'daily-digest'),
    ).toBeGreaterThanOrEqual(1);
    expect(await jobsOnQueue()).toEqual([]);

    await redis.restart();
    const jobs = await waitFor('the retried digest', async () => {
      const all = await jobsOnQueue();
      return all.length ? all : undefined;
    });
    expect(jobs).toEqual([
      expect.objectContaining({
        job: 'daily-digest',
        trigger: 'cron',
        period: new Date(slot).toISOString().slice(0, 10),
      }),
    ]);
    expect(registrar.status()).toEqual({ pending: [], missed: [] });
  }, 60_000);

  it('catches up periodically: a slot whose tick never ran goes out with the next catch-up', async () => {
    const slot = Date.now() + 3_000;
    const app = await boot({
      DIGEST_CRON: dailyAt(slot),
      SCHEDULER_CATCH_UP: 'true',
      SCHEDULER_CATCH_UP_INTERVAL_MS: '1000',
    });
    // The cron's timer is lost (stopped): only the periodic catch-up can notice the slot.
    app.get(SchedulerRegistry).getCronJob('daily-digest').stop();
    const jobs = await waitFor('the caught-up digest', async () => {
      const all = await jobsOnQueue();
      return all.length ? all : undefined;
    });
    expect(jobs).toEqual([
      expect.objectContaining({
        trigger: 'catch-up',
        slot: new Date(Math.floor(slot / 1000) * 1000).toISOString(),
      }),
    ]);
  });
});
