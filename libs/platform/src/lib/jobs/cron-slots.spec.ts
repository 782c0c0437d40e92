import fc from 'fast-check';
import { recentSlots, isScheduledSlot, latestSlot, nextSlot, previousSlot, slotsBetween } from './cron-slots';

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

  it('agrees with what a running cron fires on a fall-back day (a repeated local time fires once)', () => {
    const cron = '30 2 * * *';
    const fired = slotsBetween(
      cron,
      'Europe/Berlin',
      new Date('2026-10-24T12:00:00Z'),
      new Date('2026-10-26T12:00:00Z'),
    );
    expect(fired.slots.map((d) => d.toISOString())).toEqual([
      '2026-10-25T00:30:00.000Z',
      '2026-10-26T01:30:00.000Z',
    ]);
    expect(isScheduledSlot(cron, 'Europe/Berlin', new Date('2026-10-25T00:30:00.000Z'))).toBe(true);
    expect(isScheduledSlot(cron, 'Europe/Berlin', new Date('2026-10-25T01:30:00.000Z'))).toBe(false);
    expect(isScheduledSlot(cron, 'Europe/Berlin', new Date('2026-10-26T01:30:00.000Z'))).toBe(true);
    // The repeated hour itself is fired twice by an hourly cron: both instants are slots.
    for (const iso of ['2026-10-25T00:00:00.000Z', '2026-10-25T01:00:00.000Z', '2026-10-25T02:00:00.000Z'])
      expect(isScheduledSlot('0 * * * *', 'Europe/Berlin', new Date(iso))).toBe(true);
  });

  it("walks forward where cron's own next instant goes backwards (America/Santiago's repeated hour)", () => {
    const after = new Date('2026-04-05T02:00:00Z');
    const { slots } = slotsBetween(
      '0 */30 * * * *',
      'America/Santiago',
      after,
      new Date('2026-04-05T05:00:00Z'),
    );
    expect(slots.length).toBeLessThanOrEqual(6);
    slots.reduce(
      (previous, slot) => (expect(slot.getTime()).toBeGreaterThan(previous.getTime()), slot),
      after,
    );
    expect(slots.map((d) => d.toISOString())).toContain('2026-04-05T04:00:00.000Z');
    expect(
      nextSlot('0 */30 * * * *', 'America/Santiago', new Date('2026-04-05T03:00:00Z')).getTime(),
    ).toBeGreaterThan(Date.parse('2026-04-05T03:00:00Z'));
  });

  it('agrees with a running cron on every instant of DST days (property: a walk of cron is the oracle)', () => {
    const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
    console.log(`cron-slots.spec isScheduledSlot: fast-check seed ${seed}`);
    const days = [
      '2026-03-29T00:00:00Z',
      '2026-10-25T00:00:00Z',
      '2026-04-05T00:00:00Z',
      '2026-09-06T00:00:00Z',
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(
          '30 2 * * *',
          '0 2 * * *',
          '0 */30 * * * *',
          '30 59 23 * * *',
          '0 0 0 * * *',
          '15 1-3 * * *',
        ),
        fc.constantFrom('Europe/Berlin', 'America/Santiago'),
        fc.constantFrom(...days),
        (cron, timeZone, day) => {
          const from = new Date(Date.parse(day) - 43_200_000);
          const until = new Date(Date.parse(day) + 129_600_000);
          const fired = slotsBetween(cron, timeZone, from, until).slots;
          const firedSet = new Set(fired.map((d) => d.getTime()));
          for (const slot of fired) expect(isScheduledSlot(cron, timeZone, slot)).toBe(true);
          // Every half hour of the window (plus the fired instants): scheduled iff fired.
          for (let t = from.getTime() + 3_600_000; t <= until.getTime(); t += 1_800_000)
            expect([new Date(t).toISOString(), isScheduledSlot(cron, timeZone, new Date(t))]).toEqual([
              new Date(t).toISOString(),
              firedSet.has(t),
            ]);
        },
      ),
      { seed, numRuns: 8 },
    );
  });

  it('finds the scheduled slots around an instant', () => {
    const instant = new Date('2026-11-22T07:00:00.001Z');
    expect(previousSlot('0 9 1 * *', 'UTC', instant)?.toISOString()).toBe('2026-11-01T09:00:00.000Z');
    expect(previousSlot('* * * * * *', 'UTC', instant)?.toISOString()).toBe('2026-11-22T07:00:00.000Z');
    expect(nextSlot('0 7 * * *', 'UTC', instant).toISOString()).toBe('2026-11-23T07:00:00.000Z');
  });

  it('lists the newest slots of a period up to an instant, bounded (the publisher reads their pre-period claims)', async () => {
    const start = new Date('2026-11-22T00:00:00.000Z');
    const hourly = await recentSlots('0 0 * * * *', 'UTC', start, new Date('2026-11-22T09:59:59.999Z'), 1440);
    expect(hourly.map((d) => d.toISOString().slice(11, 16))).toEqual(
      ['00', '01', '02', '03', '04', '05', '06', '07', '08', '09'].map((h) => `${h}:00`),
    );
    const minutes = await recentSlots(
      '0 * * * * *',
      'UTC',
      start,
      new Date('2026-11-22T23:59:00.000Z'),
      1440,
    );
    expect(minutes).toHaveLength(1440);
    expect(minutes[0].toISOString()).toBe('2026-11-22T00:00:00.000Z');
    const seconds = await recentSlots('* * * * * *', 'UTC', start, new Date('2026-11-22T12:00:00.000Z'), 100);
    expect(seconds).toHaveLength(100);
    expect(seconds[99].toISOString()).toBe('2026-11-22T12:00:00.000Z');
    expect(seconds[0].toISOString()).toBe('2026-11-22T11:58:21.000Z');
  });
});
