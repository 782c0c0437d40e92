import { Logger } from '@nestjs/common';
import type { SchedulerRegistry } from '@nestjs/schedule';
import type { AdminErrorReporter } from '@once/mail';
import {
  dueSlots,
  jobPeriod,
  jobPeriodBounds,
  type JobName,
  type JobPublisher,
  type PublishResult,
  TICK_TOLERANCE_MS,
} from '@once/platform';
import fc from 'fast-check';
import { DateTime } from 'luxon';
import { Registry } from 'prom-client';
import type { SchedulerConfig } from '../config/scheduler.config';
import { CronJobsRegistrar } from './cron-jobs.registrar';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`cron-jobs.registrar.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

/** One call of the fake publisher. */
interface Call {
  slot: Date;
  at: number;
  ok: boolean;
}

/**
 * A registrar over a publisher that records what it was asked and fails the calls `fails` marks
 * (cycled), as Redis or SQS would (a unit test may fake this collaborator).
 */
function setup(timeZone: string, fails: boolean[] = [false]) {
  const calls: Call[] = [];
  const publisher = {
    publish: jest.fn(async (job: JobName, slot: Date): Promise<PublishResult> => {
      const ok = !fails[calls.length % fails.length];
      calls.push({ slot, at: Date.now(), ok });
      if (!ok) throw new Error('injected publish failure');
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
  const metrics = new Registry();
  const registrar = new CronJobsRegistrar(
    {} as SchedulerRegistry,
    publisher as unknown as JobPublisher,
    { reportJobFailure: jest.fn(async () => ({ status: 'sent' })) } as unknown as AdminErrorReporter,
    config,
    metrics,
  );
  // The cron wiring is @nestjs/schedule's; the ticks are driven by hand here.
  const internals = registrar as unknown as {
    lastSlot: Map<JobName, Date>;
    tick(job: JobName, cron: string): void;
    backoff(attempt: number): number;
  };
  const skipped = async () =>
    (await metrics.getSingleMetric('once_scheduler_skipped_slots_total')!.get()).values.reduce(
      (sum, { value }) => sum + value,
      0,
    );
  return { registrar, internals, calls, skipped };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;

/**
 * The oracle: the slots of the test's crons in `(after, until]` by brute force, without cron.
 * Sub-daily crons scan every second (or minute) of the window and read its local fields; the
 * daily ones take each local day's wall time from luxon (a repeated wall time counts at its
 * first occurrence, a skipped one at the first instant after the gap, as cron fires them).
 */
function bruteForceSlots(cron: string, timeZone: string, after: number, until: number): number[] {
  const local = (ms: number) => DateTime.fromMillis(ms, { zone: timeZone });
  const scan = (step: number, matches: (ms: number) => boolean) => {
    const slots: number[] = [];
    for (let ms = Math.floor(after / step) * step + step; ms <= until; ms += step)
      if (matches(ms)) slots.push(ms);
    return slots;
  };
  switch (cron) {
    case '* * * * * *':
      return scan(SECOND, () => true);
    case '*/7 * * * * *':
      return scan(SECOND, (ms) => local(ms).second % 7 === 0);
    case '0 */5 * * * *':
      return scan(MINUTE, (ms) => local(ms).minute % 5 === 0);
    case '30 59 23 * * *':
    case '0 0 0 * * *': {
      const [second, minute, hour] = cron.split(' ').map(Number);
      const slots: number[] = [];
      for (
        let day = local(after).startOf('day').minus({ days: 1 });
        day.toMillis() <= until;
        day = day.plus({ days: 1 })
      ) {
        const ms = day.set({ hour, minute, second, millisecond: 0 }).toMillis();
        if (ms > after && ms <= until) slots.push(ms);
      }
      return slots;
    }
    default:
      throw new Error(`no oracle for ${cron}`);
  }
}

describe('CronJobsRegistrar ticks', () => {
  beforeAll(() => Logger.overrideLogger(false));
  afterEach(() => jest.useRealTimers());

  it('publishes every period whose slots fell due once (or counts it missed), however late the ticks and however often the publisher fails; retries back off; the skipped count is exact', async () => {
    let runs = 0;
    let failedCalls = 0;
    let missedPeriods = 0;
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
        // Which publisher calls fail (cycled): none, some, or almost all.
        fc.array(fc.boolean(), { minLength: 1, maxLength: 6 }),
        async ([cron, gaps], timeZone, boot, fails) => {
          runs++;
          jest.useFakeTimers({ now: boot, doNotFake: ['nextTick', 'setImmediate'] });
          const { registrar, internals, calls, skipped } = setup(timeZone, fails);
          const job = 'daily-digest';
          const period = (ms: number) => jobPeriod(job, new Date(ms), timeZone);
          const end = (ms: number) => jobPeriodBounds(job, new Date(ms), timeZone).end.getTime();
          internals.lastSlot.set(job, boot);
          const untils = [boot.getTime()];
          for (const gap of gaps) {
            // Retries due meanwhile run at their own (fake) times.
            await jest.advanceTimersByTimeAsync(gap);
            untils.push(Date.now() + TICK_TOLERANCE_MS);
            internals.tick(job, cron);
          }
          const lastTick = Date.now();
          // Let every retry run to success or to its period's end.
          for (let i = 0; i < 100 && registrar.status().pending.length > 0; i++)
            await jest.advanceTimersByTimeAsync(3_600_000);
          expect(registrar.status().pending).toEqual([]);

          const due = bruteForceSlots(cron, timeZone, boot.getTime(), untils[untils.length - 1]);
          const expected = new Set(due.map(period));
          const succeeded = calls.filter((call) => call.ok).map((call) => period(call.slot.getTime()));
          const missed = registrar.status().missed.map(({ period: p }) => p);
          // Each period exactly once: published, or missed (it ended before a publish succeeded).
          expect([...succeeded, ...missed].sort()).toEqual([...expected].sort());
          for (const call of calls) {
            expect(call.slot.getTime()).toBeLessThanOrEqual(call.at + TICK_TOLERANCE_MS);
            expect(call.at).toBeLessThan(end(call.slot.getTime()));
          }
          for (const p of missed) {
            const slot = due.find((ms) => period(ms) === p)!;
            expect(end(slot)).toBeLessThanOrEqual(Date.now());
            expect(calls.some((call) => call.ok && period(call.slot.getTime()) === p)).toBe(false);
          }
          // Attempts at one period are spaced by the jittered backoff (or end at the period's end).
          const byPeriod = new Map<string, Call[]>();
          for (const call of calls)
            byPeriod.set(period(call.slot.getTime()), [
              ...(byPeriod.get(period(call.slot.getTime())) ?? []),
              call,
            ]);
          for (const attempts of byPeriod.values())
            attempts.slice(1).forEach((call, i) => {
              const previous = attempts[i];
              const ceiling = Math.min(300_000, 1000 * 2 ** i);
              const left = end(previous.slot.getTime()) - previous.at;
              expect(previous.ok).toBe(false);
              expect(call.at - previous.at).toBeGreaterThanOrEqual(Math.min(ceiling / 2, left));
              expect(call.at - previous.at).toBeLessThanOrEqual(ceiling);
            });
          // Skipped = due slots minus the ticks that found some; exact for these gaps. cron
          // fires a repeated wall time once, so a window across a DST change is left out.
          const offset = (ms: number) => DateTime.fromMillis(ms, { zone: timeZone }).offset;
          if (offset(boot.getTime()) === offset(lastTick)) {
            const ticksWithSlots = untils
              .slice(1)
              .filter((until, i) => due.some((ms) => ms > untils[i] && ms <= until)).length;
            expect(await skipped()).toBe(due.length - ticksWithSlots);
          }
          failedCalls += calls.filter((call) => !call.ok).length;
          missedPeriods += missed.length;
          jest.useRealTimers();
        },
      ),
      { seed, numRuns: 40 },
    );
    console.log(
      `registrar property: ${runs} runs, ${failedCalls} failed publishes, ${missedPeriods} missed periods`,
    );
    expect(failedCalls).toBeGreaterThan(0);
  }, 120_000);

  it('stays cheap after a long stall of a per-second cron: periods exact, the skipped count a lower bound', async () => {
    const boot = new Date('2026-10-23T10:00:00.000Z');
    const until = new Date('2026-10-27T10:00:00.000Z');
    for (const timeZone of ['UTC', 'Europe/Berlin']) {
      const due = dueSlots('daily-digest', '* * * * * *', timeZone, boot, until);
      const days = new Set(
        bruteForceSlots('0 0 0 * * *', timeZone, boot.getTime(), until.getTime()).map((ms) =>
          jobPeriod('daily-digest', new Date(ms), timeZone),
        ),
      );
      days.add(jobPeriod('daily-digest', new Date(boot.getTime() + 1000), timeZone));
      expect(due.latestOfPeriods.map((slot) => jobPeriod('daily-digest', slot, timeZone))).toEqual(
        [...days].sort(),
      );
      expect(due.last).toEqual(until);
      expect(due.exact).toBe(false);
      expect(due.count).toBeGreaterThanOrEqual(days.size);
      expect(due.count).toBeLessThanOrEqual((until.getTime() - boot.getTime()) / 1000);
      // One tick after the stall accounts for all of them at once: the ended ones are missed.
      jest.useFakeTimers({ now: until, doNotFake: ['nextTick', 'setImmediate'] });
      const { registrar, internals, calls } = setup(timeZone);
      internals.lastSlot.set('daily-digest', boot);
      internals.tick('daily-digest', '* * * * * *');
      await Promise.resolve();
      const sorted = [...days].sort();
      expect(calls.map((call) => jobPeriod('daily-digest', call.slot, timeZone))).toEqual(sorted.slice(-1));
      expect(registrar.status().missed.map(({ period }) => period)).toEqual(sorted.slice(0, -1));
      jest.useRealTimers();
      // Each period's slot is its last second (or the tick's clock).
      for (const slot of due.latestOfPeriods.slice(0, -1))
        expect(jobPeriod('daily-digest', new Date(slot.getTime() + 1000), timeZone)).not.toBe(
          jobPeriod('daily-digest', slot, timeZone),
        );
    }
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
