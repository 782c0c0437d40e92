import type { INestApplication } from '@nestjs/common';
import { LogLines } from '@once/testing';
import { encodeTarget, signLink } from '@once/tracking';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-logs-admin-token-0123456789';
const TRACKING_SECRET = 'e2e-logs-tracking-secret-0123456789abcdef';
const run = randomUUID().slice(0, 8);

/** Values that must never reach a log line, each unique to this run. */
const SECRET = {
  signature: `SIG${run}x`,
  recipient: `RCPT${run}x`,
  queryToken: `QTOKEN${run}x`,
  apiKeyParam: `QKEY${run}x`,
  wrongKey: `WRONGKEY${run}x`,
  referrerToken: `REFTOKEN${run}x`,
  password: `PASS${run}x`,
  email: `reader-${run}@example.com`,
  nestedToken: `NESTED${run}x`,
  nextToken: `NEXT${run}x`,
  bearer: `bearer${run}0123456789`,
  dbPassword: `dbpass${run}word`,
  originalUriToken: `ORIGURI${run}x`,
  linkToken: `LINK${run}x`,
};

describe('request logs', () => {
  const logs = new LogLines();
  let app: INestApplication;

  beforeAll(async () => {
    app = await bootstrap({
      env: {
        PORT: '0',
        LOG_LEVEL: 'info',
        LOG_PRETTY: 'false',
        ADMIN_TOKENS: TOKEN,
        TRACKING_SECRETS: TRACKING_SECRET,
        TRACKING_BASE_URL: 'https://site.example',
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}request-logs-${run}:`,
      },
      logDestination: logs,
    });
  });

  afterAll(async () => {
    await app?.close();
  });

  it('hide tokens, signatures and recipients in every line, and carry the X-Request-Id as reqId', async () => {
    const server = app.getHttpServer();
    const target = '/updates/x/';
    const signed = signLink(TRACKING_SECRET, { target, campaign: 'Daily', recipientId: SECRET.recipient });
    const sent: Array<{ id: string; status: number }> = [];
    const send = async (id: string, build: (agent: ReturnType<typeof request>) => request.Test) => {
      const answer = await build(request(server)).set('X-Request-Id', id);
      expect(answer.headers['x-request-id']).toBe(id);
      sent.push({ id, status: answer.status });
    };

    await send('daily-valid', (agent) =>
      agent.get(`/daily/?${encodeTarget(target)}&c=Daily&r=${SECRET.recipient}&s=${signed}`),
    );
    await send('daily-forged', (agent) =>
      agent.get(`/daily/?${encodeTarget(target)}&c=Daily&r=${SECRET.recipient}&s=${SECRET.signature}`),
    );
    await send('query-token', (agent) => agent.get(`/admin/queues?token=${SECRET.queryToken}`));
    await send('wrong-key', (agent) =>
      agent.get(`/admin/queues?api_key=${SECRET.apiKeyParam}`).set('X-Api-Key', SECRET.wrongKey),
    );
    await send('admin-ok', (agent) =>
      agent
        .get(`/admin/mail?recipient=${encodeURIComponent(SECRET.email)}&limit=5&password=${SECRET.password}`)
        .set('Authorization', `Bearer ${TOKEN}`)
        .set('Referer', `https://admin.example/?token=${SECRET.referrerToken}`),
    );
    await send('not-found', (agent) => agent.get(`/nowhere?session=${SECRET.queryToken}`));
    // A tracked link's target with its own query, and nested URLs, encoded once or twice.
    await send('daily-nested', (agent) =>
      agent.get(`/daily/?/reset%3Ftoken%3D${SECRET.nestedToken}&c=Daily&s=${SECRET.signature}`),
    );
    await send('next-url', (agent) =>
      agent.get(`/nowhere?next=${encodeURIComponent(`https://x/?access_token=${SECRET.nextToken}`)}`),
    );
    await send('shaped-values', (agent) =>
      agent
        .get(`/nowhere?q=Bearer%20${SECRET.bearer}&db=postgres://u:${SECRET.dbPassword}@h&page=2`)
        .set('X-Original-URI', `/p?token=${SECRET.originalUriToken}`)
        .set('Link', `<https://a.example/p?token=${SECRET.linkToken}>; rel="next"`),
    );
    // Configured secrets (ADMIN_TOKENS, TRACKING_SECRETS) under a harmless name, raw and encoded.
    await send('configured', (agent) =>
      agent
        .get(`/nowhere?q=${TOKEN}&p=${encodeURIComponent(TRACKING_SECRET)}`)
        .set('X-Note', `sent ${TRACKING_SECRET}`),
    );
    expect(sent.map((answer) => answer.status)).toEqual([
      302,
      400,
      401,
      401,
      expect.any(Number),
      404,
      400,
      404,
      404,
      404,
    ]);
    await new Promise((resolve) => setTimeout(resolve, 100));

    const all = logs.lines.join('\n');
    for (const [name, value] of Object.entries({ ...SECRET, token: TOKEN, signed }))
      expect({ name, found: all.includes(value) }).toEqual({ name, found: false });

    const records = logs.records();
    for (const { id, status } of sent) {
      const lines = records.filter((record) => record.reqId === id);
      const completed = lines.find((record) => /^request (completed|errored)$/.test(String(record.msg)));
      expect(completed).toMatchObject({
        reqId: id,
        req: { id, url: expect.any(String) },
        res: { statusCode: status, headers: expect.objectContaining({ 'x-request-id': id }) },
      });
    }
    const forged = records.find(
      (record) => record.reqId === 'daily-forged' && record.msg === 'Refused tracking link',
    );
    expect(forged).toMatchObject({
      req: { url: '/daily/?/updates/x/&c=Daily&r=[redacted]&s=[redacted]' },
    });
    const queryToken = records.find(
      (record) => record.reqId === 'query-token' && record.msg === 'request completed',
    );
    expect(queryToken).toMatchObject({ req: { url: '/admin/queues?token=[redacted]' } });
    const url = (id: string) =>
      records.find((record) => record.reqId === id && record.res !== undefined)?.req;
    expect(url('daily-nested')).toMatchObject({
      url: '/daily/?/reset%3Ftoken%3D[redacted]&c=Daily&s=[redacted]',
    });
    expect(url('next-url')).toMatchObject({
      url: '/nowhere?next=https%3A%2F%2Fx%2F%3Faccess_token%3D[redacted]',
    });
    expect(url('shaped-values')).toMatchObject({
      url: '/nowhere?q=[redacted]&db=[redacted]&page=2',
      headers: expect.objectContaining({
        'x-original-uri': '/p?token=[redacted]',
        link: '<https://a.example/p?token=[redacted]>; rel="next"',
      }),
    });
    expect(url('configured')).toMatchObject({
      url: '/nowhere?q=[redacted]&p=[redacted]',
      headers: expect.objectContaining({ 'x-note': 'sent [redacted]' }),
    });
    const admin = records.find((record) => record.reqId === 'admin-ok' && record.res !== undefined);
    expect(admin).toMatchObject({
      req: {
        url: '/admin/mail?recipient=[redacted]&limit=5&password=[redacted]',
        headers: { authorization: '[redacted]', referer: 'https://admin.example/?token=[redacted]' },
      },
    });
  });
});
