import { latestSlot } from './cron-slots';

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
