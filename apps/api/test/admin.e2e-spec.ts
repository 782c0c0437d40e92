import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { INestApplication } from '@nestjs/common';
import { MailService } from '@once/mail';
import { drain, e2eQueueUrl, testSqsClient } from '@once/testing';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-admin-token-0123456789';
const OLD_TOKEN = 'e2e-previous-token-0123456789';

describe('admin API', () => {
  const sqs = testSqsClient();
  let app: INestApplication;
  const admin = () => ({ Authorization: `Bearer ${TOKEN}` });

  beforeAll(async () => {
    app = await bootstrap({
      env: { PORT: '0', ADMIN_TOKENS: `${TOKEN},${OLD_TOKEN}`, DATABASE_MIGRATE_ON_BOOT: 'true' },
    });
  });

  afterAll(async () => {
    await app?.close();
    sqs.destroy();
  });

  it('rejects missing and wrong tokens and accepts a bearer token or an API key', async () => {
    const server = app.getHttpServer();
    const missing = await request(server).get('/admin/queues').expect(401);
    expect(missing.body.message).toContain('admin token required');
    await request(server)
      .get('/admin/queues')
      .set('Authorization', 'Bearer wrong-token-wrong-token')
      .expect(401);
    await request(server).get('/admin/queues').set('Authorization', `Bearer ${TOKEN}x`).expect(401);
    await request(server).get('/admin/queues').set(admin()).expect(200);
    await request(server).get('/admin/queues').set('X-Api-Key', OLD_TOKEN).expect(200);
  });

  it('rate limits each admin token across replicas, apart from failed authentications', async () => {
    const env = {
      PORT: '0',
      ADMIN_TOKENS: TOKEN,
      ADMIN_RATE_LIMIT_PER_MINUTE: '3',
      ADMIN_AUTH_FAILURES_PER_MINUTE: '2',
      REDIS_KEY_PREFIX: `${process.env.REDIS_KEY_PREFIX}limited:`,
    };
    const replicas = [await bootstrap({ env }), await bootstrap({ env })];
    try {
      const server = (i: number) => replicas[i % 2].getHttpServer();
      const junk: number[] = [];
      for (let i = 0; i < 4; i++) junk.push((await request(server(i)).get('/admin/queues')).status);
      expect(junk).toEqual([401, 401, 429, 429]);

      const statuses: number[] = [];
      for (let i = 0; i < 4; i++)
        statuses.push((await request(server(i)).get('/admin/queues').set(admin())).status);
      expect(statuses).toEqual([200, 200, 200, 429]);
      const last = await request(server(0)).get('/admin/queues').set(admin()).expect(429);
      expect(Number(last.headers['retry-after'])).toBeGreaterThan(0);
      expect(last.headers['ratelimit-limit']).toBe('3');
      expect(last.headers['ratelimit-remaining']).toBe('0');
    } finally {
      await Promise.all(replicas.map((replica) => replica.close()));
    }
  });

  it('refuses the development secrets in production', async () => {
    const production = bootstrap({
      env: { PORT: '0', NODE_ENV: 'production', ADMIN_TOKENS: '', TRACKING_SECRETS: '' },
    });
    await expect(production).rejects.toThrow(
      /ADMIN_TOKENS: must be set to a secret of your own in production/,
    );
    await expect(production).rejects.toThrow(
      /TRACKING_SECRETS: must be set to a secret of your own in production/,
    );
    await expect(bootstrap({ env: { PORT: '0', ADMIN_TOKENS: 'short' } })).rejects.toThrow(
      /ADMIN_TOKENS\.0: each token needs 16 characters or more/,
    );
  });

  it('shows queue depths, peeks dead letters and redrives them to the source queue', async () => {
    const server = app.getHttpServer();
    const dlqUrl = e2eQueueUrl('once-jobs-dlq');
    for (const n of [1, 2]) {
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: dlqUrl,
          MessageBody: JSON.stringify({ n }),
          MessageAttributes: {
            'once-dead-letter-reason': { DataType: 'String', StringValue: `bad ${n}` },
            'once-source-message-id': { DataType: 'String', StringValue: `m${n}` },
            tenant: { DataType: 'String', StringValue: 'acme' },
          },
        }),
      );
    }

    const list = await request(server).get('/admin/queues').set(admin()).expect(200);
    const jobs = list.body.items.find((queue: { name: string }) => queue.name === 'jobs');
    expect(jobs).toMatchObject({ maxReceiveCount: 3, deadLetter: { visible: 2 } });

    const peek = await request(server)
      .get('/admin/queues/jobs/dead-letters?limit=10')
      .set(admin())
      .expect(200);
    expect(peek.body.items.map((m: { reason: string }) => m.reason).sort()).toEqual(['bad 1', 'bad 2']);
    expect(peek.body.items[0]).toMatchObject({ sourceMessageId: expect.stringMatching(/^m[12]$/) });

    const redrive = await request(server)
      .post('/admin/queues/jobs/redrive')
      .set(admin())
      .send({ max: 10 })
      .expect(200);
    expect(redrive.body).toEqual({ moved: 2 });
    const back = await drain(sqs, e2eQueueUrl('once-jobs'));
    expect(back.map((m) => JSON.parse(m.Body!).n).sort()).toEqual([1, 2]);
    expect(Object.keys(back[0].MessageAttributes ?? {})).toEqual(['tenant']);
    expect(await drain(sqs, dlqUrl, 0)).toHaveLength(0);
  });

  it('triggers a job for a slot once, like the cron', async () => {
    const server = app.getHttpServer();
    const slot = '2026-11-21T07:00:00.000Z';
    const first = await request(server)
      .post('/admin/jobs/daily-digest/trigger')
      .set(admin())
      .send({ slot })
      .expect(200);
    expect(first.body).toMatchObject({
      status: 'enqueued',
      eventId: 'daily-digest:2026-11-21',
      message: { trigger: 'manual' },
    });
    const again = await request(server)
      .post('/admin/jobs/daily-digest/trigger')
      .set(admin())
      .send({ slot })
      .expect(200);
    expect(again.body).toMatchObject({
      status: 'duplicate',
      enqueuedBy: expect.stringMatching(/^enqueued:token:/),
    });
    const queued = await drain(sqs, e2eQueueUrl('once-jobs'));
    expect(queued.map((m) => JSON.parse(m.Body!).eventId)).toEqual(['daily-digest:2026-11-21']);
    await request(server)
      .post('/admin/jobs/daily-digest/trigger')
      .set(admin())
      .send({ slot: 'yesterday' })
      .expect(400);
    await request(server).post('/admin/jobs/weekly/trigger').set(admin()).send({ slot }).expect(400);
  });

  it('lists the mail ledger and refuses to resend a sent email', async () => {
    const server = app.getHttpServer();
    const mail = app.get(MailService);
    await mail.send({
      idempotencyKey: 'admin-e2e:1',
      to: 'reader@example.com',
      subject: 'Hi',
      text: 'Hello',
    });
    const list = await request(server)
      .get('/admin/mail?recipient=reader@example.com&limit=5')
      .set(admin())
      .expect(200);
    expect(list.body.items).toEqual([
      expect.objectContaining({ idempotencyKey: 'admin-e2e:1', status: 'sent' }),
    ]);
    await request(server).get('/admin/mail/admin-e2e:1').set(admin()).expect(200);
    await request(server).get('/admin/mail/nope').set(admin()).expect(404);
    const resend = await request(server)
      .post('/admin/mail/admin-e2e:1/resend')
      .set(admin())
      .send({})
      .expect(409);
    expect(resend.body.message).toContain('only failed or unknown mail can be resent');
    await request(server).get('/admin/mail?status=bogus').set(admin()).expect(400);
  });

  it('validates input with field-level errors', async () => {
    const response = await request(app.getHttpServer())
      .get('/admin/queues/nope/dead-letters?limit=0')
      .set(admin())
      .expect(400);
    expect(response.body).toMatchObject({ statusCode: 400, message: 'validation failed' });
    expect(response.body.details[0].message).toBeDefined();
  });

  it('documents the API with OpenAPI at /docs', async () => {
    await request(app.getHttpServer()).get('/docs').expect(200).expect('content-type', /html/);
    const spec = await request(app.getHttpServer()).get('/docs-json').expect(200);
    expect(Object.keys(spec.body.paths)).toEqual(
      expect.arrayContaining(['/admin/queues', '/health', '/metrics']),
    );
  });
});
