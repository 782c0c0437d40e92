import { JobMessage } from '@once/platform';
import { LinkBuilder, LinkVerifier } from '@once/tracking';
import { jobEmail, jobEmailKey } from './job-email.template';

describe('job emails', () => {
  const tracking = { baseUrl: 'https://site.example', secrets: ['a-secret-of-at-least-32-characters!!'] };
  const links = new LinkBuilder(tracking);
  const digest: JobMessage = {
    eventId: 'daily-digest:2026-11-22',
    job: 'daily-digest',
    slot: '2026-11-22T07:00:00.000Z',
    period: '2026-11-22',
    firedAt: '2026-11-22T07:00:00.120Z',
    trigger: 'cron',
  };
  const user = { id: '42', email: 'ada@example.com', name: 'Ada' };

  it('keys each email by job, period and user, so a re-run fan-out and any slot of the period produce the same keys', () => {
    expect(jobEmailKey(digest, '42')).toBe('digest:2026-11-22:user:42');
    expect(
      jobEmailKey({ ...digest, job: 'monthly-reminder', period: '2026-11', trigger: 'manual' }, '42'),
    ).toBe('reminder:2026-11:user:42');
    expect(jobEmail(digest, user, links)).toEqual(
      jobEmail(
        { ...digest, slot: '2026-11-22T19:00:00.000Z', firedAt: 'later', trigger: 'catch-up' },
        user,
        links,
      ),
    );
  });

  it('keeps the slot-based key of a job enqueued before periods existed', () => {
    const legacy: JobMessage = {
      ...digest,
      eventId: 'daily-digest:2026-11-22T07:00:00.000Z',
      period: undefined,
    };
    expect(jobEmailKey(legacy, '42')).toBe('digest:2026-11-22T07:00:00.000Z:user:42');
    expect(jobEmail(legacy, user, links).subject).toBe('Your daily digest for 2026-11-22');
  });

  it("names the day by the scheduler's calendar, not the UTC date of the slot", () => {
    // 23:30Z on the 22nd is already the 23rd in Berlin.
    const berlin: JobMessage = { ...digest, slot: '2026-11-22T23:30:00.000Z', period: '2026-11-23' };
    expect(jobEmail(berlin, user, links)).toMatchObject({
      eventId: 'digest:2026-11-23:user:42',
      subject: 'Your daily digest for 2026-11-23',
    });
  });

  it('writes the digest with a signed link that verifies for this recipient', () => {
    const email = jobEmail(digest, user, links);
    expect(email).toMatchObject({
      eventId: 'digest:2026-11-22:user:42',
      userId: '42',
      to: 'ada@example.com',
      subject: 'Your daily digest for 2026-11-22',
    });
    const link = email.text.split('\n').find((line) => line.startsWith('https://'));
    const verified = new LinkVerifier(tracking).verify(link!);
    expect(verified).toMatchObject({ ok: true });
    expect(verified.ok && verified.location).toBe(
      'https://site.example/updates/2026-11-22/?utm_source=email&utm_medium=email&utm_campaign=Daily_Notification',
    );
    expect(email.text).toContain('Hello Ada,');
  });

  it('writes the monthly reminder to the notification settings', () => {
    const email = jobEmail(
      { ...digest, job: 'monthly-reminder', eventId: 'monthly-reminder:2026-11', period: '2026-11' },
      user,
      links,
    );
    expect(email.subject).toBe('Your monthly reminder for 2026-11');
    expect(email.text).toContain('/daily/?/settings/notifications/&c=Monthly_Reminder&r=42');
  });
});
