import { INestApplication } from '@nestjs/common';
import { MailService } from '@once/mail';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-admin-token-0123456789';

describe('admin API: resending an unknown email', () => {
  let app: INestApplication;
  const admin = () => ({ Authorization: `Bearer ${TOKEN}` });

  beforeAll(async () => {
    app = await bootstrap({
      env: { PORT: '0', ADMIN_TOKENS: TOKEN, DATABASE_MIGRATE_ON_BOOT: 'true' },
    });
  });

  afterAll(() => app?.close());

  it('refuses (409, Retry-After) while the last SES call may still be open, and resends after', async () => {
    const key = `resend-e2e:${Date.now()}`;
    await app
      .get(MailService)
      .send({ idempotencyKey: key, to: 'late@example.com', subject: 'Hi', text: 'x' });
    const dataSource = app.get(DataSource);
    // As a send whose SES call started a moment ago and timed out: the call is not settled yet.
    await dataSource.query(
      `UPDATE mail_ledger SET status = 'unknown', ses_called_at = now() WHERE idempotency_key = $1`,
      [key],
    );
    const early = await request(app.getHttpServer())
      .post(`/admin/mail/${encodeURIComponent(key)}/resend`)
      .set(admin())
      .send({ reason: 'customer asked' })
      .expect(409);
    expect(early.body.message).toContain('can be resent from');
    const retryAfter = Number(early.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);

    await dataSource.query(
      `UPDATE mail_ledger SET ses_called_at = now() - interval '1 hour' WHERE idempotency_key = $1`,
      [key],
    );
    const resent = await request(app.getHttpServer())
      .post(`/admin/mail/${encodeURIComponent(key)}/resend`)
      .set(admin())
      .send({ reason: 'customer asked' })
      .expect(200);
    expect(resent.body).toMatchObject({ status: 'sent', attempts: 2 });
  });
});
