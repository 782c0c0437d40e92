import { CronTime } from 'cron';

/**
 * The latest scheduled instant of `cron` at or before `now`, if one falls within `windowMs`.
 * Walks forward from the start of the window, so it is exact for any expression.
 */
export function latestSlot(cron: string, timeZone: string, now: Date, windowMs: number): Date | undefined {
  const time = new CronTime(cron, timeZone);
  let cursor = new Date(now.getTime() - windowMs - 1);
  let latest: Date | undefined;
  for (let i = 0; i < 100_000; i++) {
    const next = time.getNextDateFrom(cursor, timeZone).toJSDate();
    if (next.getTime() > now.getTime()) break;
    latest = next;
    cursor = next;
  }
  return latest;
}
