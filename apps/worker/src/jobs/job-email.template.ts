import type { JobMessage, JobName, SendEmailMessage, User } from '@once/platform';
import type { LinkBuilder } from '@once/tracking';

interface JobEmailContent {
  keyPrefix: string;
  campaign: string;
  subject: (day: string) => string;
  body: (day: string) => string;
  /** Site path the email's tracked link points at. */
  path: (day: string) => string;
}

const CONTENT: Record<JobName, JobEmailContent> = {
  'daily-digest': {
    keyPrefix: 'digest',
    campaign: 'Daily_Notification',
    subject: (day) => `Your daily digest for ${day}`,
    body: (day) => `Here is what changed in the packages you follow, as of ${day}.`,
    path: (day) => `/updates/${day}/`,
  },
  'monthly-reminder': {
    keyPrefix: 'reminder',
    campaign: 'Monthly_Reminder',
    subject: (day) => `Your monthly reminder for ${day.slice(0, 7)}`,
    body: () => 'A reminder to review the packages you follow and your notification settings.',
    path: () => '/settings/notifications/',
  },
};

/**
 * Idempotency key of one user's email for one job period (`digest:2026-12-02:user:42`): stable
 * across fan-out retries and across every slot, catch-up and manual trigger of the period. A job
 * enqueued before periods existed keeps its slot-based key, so a fan-out of it that crashed and
 * reruns after the deploy does not mail again the users it already reached.
 */
export function jobEmailKey(job: JobMessage, userId: string): string {
  return `${CONTENT[job.job].keyPrefix}:${job.period ?? job.slot}:user:${userId}`;
}

/** The plain-text email a job sends to one user, with a signed click-tracking link. */
export function jobEmail(
  job: JobMessage,
  user: Pick<User, 'id' | 'email' | 'name'>,
  links: LinkBuilder,
): SendEmailMessage {
  // The period is the scheduler's calendar day (or month); a pre-period job falls back to the UTC day.
  const day = job.period ?? job.slot.slice(0, 10);
  const content = CONTENT[job.job];
  const eventId = jobEmailKey(job, user.id);
  const link = links.build(content.path(day), {
    campaign: content.campaign,
    recipientId: user.id,
    messageKey: eventId,
  });
  return {
    eventId,
    userId: user.id,
    to: user.email,
    subject: content.subject(day),
    text: [`Hello ${user.name},`, '', content.body(day), '', link, '', `-- Once (ref ${job.eventId})`].join(
      '\n',
    ),
  };
}
