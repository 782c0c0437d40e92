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

/** The first scheduled instant of `cron` strictly after `after`. */
export function nextSlot(cron: string, timeZone: string, after: Date): Date {
  return new CronTime(cron, timeZone).getNextDateFrom(after, timeZone).toJSDate();
}

/**
 * The scheduled instants of `cron` in `(after, until]`, oldest first, at most `limit` of them
 * (the newest `limit` when more fell due, with `dropped` counting the older ones left out). Looks
 * at no more than 20,000 instants (about 6 s of cron's arithmetic): after a longer gap of a
 * per-second cron the answer ends early, and the caller continues from its last slot next time.
 */
export function slotsBetween(
  cron: string,
  timeZone: string,
  after: Date,
  until: Date,
  limit = 1000,
): { slots: Date[]; dropped: number } {
  const time = new CronTime(cron, timeZone);
  const slots: Date[] = [];
  let dropped = 0;
  let cursor = after;
  for (let i = 0; i < 20_000; i++) {
    const next = time.getNextDateFrom(cursor, timeZone).toJSDate();
    if (next.getTime() > until.getTime()) break;
    slots.push(next);
    if (slots.length > limit) {
      slots.shift();
      dropped++;
    }
    cursor = next;
  }
  return { slots, dropped };
}

/** The latest scheduled instant at or before `instant`, searched in growing windows (up to ~13 months). */
export function previousSlot(cron: string, timeZone: string, instant: Date): Date | undefined {
  for (const windowMs of [2_000, 120_000, 7_200_000, 2 * 86_400_000, 64 * 86_400_000, 400 * 86_400_000]) {
    const slot = latestSlot(cron, timeZone, instant, windowMs);
    if (slot) return slot;
  }
  return undefined;
}

/** Whether `instant` is exactly one of the scheduled instants of `cron` in `timeZone`. */
export function isScheduledSlot(cron: string, timeZone: string, instant: Date): boolean {
  return nextSlot(cron, timeZone, new Date(instant.getTime() - 1)).getTime() === instant.getTime();
}
