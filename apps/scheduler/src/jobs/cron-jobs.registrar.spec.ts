import { Logger } from '@nestjs/common';
import type { SchedulerRegistry } from '@nestjs/schedule';
import type { AdminErrorReporter } from '@once/mail';
import {
  jobPeriod,
  jobPeriodBounds,
  type JobName,
  type JobPublisher,
  type PublishResult,
  slotsBetween,
} from '@once/platform';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import type { SchedulerConfig } from '../config/scheduler.config';
import { CronJobsRegistrar } from './cron-jobs.registrar';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`cron-jobs.registrar.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/** A registrar over a publisher that records what it was asked (a unit test may fake this collaborator). */
function setup(timeZone: string) {
  const published: Array<{ job: JobName; slot: Date }> = [];
  const publisher = {
    publish: jest.fn(async (job: JobName, slot: Date): Promise<PublishResult> => {
      published.push({ job, slot });
      return { status: 'enqueued', eventId: `${job}:x`, messageId: 'm', message: {} as never };
    }),
  };
  const config = {
    DIGEST_CRON: 'off',
    REMINDER_CRON: 'off',
    SCHEDULER_TIMEZONE: timeZone,
    SCHEDULER_CATCH_UP: false,
    SCHEDULER_RETRY_BASE_MS: 1000,
    SCHEDULER_RETRY_MAX_MS: 300_000,
  } as SchedulerConfig;
  const registrar = new CronJobsRegistrar(
    {} as SchedulerRegistry,
    publisher as unknown as JobPublisher,
    { reportJobFailure: jest.fn(async () => ({ status: 'sent' })) } as unknown as AdminErrorReporter,
    config,
    new Registry(),
  );
  // The cron wiring is @nestjs/schedule's; the ticks are driven by hand here.
  const internals = registrar as unknown as {
    lastSlot: Map<JobName, Date>;
    tick(job: JobName, cron: string): void;
    backoff(attempt: number): number;
  };
  return { registrar, internals, published };
}

describe('CronJobsRegistrar ticks', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterEach(() => jest.useRealTimers());

  it('publishes every period whose slots fell due once (or counts it missed if it had ended), however late or rarely the ticks run', async () => {
    await fc.assert(
      fc.asyncProperty(
        // A cron and the longest stall between two ticks (a per-second cron over days would only
        // measure how fast cron can count).
        fc
          .constantFrom(
            ['* * * * * *', 60_000] as const,
            ['*/7 * * * * *', 600_000] as const,
            ['0 */5 * * * *', 6 * 3_600_000] as const,
            ['30 59 23 * * *', 3 * 86_400_000] as const,
            ['0 0 0 * * *', 3 * 86_400_000] as const,
          )
          .chain(([cron, maxGap]) =>
            fc.tuple(
              fc.constant(cron),
              // Gaps between ticks: on time, a little late, or a stall.
              fc.array(fc.oneof(fc.integer({ min: 1, max: 2_000 }), fc.integer({ min: 1, max: maxGap })), {
                minLength: 1,
                maxLength: 8,
              }),
            ),
          ),
        fc.constantFrom('UTC', 'Europe/Berlin', 'America/Santiago', 'Asia/Kathmandu'),
        fc.date({
          min: new Date('2026-01-01T00:00:00Z'),
          max: new Date('2027-01-01T00:00:00Z'),
          noInvalidDate: true,
        }),
        async ([cron, gaps], timeZone, boot) => {
          jest.useFakeTimers({ now: boot, doNotFake: ['nextTick', 'setImmediate'] });
          const { registrar, internals, published } = setup(timeZone);
          internals.lastSlot.set('daily-digest', boot);
          let now = boot.getTime();
          for (const gap of gaps) {
            now += gap;
            jest.setSystemTime(now);
            internals.tick('daily-digest', cron);
          }
          await Promise.resolve();
          const due = slotsBetween(cron, timeZone, boot, new Date(now + 250), 1_000_000).slots;
          const expected = new Set(due.map((slot) => jobPeriod('daily-digest', slot, timeZone)));
          const periods = published.map(({ slot }) => jobPeriod('daily-digest', slot, timeZone));
          // A period first seen by a tick after it ended (a stall across its end) is missed, not sent late.
          const missed = registrar.status().missed.map(({ period }) => period);
          expect(new Set([...periods, ...missed])).toEqual(expected);
          expect(periods.length + missed.length).toBe(expected.size);
          for (const period of missed) {
            const slot = due.find((candidate) => jobPeriod('daily-digest', candidate, timeZone) === period)!;
            expect(jobPeriodBounds('daily-digest', slot, timeZone).end.getTime()).toBeLessThanOrEqual(now);
          }
          for (const { slot } of published) expect(slot.getTime()).toBeLessThanOrEqual(now + 250);
          jest.useRealTimers();
        },
      ),
      { seed, numRuns: 30 },
    );
  });

  it('backs off exponentially with jitter, within its bounds', () => {
    const { internals } = setup('UTC');
    for (let attempt = 1; attempt <= 20; attempt++) {
      const ceiling = Math.min(300_000, 1000 * 2 ** (attempt - 1));
      for (let i = 0; i < 20; i++) {
        const delay = internals.backoff(attempt);
        expect(delay).toBeGreaterThanOrEqual(ceiling / 2);
        expect(delay).toBeLessThanOrEqual(ceiling);
      }
    }
  });
});
