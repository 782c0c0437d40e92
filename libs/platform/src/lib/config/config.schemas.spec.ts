import { schedulesEnvSchema } from './config.schemas';

describe('schedulesEnvSchema', () => {
  it('defaults to a 07:00 UTC digest and a reminder on the 1st at 09:00', () => {
    expect(schedulesEnvSchema.parse({})).toEqual({
      DIGEST_CRON: '0 7 * * *',
      REMINDER_CRON: '0 9 1 * *',
      SCHEDULER_TIMEZONE: 'UTC',
    });
  });

  it('accepts IANA zones and fixed offsets, and refuses unknown zones', () => {
    expect(schedulesEnvSchema.parse({ SCHEDULER_TIMEZONE: 'Europe/Berlin' }).SCHEDULER_TIMEZONE).toBe(
      'Europe/Berlin',
    );
    expect(schedulesEnvSchema.parse({ SCHEDULER_TIMEZONE: 'UTC+05:45' }).SCHEDULER_TIMEZONE).toBe(
      'UTC+05:45',
    );
    const refused = schedulesEnvSchema.safeParse({ SCHEDULER_TIMEZONE: 'Europe/Atlantis' });
    expect(refused.success).toBe(false);
    expect(refused.error?.issues[0]).toMatchObject({
      path: ['SCHEDULER_TIMEZONE'],
      message: expect.stringContaining('IANA time zone'),
    });
  });

  it('refuses a bad cron expression but accepts off', () => {
    expect(schedulesEnvSchema.parse({ REMINDER_CRON: 'off' }).REMINDER_CRON).toBe('off');
    expect(schedulesEnvSchema.safeParse({ DIGEST_CRON: 'every morning' }).success).toBe(false);
  });
});
