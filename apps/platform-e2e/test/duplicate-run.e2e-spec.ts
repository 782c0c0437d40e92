import { INestApplication, INestApplicationContext } from '@nestjs/common';
import { jobEventId, type User } from '@once/platform';
import { e2eQueueUrl, SesMailbox, sendJson, testSqsClient, waitFor } from '@once/testing';
import request from 'supertest';
import {
  bootInProcessPlatform,
  CronJobsRegistrar,
  type InProcessPlatform,
} from './support/in-process-platform';

const USERS = 12;
const TOKEN = 'platform-e2e-admin-token-0123456';
const SLOT = new Date('2026-12-01T07:00:00.000Z');
/** The scheduler's calendar day of SLOT (UTC): job and email keys derive from it. */
const PERIOD = '2026-12-01';
const SUBJECT = 'Your daily digest for 2026-12-01';

interface CauseCounts {
  redelivery: number;
  producerDuplicate: number;
  unknown: number;
  total: number;
}
interface Stats {
  duplicates: Array<{ scope: string; suppressed: CauseCounts; deferred: CauseCounts }>;
  mail: { byStatus: Record<string, number>; total: number };
  queues: Array<{ name: string; visible: number; inFlight: number; delayed: number }> | null;
}

describe('a duplicated run: the slot fired twice, messages duplicated by hand on both queues', () => {
  const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
  const sqs = testSqsClient();
  const admin = { Authorization: `Bearer ${TOKEN}` };
  let api: INestApplication;
  let scheduler: INestApplicationContext;
  let users: Pick<User, 'id' | 'email'>[];

  const get = async <T>(path: string, query: Record<string, string | number> = {}): Promise<T> =>
    (await request(api.getHttpServer()).get(path).query(query).set(admin).expect(200)).body as T;
  const stats = () => get<Stats>('/admin/stats');
  const suppressed = (body: Stats, scope: string): CauseCounts =>
    body.duplicates.find((entry) => entry.scope === scope)?.suppressed ?? {
      redelivery: 0,
      producerDuplicate: 0,
      unknown: 0,
      total: 0,
    };
  const digests = async () => (await mailbox.all()).filter((mail) => mail.subject === SUBJECT);

  let platform: InProcessPlatform | undefined;

  beforeAll(async () => {
    platform = await bootInProcessPlatform({
      users: USERS,
      apiEnv: { ADMIN_TOKENS: TOKEN, ADMIN_RATE_LIMIT_PER_MINUTE: '100000' },
    });
    ({ api, scheduler } = platform);
    users = await platform.dataSource.query('SELECT id, email FROM users WHERE subscribed ORDER BY id');
    await mailbox.clear();
  });

  afterAll(async () => {
    await platform?.close();
    sqs.destroy();
  });

  it('gives every user exactly one digest, and the admin API tells what happened', async () => {
    const before = await stats();
    const eventId = jobEventId('daily-digest', PERIOD);

    // The scheduler fires the slot twice and an operator triggers it too: one job is enqueued.
    const registrar = scheduler.get(CronJobsRegistrar);
    const first = await registrar.fire('daily-digest', SLOT);
    const again = await registrar.fire('daily-digest', SLOT);
    const manual = await request(api.getHttpServer())
      .post('/admin/jobs/daily-digest/trigger')
      .set(admin)
      .send({ slot: SLOT.toISOString() })
      .expect(200);
    expect(first).toMatchObject({ status: 'enqueued', eventId });
    expect(again).toMatchObject({ status: 'duplicate', eventId });
    expect(manual.body).toMatchObject({ status: 'duplicate', eventId });
    if (first.status !== 'enqueued') throw new Error('the first fire must enqueue');

    // A producer that resends the job right away (it races the original) ...
    await sendJson(sqs, e2eQueueUrl('once-jobs'), first.message);
    await waitFor(`${users.length} digests`, async () =>
      (await digests()).length >= users.length ? true : undefined,
    );
    // ... and once more after it completed, with copies of the first three users' emails.
    await sendJson(sqs, e2eQueueUrl('once-jobs'), first.message);
    const copies = users.slice(0, 3).map((user) => ({
      eventId: `digest:${PERIOD}:user:${user.id}`,
      userId: user.id,
      to: user.email,
      subject: SUBJECT,
      text: 'a copy that must never be sent',
    }));
    for (const copy of copies) await sendJson(sqs, e2eQueueUrl('once-send-email'), copy);

    // Done when every copy was turned away and both queues are empty (nothing in flight or deferred).
    const after = await waitFor('the duplicates turned away and the queues drained', async () => {
      const current = await stats();
      const jobs =
        suppressed(current, 'jobs').producerDuplicate - suppressed(before, 'jobs').producerDuplicate;
      const emails =
        suppressed(current, 'send-email').producerDuplicate -
        suppressed(before, 'send-email').producerDuplicate;
      const idle = current.queues?.every((queue) => queue.visible + queue.inFlight + queue.delayed === 0);
      return jobs >= 1 && emails >= copies.length && idle ? current : undefined;
    });

    const final = await digests();
    expect(final).toHaveLength(users.length);
    expect(new Set(final.map((mail) => mail.destination.to[0]))).toEqual(new Set(users.map((u) => u.email)));
    expect(final.every((mail) => !mail.body.text?.includes('a copy that must never be sent'))).toBe(true);

    // What the admin API reports about the run.
    expect(
      suppressed(after, 'send-email').producerDuplicate - suppressed(before, 'send-email').producerDuplicate,
    ).toBe(copies.length);
    expect(suppressed(after, 'jobs').total - suppressed(before, 'jobs').total).toBeGreaterThanOrEqual(2);
    expect(after.mail.byStatus.sent - before.mail.byStatus.sent).toBe(users.length);

    const jobRecords = await get<{ items: Array<{ key: string; state: string }> }>('/admin/idempotency', {
      scope: 'jobs',
      prefix: eventId,
    });
    expect(jobRecords.items).toEqual([expect.objectContaining({ key: eventId, state: 'COMPLETED' })]);
    const emailRecords = await get<{ items: Array<{ state: string }>; nextCursor: string | null }>(
      '/admin/idempotency',
      { scope: 'send-email', prefix: `digest:${PERIOD}:`, state: 'COMPLETED', limit: 200 },
    );
    expect(emailRecords.items).toHaveLength(users.length);

    const sent: string[] = [];
    let cursor: string | undefined;
    do {
      const page: { items: Array<{ idempotencyKey: string }>; nextCursor?: string } = await get(
        '/admin/mail',
        {
          status: 'sent',
          limit: 200,
          ...(cursor ? { cursor } : {}),
        },
      );
      sent.push(...page.items.map((item) => item.idempotencyKey));
      cursor = page.nextCursor;
    } while (cursor);
    const prefix = `digest:${PERIOD}:user:`;
    expect(sent.filter((key) => key.startsWith(prefix)).sort()).toEqual(
      users.map((user) => `${prefix}${user.id}`).sort(),
    );
  });

  it('keeps the admin endpoints closed without the right token', async () => {
    for (const path of [
      '/admin/stats',
      '/admin/idempotency',
      `/admin/idempotency/jobs/${jobEventId('daily-digest', PERIOD)}`,
    ]) {
      await request(api.getHttpServer()).get(path).expect(401);
      await request(api.getHttpServer())
        .get(path)
        .set('Authorization', 'Bearer not-the-token-0000000')
        .expect(401);
    }
    await request(api.getHttpServer())
      .delete(`/admin/idempotency/jobs/${jobEventId('daily-digest', PERIOD)}`)
      .set('X-Api-Key', 'not-the-token-0000000')
      .expect(401);
    await get(`/admin/idempotency/jobs/${encodeURIComponent(jobEventId('daily-digest', PERIOD))}`);
  });
});
