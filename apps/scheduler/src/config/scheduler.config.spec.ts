import { loadConfig } from '@once/platform';
import { jobSchedules } from '../jobs/cron-jobs.registrar';
import { schedulerEnvSchema } from './scheduler.config';

describe('scheduler config', () => {
  it('defaults to a 07:00 UTC digest and a monthly reminder on the 1st, with catch-up', () => {
    const config = loadConfig('scheduler', schedulerEnvSchema, {});
    expect(jobSchedules(config)).toEqual({ 'daily-digest': '0 7 * * *', 'monthly-reminder': '0 9 1 * *' });
    expect(config).toMatchObject({
      SCHEDULER_TIMEZONE: 'UTC',
      SCHEDULER_CATCH_UP: true,
      SCHEDULER_CATCH_UP_WINDOW_HOURS: 24,
      SCHEDULER_CATCH_UP_INTERVAL_MS: 600_000,
      SCHEDULER_RETRY_BASE_MS: 1_000,
      SCHEDULER_RETRY_MAX_MS: 300_000,
    });
  });

  it('refuses a time zone cron and the job periods could not agree on', () => {
    expect(() =>
      loadConfig('scheduler', schedulerEnvSchema, { SCHEDULER_TIMEZONE: 'Europe/Atlantis' }),
    ).toThrow(/SCHEDULER_TIMEZONE: must be an IANA time zone/);
  });

  it('accepts six-field expressions and off', () => {
    const config = loadConfig('scheduler', schedulerEnvSchema, {
      DIGEST_CRON: '*/5 * * * * *',
      REMINDER_CRON: 'off',
    });
    expect(jobSchedules(config)).toEqual({ 'daily-digest': '*/5 * * * * *', 'monthly-reminder': 'off' });
  });

  it('purges expired dedup records hourly unless told otherwise', () => {
    expect(loadConfig('scheduler', schedulerEnvSchema, {}).DEDUP_PURGE_CRON).toBe('0 * * * *');
    expect(loadConfig('scheduler', schedulerEnvSchema, { DEDUP_PURGE_CRON: 'off' }).DEDUP_PURGE_CRON).toBe(
      'off',
    );
    expect(() => loadConfig('scheduler', schedulerEnvSchema, { DEDUP_PURGE_CRON: 'hourly' })).toThrow(
      /DEDUP_PURGE_CRON: must be a cron expression/,
    );
  });

  it('names each invalid variable', () => {
    expect(() =>
      loadConfig('scheduler', schedulerEnvSchema, {
        REMINDER_CRON: '61 * * * *',
        SCHEDULER_CATCH_UP: 'maybe',
      }),
    ).toThrow(/REMINDER_CRON: must be a cron expression[\s\S]*SCHEDULER_CATCH_UP/);
  });
});
