import type { SchedulesEnv } from '../config/config.schemas';
import type { JobName } from '../messages/job.message';
import { isScheduledSlot, nextSlot, previousSlot, TICK_TOLERANCE_MS } from './cron-slots';
import { jobPeriod } from './job-period';

/** The cron expression (or `off`) of each job, from config. */
export function jobSchedules(config: SchedulesEnv): Record<JobName, string> {
  return { 'daily-digest': config.DIGEST_CRON, 'monthly-reminder': config.REMINDER_CRON };
}

/** Whether a manual trigger's slot may be enqueued, and as which period. */
export type TriggerSlotCheck =
  | { ok: true; period: string }
  | {
      ok: false;
      message: string;
      cron: string;
      timeZone: string;
      /**
       * The scheduled slots either side of the refused instant (of now, for a future one: the
       * latest slot that may be triggered and the next one to fall due).
       */
      previous?: string;
      next?: string;
    };

/**
 * Checks a manual trigger: its slot must be one of the job's scheduled instants in
 * `SCHEDULER_TIMEZONE` (an off-grid instant is refused rather than silently snapped, so the
 * operator sees which slot the schedule has), and must have fallen due by `now` (give or take
 * {@link TICK_TOLERANCE_MS}): a future slot would enqueue its period now and turn that period's
 * real run into a duplicate. A job whose schedule is `off` accepts any instant up to now.
 */
export function checkTriggerSlot(
  job: JobName,
  slot: Date,
  config: SchedulesEnv,
  now: Date = new Date(),
): TriggerSlotCheck {
  const cron = jobSchedules(config)[job];
  const timeZone = config.SCHEDULER_TIMEZONE;
  const period = jobPeriod(job, slot, timeZone);
  const latestDue = new Date(now.getTime() + TICK_TOLERANCE_MS);
  if (slot.getTime() > latestDue.getTime()) {
    const previous = cron === 'off' ? undefined : previousSlot(cron, timeZone, latestDue);
    return {
      ok: false,
      message: `${slot.toISOString()} is in the future (now ${now.toISOString()}): a trigger may only enqueue a slot that has fallen due, or ${job} for ${period} would run now and its scheduled run would be a duplicate`,
      cron,
      timeZone,
      previous: previous?.toISOString(),
      next: cron === 'off' ? undefined : nextSlot(cron, timeZone, latestDue).toISOString(),
    };
  }
  if (cron === 'off' || isScheduledSlot(cron, timeZone, slot)) return { ok: true, period };
  return {
    ok: false,
    message: `${slot.toISOString()} is not on the schedule of ${job} (${cron} in ${timeZone})`,
    cron,
    timeZone,
    previous: previousSlot(cron, timeZone, slot)?.toISOString(),
    next: nextSlot(cron, timeZone, slot).toISOString(),
  };
}
