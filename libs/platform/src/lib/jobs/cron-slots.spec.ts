import { isScheduledSlot, latestSlot, nextSlot, previousSlot, slotsBetween } from './cron-slots';

describe('latestSlot', () => {
  const hour = 3_600_000;

  it('finds the most recent daily slot within the window', () => {
    const now = new Date('2026-11-22T09:30:00.000Z');
    expect(latestSlot('0 7 * * *', 'UTC', now, 24 * hour)?.toISOString()).toBe('2026-11-22T07:00:00.000Z');
  });

  it('counts a slot exactly at now', () => {
    const now = new Date('2026-11-22T07:00:00.000Z');
    expect(latestSlot('0 7 * * *', 'UTC', now, hour)?.toISOString()).toBe('2026-11-22T07:00:00.000Z');
  });

  it('returns nothing when the last slot is older than the window', () => {
    const now = new Date('2026-11-22T09:30:00.000Z');
    expect(latestSlot('0 7 * * *', 'UTC', now, 2 * hour)).toBeUndefined();
  });

  it('honours the time zone', () => {
    const now = new Date('2026-11-22T09:30:00.000Z');
    expect(latestSlot('0 7 * * *', 'Europe/Berlin', now, 24 * hour)?.toISOString()).toBe(
      '2026-11-22T06:00:00.000Z',
    );
  });

  it('handles a monthly schedule', () => {
    const now = new Date('2026-11-22T09:30:00.000Z');
    expect(latestSlot('0 9 1 * *', 'UTC', now, 31 * 24 * hour)?.toISOString()).toBe(
      '2026-11-01T09:00:00.000Z',
    );
  });
});

describe('slot helpers', () => {
  it('lists the slots in (after, until], oldest first, keeping the newest when capped', () => {
    const after = new Date('2026-11-22T07:00:00.000Z');
    const until = new Date('2026-11-22T07:00:05.000Z');
    expect(slotsBetween('* * * * * *', 'UTC', after, until).slots.map((d) => d.toISOString())).toEqual([
      '2026-11-22T07:00:01.000Z',
      '2026-11-22T07:00:02.000Z',
      '2026-11-22T07:00:03.000Z',
      '2026-11-22T07:00:04.000Z',
      '2026-11-22T07:00:05.000Z',
    ]);
    const capped = slotsBetween('* * * * * *', 'UTC', after, until, 2);
    expect(capped.slots.map((d) => d.toISOString())).toEqual([
      '2026-11-22T07:00:04.000Z',
      '2026-11-22T07:00:05.000Z',
    ]);
    expect(capped.dropped).toBe(3);
    expect(slotsBetween('0 7 * * *', 'UTC', after, until).slots).toEqual([]);
  });

  it('tells a scheduled instant from an off-grid one, in the time zone', () => {
    expect(isScheduledSlot('0 7 * * *', 'UTC', new Date('2026-11-22T07:00:00.000Z'))).toBe(true);
    expect(isScheduledSlot('0 7 * * *', 'UTC', new Date('2026-11-22T07:00:00.001Z'))).toBe(false);
    expect(isScheduledSlot('0 7 * * *', 'Europe/Berlin', new Date('2026-11-22T07:00:00.000Z'))).toBe(false);
    expect(isScheduledSlot('0 7 * * *', 'Europe/Berlin', new Date('2026-11-22T06:00:00.000Z'))).toBe(true);
  });

  it('finds the scheduled slots around an instant', () => {
    const instant = new Date('2026-11-22T07:00:00.001Z');
    expect(previousSlot('0 9 1 * *', 'UTC', instant)?.toISOString()).toBe('2026-11-01T09:00:00.000Z');
    expect(previousSlot('* * * * * *', 'UTC', instant)?.toISOString()).toBe('2026-11-22T07:00:00.000Z');
    expect(nextSlot('0 7 * * *', 'UTC', instant).toISOString()).toBe('2026-11-23T07:00:00.000Z');
  });
});
