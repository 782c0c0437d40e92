import { INestApplication } from '@nestjs/common';
import { drain, e2eQueueUrl, testSqsClient } from '@once/testing';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-admin-token-0123456789';

/** Issue 11 item 4: a manual trigger names a slot on the job's schedule, and enqueues its period once. */
describe('POST /admin/jobs/:job/trigger', () => {
  const sqs = testSqsClient();
  const apps: INestApplication[] = [];
  let run = 0;
  const admin = { Authorization: `Bearer ${TOKEN}` };
  const boot = async (env: Record<string, string> = {}) => {
    const app = await bootstrap({
      env: {
        PORT: '0',
        ADMIN_TOKENS: TOKEN,
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}trigger${++run}:`,
        ...env,
      },
    });
    apps.push(app);
    return app.getHttpServer();
  };
  const trigger = (server: unknown, job: string, slot: string) =>
    request(server as Parameters<typeof request>[0])
      .post(`/admin/jobs/${job}/trigger`)
      .set(admin)
      .send({ slot });
  const queuedEventIds = async () =>
    (await drain(sqs, e2eQueueUrl('once-jobs'), 0)).map((m) => JSON.parse(m.Body!).eventId as string);

  afterEach(async () => {
    await Promise.all(apps.splice(0).map((app) => app.close()));
    await drain(sqs, e2eQueueUrl('once-jobs'), 0);
  });

  afterAll(() => sqs.destroy());

  it('refuses an off-grid instant (400) and names the scheduled slots around it', async () => {
    const server = await boot();
    const refused = await trigger(server, 'daily-digest', '2026-11-22T07:00:00.001Z').expect(400);
    expect(refused.body.message).toContain('not on the schedule of daily-digest');
    expect(refused.body).toMatchObject({
      previous: '2026-11-22T07:00:00.000Z',
      next: '2026-11-23T07:00:00.000Z',
      cron: '0 7 * * *',
      timeZone: 'UTC',
    });
    const accepted = await trigger(server, 'daily-digest', '2026-11-22T07:00:00Z').expect(200);
    expect(accepted.body).toMatchObject({
      status: 'enqueued',
      eventId: 'daily-digest:2026-11-22',
      message: { period: '2026-11-22', slot: '2026-11-22T07:00:00.000Z', trigger: 'manual' },
    });
    // The same instant written with an offset is the same slot.
    const again = await trigger(server, 'daily-digest', '2026-11-22T08:00:00+01:00').expect(200);
    expect(again.body).toMatchObject({ status: 'duplicate', eventId: 'daily-digest:2026-11-22' });
    expect(await queuedEventIds()).toEqual(['daily-digest:2026-11-22']);
  });

  it("reads the schedule in SCHEDULER_TIMEZONE: the README's 07:00Z is off-grid in Berlin", async () => {
    const server = await boot({ SCHEDULER_TIMEZONE: 'Europe/Berlin' });
    const refused = await trigger(server, 'daily-digest', '2026-11-22T07:00:00Z').expect(400);
    expect(refused.body).toMatchObject({
      previous: '2026-11-22T06:00:00.000Z',
      next: '2026-11-23T06:00:00.000Z',
      timeZone: 'Europe/Berlin',
    });
    await trigger(server, 'daily-digest', '2026-11-22T06:00:00Z')
      .expect(200)
      .expect((res) => expect(res.body).toMatchObject({ eventId: 'daily-digest:2026-11-22' }));
    await trigger(server, 'monthly-reminder', '2026-11-01T08:00:00Z')
      .expect(200)
      .expect((res) => expect(res.body).toMatchObject({ eventId: 'monthly-reminder:2026-11' }));
    expect((await queuedEventIds()).sort()).toEqual(['daily-digest:2026-11-22', 'monthly-reminder:2026-11']);
  });

  it('accepts any instant of a job whose schedule is off, keyed by its period', async () => {
    const server = await boot({ REMINDER_CRON: 'off' });
    await trigger(server, 'monthly-reminder', '2026-11-15T12:34:56.789Z')
      .expect(200)
      .expect((res) =>
        expect(res.body).toMatchObject({ status: 'enqueued', eventId: 'monthly-reminder:2026-11' }),
      );
    await trigger(server, 'monthly-reminder', '2026-11-30T23:59:59Z')
      .expect(200)
      .expect((res) => expect(res.body).toMatchObject({ status: 'duplicate' }));
    expect(await queuedEventIds()).toEqual(['monthly-reminder:2026-11']);
  });

  it('refuses a slot that has not fallen due yet (it would use up that period now), also with the schedule off', async () => {
    const server = await boot({ REMINDER_CRON: 'off' });
    const before = Date.now();
    const refused = await trigger(server, 'daily-digest', '2027-01-15T07:00:00Z').expect(400);
    expect(refused.body.message).toContain('2027-01-15T07:00:00.000Z is in the future');
    expect(refused.body).toMatchObject({ cron: '0 7 * * *', timeZone: 'UTC' });
    // The neighbours are those of now: the latest slot that may be triggered and the next one due.
    expect(Date.parse(refused.body.previous)).toBeLessThanOrEqual(Date.now());
    expect(Date.parse(refused.body.next)).toBeGreaterThan(before);
    // Tomorrow's slot, on the schedule but not due yet.
    const tomorrow = new Date(before + 86_400_000);
    tomorrow.setUTCHours(7, 0, 0, 0);
    await trigger(server, 'daily-digest', tomorrow.toISOString())
      .expect(400)
      .expect((res) => expect(res.body.message).toContain('is in the future'));
    const soon = new Date(before + 3_600_000).toISOString();
    await trigger(server, 'monthly-reminder', soon)
      .expect(400)
      .expect((res) => expect(res.body.message).toContain('is in the future'));
    // Nothing was enqueued, and the slot that is due still is accepted.
    const due = new Date(before);
    if (due.getUTCHours() < 7) due.setUTCDate(due.getUTCDate() - 1);
    due.setUTCHours(7, 0, 0, 0);
    await trigger(server, 'daily-digest', due.toISOString())
      .expect(200)
      .expect((res) => expect(res.body).toMatchObject({ status: 'enqueued' }));
    expect(await queuedEventIds()).toEqual([`daily-digest:${due.toISOString().slice(0, 10)}`]);
  });

  it('refuses a bad body or an unknown job', async () => {
    const server = await boot();
    await trigger(server, 'daily-digest', 'yesterday').expect(400);
    await trigger(server, 'weekly', '2026-11-22T07:00:00Z').expect(400);
  });
});
