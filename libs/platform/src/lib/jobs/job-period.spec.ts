import fc from 'fast-check';
import { isValidTimeZone, jobPeriod, jobPeriodBounds } from './job-period';

const seed = Number(process.env.FC_SEED ?? Math.floor(Math.random() * 2 ** 31));
console.log(`job-period.spec: fast-check seed ${seed} (rerun with FC_SEED=${seed})`);

// Zones with DST at midnight (Santiago, Havana), half-hour DST (Lord Howe), odd offsets
// (Kathmandu, Chatham), both hemispheres, and fixed offsets.
const ZONES = [
  'UTC',
  'Europe/Berlin',
  'America/New_York',
  'America/Los_Angeles',
  'America/Santiago',
  'America/Havana',
  'America/Sao_Paulo',
  'Australia/Lord_Howe',
  'Asia/Kathmandu',
  'Pacific/Chatham',
  'Pacific/Kiritimati',
  'Etc/GMT+12',
  'UTC+5:37',
];

/** An independent oracle: the calendar date Intl prints for the instant in the zone. */
function intlDate(instant: Date, timeZone: string): string {
  const zone = timeZone.startsWith('UTC+') ? undefined : timeZone;
  const shifted = zone ? instant : new Date(instant.getTime() + (5 * 60 + 37) * 60_000);
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: zone ?? 'UTC',
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(shifted);
}

const instants = fc.date({
  min: new Date('2000-01-01T00:00:00Z'),
  max: new Date('2100-01-01T00:00:00Z'),
  noInvalidDate: true,
});
const zones = fc.constantFrom(...ZONES);

describe('jobPeriod', () => {
  it('names the calendar day or month in the time zone', () => {
    expect(jobPeriod('daily-digest', new Date('2026-12-02T07:00:00Z'), 'UTC')).toBe('2026-12-02');
    expect(jobPeriod('daily-digest', new Date('2026-12-01T23:30:00Z'), 'Europe/Berlin')).toBe('2026-12-02');
    expect(jobPeriod('daily-digest', new Date('2026-12-02T07:00:00Z'), 'America/Los_Angeles')).toBe(
      '2026-12-01',
    );
    expect(jobPeriod('monthly-reminder', new Date('2026-11-30T23:30:00Z'), 'Europe/Berlin')).toBe('2026-12');
    expect(jobPeriod('monthly-reminder', new Date('2026-12-01T09:00:00Z'), 'UTC')).toBe('2026-12');
  });

  it('gives a DST day its 23 or 25 hours', () => {
    const spring = jobPeriodBounds('daily-digest', new Date('2026-03-29T12:00:00Z'), 'Europe/Berlin');
    expect(spring.start.toISOString()).toBe('2026-03-28T23:00:00.000Z');
    expect(spring.end.getTime() - spring.start.getTime()).toBe(23 * 3_600_000);
    const autumn = jobPeriodBounds('daily-digest', new Date('2026-10-25T12:00:00Z'), 'Europe/Berlin');
    expect(autumn.end.getTime() - autumn.start.getTime()).toBe(25 * 3_600_000);
    // Santiago skips midnight itself: the day starts at 01:00 local.
    const santiago = jobPeriodBounds('daily-digest', new Date('2026-09-06T12:00:00Z'), 'America/Santiago');
    expect(jobPeriod('daily-digest', santiago.start, 'America/Santiago')).toBe('2026-09-06');
    expect(jobPeriod('daily-digest', new Date(santiago.start.getTime() - 1), 'America/Santiago')).toBe(
      '2026-09-05',
    );
    // Havana fell back from 01:00 to 00:00: the day starts at the first of its two midnights.
    const havana = jobPeriodBounds('daily-digest', new Date('2009-10-25T05:00:00Z'), 'America/Havana');
    expect(havana.start.toISOString()).toBe('2009-10-25T04:00:00.000Z');
    expect(havana.end.getTime() - havana.start.getTime()).toBe(25 * 3_600_000);
  });

  it('agrees with Intl on the local calendar date, across zones and DST transitions', () => {
    fc.assert(
      fc.property(instants, zones, (instant, zone) => {
        const day = intlDate(instant, zone);
        expect(jobPeriod('daily-digest', instant, zone)).toBe(day);
        expect(jobPeriod('monthly-reminder', instant, zone)).toBe(day.slice(0, 7));
      }),
      { seed, numRuns: 3000 },
    );
  });

  it('bounds each period exactly: its start and last millisecond are in it, its end is not', () => {
    fc.assert(
      fc.property(
        instants,
        zones,
        fc.constantFrom('daily-digest' as const, 'monthly-reminder' as const),
        (instant, zone, job) => {
          const period = jobPeriod(job, instant, zone);
          const { start, end } = jobPeriodBounds(job, instant, zone);
          expect(start.getTime()).toBeLessThanOrEqual(instant.getTime());
          expect(end.getTime()).toBeGreaterThan(instant.getTime());
          expect(jobPeriod(job, start, zone)).toBe(period);
          expect(jobPeriod(job, new Date(end.getTime() - 1), zone)).toBe(period);
          expect(jobPeriod(job, end, zone)).not.toBe(period);
          expect(jobPeriod(job, new Date(start.getTime() - 1), zone)).not.toBe(period);
        },
      ),
      { seed, numRuns: 1000 },
    );
  });

  it('refuses an unknown time zone instead of guessing', () => {
    expect(isValidTimeZone('Europe/Berlin')).toBe(true);
    expect(isValidTimeZone('UTC+05:45')).toBe(true);
    expect(isValidTimeZone('Mars/Olympus')).toBe(false);
    expect(() => jobPeriod('daily-digest', new Date(), 'Mars/Olympus')).toThrow(
      'unknown time zone "Mars/Olympus"',
    );
  });
});
