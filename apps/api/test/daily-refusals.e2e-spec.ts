import type { INestApplication } from '@nestjs/common';
import { LogLines } from '@once/testing';
import { encodeTarget } from '@once/tracking';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';

const run = randomUUID().slice(0, 8);
const FORGED = 300;

/**
 * A flood of tampered links cannot flood the log: at the production level (`warn`) the api writes
 * one refusal in full and one summary per interval, whatever the count, and counts every refusal
 * in `once_tracking_links_refused_total`. Real Postgres, Redis and the emulators, as `npm start`.
 */
describe('refused tracking links: counted, logged at a bounded rate', () => {
  const logs = new LogLines();
  let app: INestApplication;

  beforeAll(async () => {
    app = await bootstrap({
      env: {
        PORT: '0',
        LOG_LEVEL: 'warn',
        LOG_PRETTY: 'false',
        TRACKING_BASE_URL: 'https://site.example',
        TRACKING_REFUSED_LOG_INTERVAL_MS: '1000',
        REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}daily-refusals-${run}:`,
      },
      logDestination: logs,
    });
  });

  afterAll(async () => {
    await app?.close();
  });

  it(`${FORGED} forged links and 20 unsigned ones: each answered 400, two log lines per interval, every one counted`, async () => {
    const server = app.getHttpServer();
    const target = encodeTarget('/updates/haml-3.1.2/haml-3.2.0.rc.3/11765/');
    const statuses: number[] = [];
    for (let i = 0; i < FORGED; i += 30) {
      const answers = await Promise.all(
        Array.from({ length: 30 }, (_, j) =>
          request(server).get(`/daily/?${target}&c=Daily&s=forged${run}${i + j}`),
        ),
      );
      statuses.push(...answers.map((answer) => answer.status));
    }
    for (let i = 0; i < 20; i++)
      statuses.push((await request(server).get(`/daily/?${target}&c=Daily`)).status);
    expect(new Set(statuses)).toEqual(new Set([400]));
    expect(statuses).toHaveLength(FORGED + 20);

    const refusalLines = () =>
      logs.records().filter((record) => String(record.msg).startsWith('Refused tracking link'));
    expect(refusalLines()).toHaveLength(1);
    // pino-http leaves /daily/ alone at warn: the line names its request itself, signature hidden.
    expect(refusalLines()[0]).toMatchObject({
      msg: 'Refused tracking link',
      reason: 'bad-signature',
      reqId: expect.any(String),
      req: { url: expect.stringMatching(/^\/daily\/\?.*&s=\[redacted\]$/) },
    });
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(refusalLines()).toHaveLength(2);
    expect(refusalLines()[1]).toMatchObject({
      msg: 'Refused tracking links, not logged one by one',
      refused: FORGED + 20 - 1,
      byReason: { 'bad-signature': FORGED - 1, unsigned: 20 },
    });
    // Nothing else per request at the production level either.
    expect(logs.lines.join('\n').length).toBeLessThan(4_000);

    const metrics = await request(server).get('/metrics').expect(200);
    expect(metrics.text).toMatch(
      new RegExp(`once_tracking_links_refused_total\\{reason="bad-signature"[^}]*\\} ${FORGED}\\b`),
    );
    expect(metrics.text).toMatch(/once_tracking_links_refused_total\{reason="unsigned"[^}]*\} 20\b/);
  });
});
