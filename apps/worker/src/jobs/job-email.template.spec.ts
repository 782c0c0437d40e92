import { JobMessage } from '@once/platform';
import { LinkBuilder, LinkVerifier } from '@once/tracking';
import { jobEmail, jobEmailKey } from './job-email.template';

describe('job emails', () => {
  const tracking = { baseUrl: 'https://site.example', secrets: ['a-secret-of-at-least-32-characters!!'] };
  const links = new LinkBuilder(tracking);
  const digest: JobMessage = {
    eventId: 'daily-digest:2026-11-22T07:00:00.000Z',
    job: 'daily-digest',
    slot: '2026-11-22T07:00:00.000Z',
    firedAt: '2026-11-22T07:00:00.120Z',
    trigger: 'cron',
  };
  const user = { id: '42', email: 'ada@example.com', name: 'Ada' };

  it('keys each email by job, slot and user, so a re-run fan-out produces the same keys', () => {
    expect(jobEmailKey(digest, '42')).toBe('digest:2026-11-22T07:00:00.000Z:user:42');
    expect(jobEmailKey({ ...digest, job: 'monthly-reminder', trigger: 'manual' }, '42')).toBe(
      'reminder:2026-11-22T07:00:00.000Z:user:42',
    );
    expect(jobEmail(digest, user, links)).toEqual(
      jobEmail({ ...digest, firedAt: 'later', trigger: 'catch-up' }, user, links),
    );
  });

  it('writes the digest with a signed link that verifies for this recipient', () => {
    const email = jobEmail(digest, user, links);
    expect(email).toMatchObject({
      eventId: 'digest:2026-11-22T07:00:00.000Z:user:42',
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
      { ...digest, job: 'monthly-reminder', eventId: 'monthly-reminder:x' },
      user,
      links,
    );
    expect(email.subject).toBe('Your monthly reminder for 2026-11');
    expect(email.text).toContain('/daily/?/settings/notifications/&c=Monthly_Reminder&r=42');
  });
});
