import { DateTime } from 'luxon';
import type { JobName } from '../messages/job.message';

/** The calendar unit one run of a job stands for: one digest a day, one reminder a month. */
export const JOB_PERIOD_UNITS: Record<JobName, 'day' | 'month'> = {
  'daily-digest': 'day',
  'monthly-reminder': 'month',
};

const FORMATS = { day: 'yyyy-MM-dd', month: 'yyyy-MM' } as const;

/** Thrown for a time zone neither luxon nor cron can resolve. */
export class InvalidTimeZoneError extends Error {
  constructor(readonly timeZone: string) {
    super(`unknown time zone "${timeZone}"`);
    this.name = 'InvalidTimeZoneError';
  }
}

function inZone(instant: Date, timeZone: string): DateTime {
  const local = DateTime.fromJSDate(instant, { zone: timeZone });
  if (!local.isValid) throw new InvalidTimeZoneError(timeZone);
  return local;
}

/** Whether `timeZone` is an IANA name (or `UTC±hh:mm`) that cron and {@link jobPeriod} accept. */
export function isValidTimeZone(timeZone: string): boolean {
  return DateTime.now().setZone(timeZone).isValid;
}

/**
 * The logical period a slot of `job` belongs to, in the scheduler's time zone: `2026-12-02` for
 * the daily digest, `2026-12` for the monthly reminder. Job and email keys derive from it, so two
 * slots of one period (a second fire, an off-grid manual trigger, a cron or time zone changed
 * between deploys) collapse into one run. DST-safe: the local calendar date is read, not computed.
 */
export function jobPeriod(job: JobName, slot: Date, timeZone: string): string {
  return inZone(slot, timeZone).toFormat(FORMATS[JOB_PERIOD_UNITS[job]]);
}

/** Further than any DST shift there has been (2 h, double summer time) from luxon's local midnight. */
const SCAN_MS = 3 * 3_600_000;

/**
 * The instants `[start, end)` of the period `slot` falls in (a DST day lasts 23 or 25 hours).
 * A local calendar date never goes backwards, so each period is one interval: its bounds are
 * bisected to the millisecond within a few hours of luxon's `startOf`, which picks only one of
 * the offsets of an ambiguous local midnight (a zone falling back from 01:00 to 00:00).
 */
export function jobPeriodBounds(job: JobName, slot: Date, timeZone: string): { start: Date; end: Date } {
  const unit = JOB_PERIOD_UNITS[job];
  const period = jobPeriod(job, slot, timeZone);
  const inPeriod = (ms: number) => jobPeriod(job, new Date(ms), timeZone) === period;
  const local = inZone(slot, timeZone).startOf(unit);
  const next = local.plus({ [`${unit}s`]: 1 }).startOf(unit);
  let before = Math.min(local.toMillis(), slot.getTime()) - SCAN_MS;
  let first = slot.getTime();
  while (first - before > 1) {
    const mid = Math.floor((first + before) / 2);
    if (inPeriod(mid)) first = mid;
    else before = mid;
  }
  let last = slot.getTime();
  let after = Math.max(next.toMillis(), slot.getTime()) + SCAN_MS;
  while (after - last > 1) {
    const mid = Math.floor((after + last) / 2);
    if (inPeriod(mid)) last = mid;
    else after = mid;
  }
  return { start: new Date(first), end: new Date(after) };
}
