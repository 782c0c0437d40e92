import type { INestApplication } from '@nestjs/common';
import { TcpOutageProxy, waitFor } from '@once/testing';
import { encodeTarget, signLink } from '@once/tracking';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { DataSource } from 'typeorm';
import { bootstrap } from '../src/bootstrap';

const run = randomUUID().slice(0, 8);
const TOKEN = 'e2e-outage-admin-token-0123456789';
const SECRET = 'e2e-outage-tracking-secret-0123456789abcdef';
const ADMIN = { Authorization: `Bearer ${TOKEN}` };

/**
 * Postgres unreachable when the api boots: it starts anyway, redirects `/daily/` links (the clicks
 * wait in Redis), says `degraded` on `/health/ready`, answers admin routes 503 with Retry-After,
 * and recovers on its own once Postgres answers. Real Postgres behind a proxy that cuts it off.
 */
describe('the api without Postgres', () => {
  const proxy = new TcpOutageProxy(Number(new URL(process.env.DATABASE_URL as string).port || 5432));
  let app: INestApplication;
  let direct: DataSource;
  const campaign = `Outage_${run}`;

  beforeAll(async () => {
    const url = new URL(process.env.DATABASE_URL as string);
    url.port = String(await proxy.start());
    proxy.cut();
    direct = new DataSource({ type: 'postgres', url: process.env.DATABASE_URL });
    await direct.initialize();
    app = await bootstrap({
      env: {
        PORT: '0',
        LOG_LEVEL: 'fatal',
        LOG_PRETTY: 'false',
        DATABASE_URL: url.toString(),
        // The migrations run once the connection is made, before the api says ready.
        DATABASE_MIGRATE_ON_BOOT: 'true',
        ADMIN_TOKENS: TOKEN,
        TRACKING_SECRETS: SECRET,
        TRACKING_BASE_URL: 'https://site.example',
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}outage-${run}:`,
      },
    });
  }, 30_000);

  afterAll(async () => {
    await app?.close();
    await direct?.destroy();
    await proxy.stop();
  });

  it('boots, redirects, says degraded, refuses admin routes with 503; then recovers and keeps the clicks', async () => {
    const server = app.getHttpServer();
    const target = '/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/';
    const link = `/daily/?${encodeTarget(target)}&c=${campaign}&r=7&s=${signLink(SECRET, { target, campaign, recipientId: '7' })}`;

    const redirect = await request(server).get(link).expect(302);
    expect(redirect.headers.location).toBe(
      `https://site.example${target}?utm_source=email&utm_medium=email&utm_campaign=${campaign}`,
    );
    await request(server).get('/health/live').expect(200, { status: 'ok' });
    const ready = await request(server).get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({ status: 'degraded', down: expect.arrayContaining(['postgres']) });
    const admin = await request(server).get('/admin/mail').set(ADMIN).expect(503);
    expect(admin.headers['retry-after']).toBe('5');
    expect(admin.body).toMatchObject({ statusCode: 503, message: expect.stringContaining('database') });
    // A request that is wrong stays a 400 / 401, outage or not.
    await request(server).get('/admin/mail?limit=nope').set(ADMIN).expect(400);
    await request(server).get('/admin/mail').expect(401);

    proxy.restore();
    await waitFor(
      'the api connected',
      async () => ((await request(server).get('/health/ready')).body.status === 'ok' ? true : undefined),
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    await request(server).get('/admin/mail').set(ADMIN).expect(200);
    await request(server).get(link).expect(302);
    // Both clicks, the one from the outage included, end up in Postgres.
    const rows = await waitFor(
      'both clicks written',
      async () => {
        const [{ n }] = await direct.query(
          'SELECT count(*)::int AS n FROM tracking_clicks WHERE campaign = $1',
          [campaign],
        );
        return n === 2 ? n : undefined;
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    expect(rows).toBe(2);
  });
});
