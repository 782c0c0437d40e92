import { CronTime } from 'cron';
import { DateTime } from 'luxon';
import type { JobName } from '../messages/job.message';
import { jobPeriodBounds } from './job-period';

/**
 * How far ahead of the wall clock an instant still counts as due: a cron tick may run a few ms
 * before the clock reads its slot, and a manual trigger may name the slot that is just firing.
 */
export const TICK_TOLERANCE_MS = 250;

/**
 * cron's next instant strictly after `after`. Inside the second occurrence of a repeated local
 * hour cron 4's `getNextDateFrom` answers the first occurrence of the wall time it means (America/
 * Santiago, 2026-04-05: from 03:00Z a half-hourly cron answers 02:30Z), so a walk would loop: the
 * answer is moved to the wall time's other occurrence (by the offset change), and failing that the
 * start is moved on in growing steps until cron answers something later.
 */
function stepper(cron: string, timeZone: string): (after: Date) => Date {
  const time = new CronTime(cron, timeZone);
  const offset = (instant: Date) => DateTime.fromJSDate(instant, { zone: timeZone }).offset;
  return (after) => {
    let probe = after.getTime();
    for (let step = 1_000, i = 0; i < 48; step *= 2, i++) {
      const next = time.getNextDateFrom(new Date(probe), timeZone).toJSDate();
      if (next.getTime() > after.getTime()) return next;
      const other = new Date(next.getTime() + Math.abs(offset(after) - offset(next)) * 60_000);
      if (other.getTime() > after.getTime()) return other;
      probe += step;
    }
    throw new Error(`cron "${cron}" names no instant after ${after.toISOString()}`);
  };
}

/**
 * The latest scheduled instant of `cron` at or before `now`, if one falls within `windowMs`.
 * Walks forward from the start of the window, so it is exact for any expression.
 */
export function latestSlot(cron: string, timeZone: string, now: Date, windowMs: number): Date | undefined {
  const step = stepper(cron, timeZone);
  let cursor = new Date(now.getTime() - windowMs - 1);
  let latest: Date | undefined;
  for (let i = 0; i < 100_000; i++) {
    const next = step(cursor);
    if (next.getTime() > now.getTime()) break;
    latest = next;
    cursor = next;
  }
  return latest;
}

/** The first scheduled instant of `cron` strictly after `after`. */
export function nextSlot(cron: string, timeZone: string, after: Date): Date {
  return stepper(cron, timeZone)(after);
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
  const step = stepper(cron, timeZone);
  const slots: Date[] = [];
  let dropped = 0;
  let cursor = after;
  for (let i = 0; i < 20_000; i++) {
    const next = step(cursor);
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

/**
 * Whether `instant` is one of the instants a running cron of `cron` in `timeZone` fires at: it
 * must be cron's next instant after the scheduled instant before it, not only after `instant - 1 ms`
 * (on a fall-back day cron fires a repeated local time once, at its first occurrence, so the
 * second 02:30 of Europe/Berlin's 2026-10-25, 01:30Z, is refused although cron would name it
 * when asked from 01:29:59.999Z).
 */
export function isScheduledSlot(cron: string, timeZone: string, instant: Date): boolean {
  const justBefore = new Date(instant.getTime() - 1);
  if (nextSlot(cron, timeZone, justBefore).getTime() !== instant.getTime()) return false;
  const previous = previousSlot(cron, timeZone, justBefore);
  return !previous || nextSlot(cron, timeZone, previous).getTime() === instant.getTime();
}

/** What fell due between two ticks of a job, as {@link dueSlots} finds it. */
export interface DueSlots {
  /** The latest due slot of each period that has one, oldest first. */
  latestOfPeriods: Date[];
  /** The newest due slot (the next tick continues after it). */
  last?: Date;
  /** How many slots fell due: exact when `exact`, else a lower bound. */
  count: number;
  exact: boolean;
}

/** Cron steps one {@link dueSlots} call takes before it stops counting slots one by one. */
const DUE_SLOT_STEPS = 100;
/** Periods one {@link dueSlots} call covers at most (the next call continues after them). */
const DUE_PERIODS = 100;

/**
 * The slots of `cron` in `(after, until]`, summarised per period of `job`: the latest slot of each
 * period and the number of slots. Cheap whatever the gap (a tick must not block the event loop
 * with cron's arithmetic, ~1 ms a step): slots are counted one by one for {@link DUE_SLOT_STEPS}
 * steps, then each period's latest slot is searched back from its end (the count becomes a lower
 * bound); at most {@link DUE_PERIODS} periods are covered.
 */
export function dueSlots(
  job: JobName,
  cron: string,
  timeZone: string,
  after: Date,
  until: Date,
  budget = DUE_SLOT_STEPS,
): DueSlots {
  const next = stepper(cron, timeZone);
  const latestOfPeriods: Date[] = [];
  let count = 0;
  let exact = true;
  let steps = 0;
  let lookahead: Date | undefined;
  let cursor = after;
  for (let period = 0; period < DUE_PERIODS; period++) {
    const first = lookahead ?? next(cursor);
    if (!lookahead) steps++;
    lookahead = undefined;
    if (first.getTime() > until.getTime()) break;
    const horizon = Math.min(until.getTime(), jobPeriodBounds(job, first, timeZone).end.getTime() - 1);
    let last = first;
    count++;
    for (;;) {
      if (steps >= budget) {
        const latest = latestSlotIn(next, last, new Date(horizon));
        if (latest.getTime() > last.getTime()) {
          exact = false;
          count++;
          last = latest;
        }
        break;
      }
      const candidate = next(last);
      steps++;
      if (candidate.getTime() > horizon) {
        lookahead = candidate;
        break;
      }
      last = candidate;
      count++;
    }
    latestOfPeriods.push(last);
    cursor = last;
  }
  return { latestOfPeriods, last: latestOfPeriods[latestOfPeriods.length - 1], count, exact };
}

/** The latest slot in `[floor, until]` (`floor` is a slot), searched back from `until` in growing windows. */
function latestSlotIn(next: (after: Date) => Date, floor: Date, until: Date): Date {
  for (const windowMs of [2_000, 120_000, 7_200_000, 2 * 86_400_000, 64 * 86_400_000]) {
    let cursor = new Date(Math.max(floor.getTime(), until.getTime() - windowMs - 1));
    let latest: Date | undefined;
    for (let i = 0; i < 200; i++) {
      const candidate = next(cursor);
      if (candidate.getTime() > until.getTime()) break;
      latest = candidate;
      cursor = candidate;
    }
    if (latest) return latest;
    if (until.getTime() - windowMs <= floor.getTime()) break;
  }
  return floor;
}

/**
 * The newest scheduled instants of `cron` in `[from, until]`, at most `max` of them, oldest
 * first. The walk starts about `max` slot intervals before `until` (the interval between the
 * two slots after `until`), and yields to the event loop every few steps: callers are async paths (a publish),
 * and cron's arithmetic costs about 1 ms a step.
 */
export async function recentSlots(
  cron: string,
  timeZone: string,
  from: Date,
  until: Date,
  max: number,
): Promise<Date[]> {
  const next = stepper(cron, timeZone);
  const following = next(until);
  const interval = Math.max(next(following).getTime() - following.getTime(), 1_000);
  let cursor = new Date(Math.max(from.getTime(), until.getTime() - interval * max) - 1);
  const slots: Date[] = [];
  for (let i = 0; i < 2 * max; i++) {
    if (i > 0 && i % 50 === 0) await new Promise((resolve) => setImmediate(resolve));
    const slot = next(cursor);
    if (slot.getTime() > until.getTime()) break;
    slots.push(slot);
    if (slots.length > max) slots.shift();
    cursor = slot;
  }
  return slots;
}
