import type { INestApplication } from '@nestjs/common';
import { LogLines, OwnRedisServer, waitFor } from '@once/testing';
import Redis from 'ioredis';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-security-token-0123456789';
const OTHER_TOKEN = 'e2e-security-other-0123456789';
const FAILURES = 20;
const ADMIN_LIMIT = 40;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const run = randomUUID().slice(0, 8);
const bootApi = (name: string, env: Record<string, string> = {}, logDestination?: LogLines) =>
  bootstrap({
    logDestination,
    env: {
      PORT: '0',
      ADMIN_TOKENS: `${TOKEN},${OTHER_TOKEN}`,
      ADMIN_RATE_LIMIT_PER_MINUTE: String(ADMIN_LIMIT),
      ADMIN_AUTH_FAILURES_PER_MINUTE: String(FAILURES),
      REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}admin-security-${run}-${name}:`,
      ...env,
    },
  });

const remaining = (answer: request.Response) => Number(answer.headers['ratelimit-remaining']);

/** A request with no token, a wrong bearer token or a wrong API key. */
const JUNK: Array<Record<string, string>> = [
  {},
  { Authorization: 'Bearer wrong-token-wrong-token' },
  { 'X-Api-Key': 'not-the-key-not-the-key' },
  { Authorization: `Bearer ${TOKEN}x` },
];

describe('admin API under attack', () => {
  // Two replicas of one deployment (one Redis namespace), and a third behind a trusted proxy.
  let replicas: [INestApplication, INestApplication];
  let proxied: INestApplication;
  const server = (i: number) => replicas[i % 2].getHttpServer();

  beforeAll(async () => {
    replicas = [await bootApi('shared'), await bootApi('shared')];
    proxied = await bootApi('proxied', { TRUST_PROXY: '1' });
  });

  afterAll(async () => {
    await Promise.all([...(replicas ?? []), proxied].map((app) => app?.close()));
  });

  it('answers 429 to a flood of bad tokens from one IP while the admin keeps getting 200 from it', async () => {
    const junk = Array.from({ length: 500 }, (_, i) =>
      request(server(i))
        .get('/admin/queues')
        .set(JUNK[i % JUNK.length]),
    );
    const admin = Array.from({ length: 30 }, (_, i) =>
      request(server(i)).get('/admin/queues').set('Authorization', `Bearer ${TOKEN}`),
    );
    const [junkAnswers, adminAnswers] = await Promise.all([Promise.all(junk), Promise.all(admin)]);

    const count = (status: number) => junkAnswers.filter((answer) => answer.status === status).length;
    // Counted once across both replicas: exactly the limit get their 401.
    expect({ 401: count(401), 429: count(429) }).toEqual({ 401: FAILURES, 429: 500 - FAILURES });
    for (const answer of junkAnswers.filter((a) => a.status === 429)) {
      expect(Number(answer.headers['retry-after'])).toBeGreaterThan(0);
      expect(answer.body).toMatchObject({
        statusCode: 429,
        message: expect.stringContaining('failed admin'),
      });
    }
    expect(adminAnswers.map((answer) => answer.status)).toEqual(Array(30).fill(200));

    await request(server(0)).get('/admin/queues').set('X-Api-Key', TOKEN).expect(200);
    // Without TRUST_PROXY, X-Forwarded-For is the client's word: a new one does not buy a new bucket.
    for (const ip of ['198.51.100.7', '198.51.100.8'])
      await request(server(1)).get('/admin/queues').set('X-Forwarded-For', ip).expect(429);
  });

  it('limits each token on its own, counted across replicas', async () => {
    const remaining: number[] = [];
    for (let i = 0; i < ADMIN_LIMIT; i++) {
      const answer = await request(server(i))
        .get('/admin/queues')
        .set('Authorization', `Bearer ${OTHER_TOKEN}`)
        .expect(200);
      expect(answer.headers['ratelimit-limit']).toBe(String(ADMIN_LIMIT));
      remaining.push(Number(answer.headers['ratelimit-remaining']));
    }
    expect(remaining).toEqual(Array.from({ length: ADMIN_LIMIT }, (_, i) => ADMIN_LIMIT - 1 - i));
    const over = await request(server(1)).get('/admin/queues').set('X-Api-Key', OTHER_TOKEN).expect(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    expect(over.body).toMatchObject({ statusCode: 429, message: 'too many admin requests, retry later' });
    // The other token has its own bucket.
    await request(server(0)).get('/admin/queues').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  });

  it('behind a trusted proxy, limits failures per forwarded client, whatever the client prepends', async () => {
    const attacker = (spoofed: string) =>
      request(proxied.getHttpServer())
        .get('/admin/queues')
        .set('X-Forwarded-For', `${spoofed}, 203.0.113.10`);
    const statuses: number[] = [];
    for (let i = 0; i < FAILURES + 3; i++) statuses.push((await attacker(`10.0.0.${i}`)).status);
    expect(statuses).toEqual([...Array(FAILURES).fill(401), 429, 429, 429]);
    await request(proxied.getHttpServer())
      .get('/admin/queues')
      .set('X-Forwarded-For', '203.0.113.11')
      .expect(401);
    await request(proxied.getHttpServer())
      .get('/admin/queues')
      .set('X-Forwarded-For', '203.0.113.10')
      .set('Authorization', `Bearer ${TOKEN}`)
      .expect(200);
  });

  it('refuses a TRUST_PROXY it cannot use, naming the variable', async () => {
    await expect(bootApi('bad', { TRUST_PROXY: 'true' })).rejects.toThrow(/TRUST_PROXY: 'true' trusts every/);
    await expect(bootApi('bad', { TRUST_PROXY: '10.0.0.0/33, nowhere' })).rejects.toThrow(
      /TRUST_PROXY: "10\.0\.0\.0\/33", "nowhere": expected a hop count/,
    );
  });

  it('sends security headers and no X-Powered-By, and Swagger UI runs under its CSP', async () => {
    const health = await request(server(0)).get('/health');
    expect(health.headers['x-powered-by']).toBeUndefined();
    expect(health.headers).toMatchObject({
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'SAMEORIGIN',
      'strict-transport-security': expect.stringContaining('max-age='),
      'referrer-policy': 'no-referrer',
      'cross-origin-opener-policy': 'same-origin',
    });
    const docs = await request(server(0)).get('/docs').expect(200).expect('content-type', /html/);
    const csp = String(docs.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('upgrade-insecure-requests');
    // Swagger UI needs no inline script: every <script> loads a same-origin file, which is served.
    const scripts = [...String(docs.text).matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attributes, body] of scripts) {
      expect(body.trim()).toBe('');
      const src = /src="([^"]+)"/.exec(attributes)?.[1];
      expect(src).toMatch(/^(\.\/)?(docs\/)?swagger-ui[\w.-]*\.js$/);
      await request(server(0))
        .get(`/docs/${src!.replace(/^(\.\/)?(docs\/)?/, '')}`)
        .expect(200);
    }
  });

  it('returns the caller’s valid X-Request-Id and replaces an invalid one with a UUID', async () => {
    const kept = await request(server(0)).get('/health').set('X-Request-Id', 'trace-1.a:B_c');
    expect(kept.headers['x-request-id']).toBe('trace-1.a:B_c');
    for (const invalid of ['has space', 'x'.repeat(129), 'semi;colon', '<script>']) {
      const replaced = await request(server(0)).get('/health').set('X-Request-Id', invalid);
      expect(replaced.headers['x-request-id']).toMatch(UUID);
    }
    const generated = await request(server(1)).get('/nowhere').expect(404);
    expect(generated.headers['x-request-id']).toMatch(UUID);
  });

  it('accepts JSON bodies up to 512 KB on /webhooks/ses and answers 413 beyond', async () => {
    const envelope = (size: number) =>
      JSON.stringify({
        Type: 'Notification',
        MessageId: randomUUID(),
        TopicArn: 'arn:aws:sns:us-east-1:123456789012:nope',
        Message: 'x'.repeat(size),
      });
    const fits = await request(server(0))
      .post('/webhooks/ses')
      .set('Content-Type', 'application/json')
      .set('X-Request-Id', 'body-fits')
      .send(envelope(300 * 1024));
    // Reached the controller, which rejects the unsigned message.
    expect([400, 403]).toContain(fits.status);
    expect(fits.body.statusCode).toBe(fits.status);

    const tooBig = await request(server(0))
      .post('/webhooks/ses')
      .set('Content-Type', 'application/json')
      .set('X-Request-Id', 'body-too-big')
      .send(envelope(520 * 1024))
      .expect(413);
    expect(tooBig.body).toMatchObject({ statusCode: 413, message: expect.any(String) });
    expect(tooBig.headers['x-request-id']).toBe('body-too-big');
  });
});

describe('admin credentials', () => {
  let app: INestApplication;
  const get = (headers: Record<string, string>) =>
    request(app.getHttpServer()).get('/admin/mail').query({ limit: 1 }).set(headers);

  beforeAll(async () => {
    app = await bootApi('credentials', { DATABASE_MIGRATE_ON_BOOT: 'true' });
  });

  afterAll(async () => {
    await app?.close();
  });

  it('admits a request if any credential it presents is valid, and parses the scheme per RFC 7235', async () => {
    const admitted: Array<Record<string, string>> = [
      { Authorization: 'Bearer junk', 'X-Api-Key': TOKEN },
      { Authorization: `Bearer ${TOKEN}`, 'X-Api-Key': 'junk' },
      { Authorization: 'Basic dXNlcjpwYXNz', 'X-Api-Key': TOKEN },
      { Authorization: `Bearer\t${TOKEN}` },
      { Authorization: `Bearer    ${TOKEN}` },
      { Authorization: `Bearer \t ${TOKEN}  ` },
      { Authorization: `bearer ${TOKEN}` },
      { Authorization: `BEARER ${TOKEN}` },
      { Authorization: `bEaReR\t${OTHER_TOKEN}` },
    ];
    for (const headers of admitted) {
      const answer = await get(headers);
      expect({ headers, status: answer.status }).toEqual({ headers, status: 200 });
    }
    const refused: Array<[Record<string, string>, string]> = [
      [{ Authorization: 'Bearer\tjunk', 'X-Api-Key': 'junk' }, 'invalid admin token'],
      [{ Authorization: `Bearertoken ${TOKEN}` }, 'admin token required'],
      [{ Authorization: `Basic ${TOKEN}` }, 'admin token required'],
      [{ Authorization: 'Bearer   ' }, 'admin token required'],
    ];
    for (const [headers, message] of refused) {
      const answer = await get(headers);
      expect({ headers, status: answer.status, message: answer.body.message }).toEqual({
        headers,
        status: 401,
        message: expect.stringContaining(message),
      });
    }
  });

  it('counts a valid request only in its token bucket and a failed one only in the failure bucket', async () => {
    const admin: number[] = [];
    const failed: number[] = [];
    for (let i = 0; i < 6; i++) {
      // The admitted one presents junk too; the refused one presents two wrong credentials.
      admin.push(
        remaining(await get({ Authorization: 'Bearer junk', 'X-Api-Key': OTHER_TOKEN }).expect(200)),
      );
      failed.push(remaining(await get({ Authorization: 'Bearer junk', 'X-Api-Key': 'junk' }).expect(401)));
    }
    // The first test admitted the other token once and refused 4 requests from this address.
    expect(admin).toEqual([2, 3, 4, 5, 6, 7].map((n) => ADMIN_LIMIT - n));
    expect(failed).toEqual([5, 6, 7, 8, 9, 10].map((n) => FAILURES - n));
  });
});

describe('admin rate limits while Redis is down', () => {
  const logs = new LogLines();
  let redis: OwnRedisServer;
  let probe: Redis;
  let app: INestApplication;
  const get = (headers: Record<string, string>) =>
    request(app.getHttpServer()).get('/admin/mail').query({ limit: 1 }).set(headers);
  const outageLogs = () => logs.lines.filter((line) => line.includes('admin rate limits'));

  beforeAll(async () => {
    redis = await OwnRedisServer.start();
    probe = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    app = await bootApi(
      'outage',
      { REDIS_URL: redis.url, DATABASE_MIGRATE_ON_BOOT: 'true', LOG_LEVEL: 'info' },
      logs,
    );
  });

  afterAll(async () => {
    await app?.close();
    probe?.disconnect();
    await redis?.stop();
  });

  it('falls back to in-process limits, never a 500 from the guard, and uses Redis again once it is back', async () => {
    const bearer = { Authorization: `Bearer ${TOKEN}` };
    for (let n = 1; n <= 3; n++) expect(remaining(await get(bearer).expect(200))).toBe(ADMIN_LIMIT - n);

    await redis.kill();
    const started = Date.now();
    const during: number[] = [];
    for (let n = 1; n <= 3; n++) {
      const answer = await get(bearer);
      expect({ status: answer.status, body: answer.body }).toMatchObject({ status: 200 });
      during.push(remaining(answer));
    }
    // Counted in this process from zero, not in the (lost) Redis counter.
    expect(during).toEqual([1, 2, 3].map((n) => ADMIN_LIMIT - n));
    const junk: number[] = [];
    for (let i = 0; i < FAILURES + 3; i++) junk.push((await get({ 'X-Api-Key': 'junk' })).status);
    expect(junk).toEqual([...Array(FAILURES).fill(401), 429, 429, 429]);
    // The token bucket is still its own.
    await get(bearer).expect(200);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(outageLogs()).toHaveLength(1);
    // Nothing reported as an unhandled error (the admins would have been mailed each time).
    expect(logs.lines.filter((line) => line.includes('"level":50'))).toEqual([]);
    expect(outageLogs()[0]).toContain('in-process');

    await redis.restart();
    await probe.connect();
    // Poll with the other token until a request is counted in the new, empty Redis again.
    await waitFor('the throttle to use Redis again', async () => {
      await get({ 'X-Api-Key': OTHER_TOKEN }).expect(200);
      return (await probe.keys('*admin-rate:*')).length > 0 ? true : undefined;
    });
    // In-process this token would be at 5 hits; Redis lost its 3 and counts from zero.
    expect(remaining(await get(bearer).expect(200))).toBe(ADMIN_LIMIT - 1);
    const keys = await probe.keys('*admin-rate:admin:*');
    expect(keys.length).toBeGreaterThanOrEqual(2);
    expect(outageLogs()).toHaveLength(2);
    expect(outageLogs()[1]).toContain('Redis again');

    // A Redis that stalls (every client paused) costs the deadline, not the request.
    await probe.call('CLIENT', 'PAUSE', '3000', 'ALL');
    const stalled = Date.now();
    const slow = await get(bearer).expect(200);
    expect(Date.now() - stalled).toBeLessThan(1_500);
    expect(remaining(slow)).toBe(ADMIN_LIMIT - 5);
    expect(outageLogs()).toHaveLength(3);
    await probe.call('CLIENT', 'UNPAUSE');
  });
});
