import type { SchedulesEnv } from '../config/config.schemas';
import type { JobName } from '../messages/job.message';
import { isScheduledSlot, nextSlot, previousSlot } from './cron-slots';
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
      /** The scheduled slots either side of the refused instant. */
      previous?: string;
      next: string;
    };

/**
 * Checks a manual trigger: its slot must be one of the job's scheduled instants in
 * `SCHEDULER_TIMEZONE` (an off-grid instant is refused rather than silently snapped, so the
 * operator sees which slot the schedule has). A job whose schedule is `off` accepts any instant.
 */
export function checkTriggerSlot(job: JobName, slot: Date, config: SchedulesEnv): TriggerSlotCheck {
  const cron = jobSchedules(config)[job];
  const timeZone = config.SCHEDULER_TIMEZONE;
  const period = jobPeriod(job, slot, timeZone);
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
