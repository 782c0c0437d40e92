import { GetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { getDataSourceToken } from '@nestjs/typeorm';
import { IdempotencyService } from '@once/dedup';
import { DEDUP_REDIS, OpsHttpServer, REDIS_CLIENT } from '@once/platform';
import {
  createTestQueue,
  OwnRedisCluster,
  scanKeys,
  sendJson,
  SesMailbox,
  testSqsClient,
  waitFor,
} from '@once/testing';
import { Cluster, type Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import { DataSource } from 'typeorm';
import { bootstrap } from '../src/bootstrap';

describe('worker with DEDUP_REDIS_CLUSTER_NODES: claims on a Redis Cluster of their own', () => {
  const sqs = testSqsClient();
  const mailbox = new SesMailbox(process.env.SES_ENDPOINT!);
  const run = randomUUID().slice(0, 8);
  let ownCluster: OwnRedisCluster;

  beforeAll(async () => {
    ownCluster = await OwnRedisCluster.start();
  });

  afterAll(async () => {
    await ownCluster?.stop();
    sqs.destroy();
  });

  /** A worker on queues and a key prefix of its own, its dedup records on the cluster. */
  async function startWorker(store: 'redis' | 'redis+postgres', redisOnlyScopes?: string) {
    const name = `dedup-cluster-${store.replace('+', '-')}${redisOnlyScopes === 'none' ? '-layered' : ''}-${run}`;
    const email = await createTestQueue(sqs, `${name}-email`);
    const jobs = await createTestQueue(sqs, `${name}-jobs`);
    const prefix = `${process.env.REDIS_KEY_PREFIX}${name}:`;
    const worker = await bootstrap({
      env: {
        DATABASE_MIGRATE_ON_BOOT: 'true',
        SQS_WAIT_TIME_SECONDS: '1',
        OPS_PORT: '0',
        SQS_EMAIL_QUEUE: email.url,
        SQS_JOBS_QUEUE: jobs.url,
        REDIS_KEY_PREFIX: prefix,
        DEDUP_STORE: store,
        ...(redisOnlyScopes === undefined ? {} : { DEDUP_REDIS_ONLY_SCOPES: redisOnlyScopes }),
        DEDUP_REDIS_CLUSTER_NODES: ownCluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
      },
    });
    const cluster = worker.get<Cluster>(DEDUP_REDIS);
    if (cluster.status !== 'ready') await new Promise((resolve) => cluster.once('ready', resolve));
    return { worker, email, prefix, cluster };
  }

  /** Sends one email message `times` times and waits until the queue has none left, visible or not. */
  async function sendRepeatedly(queueUrl: string, body: object, times: number): Promise<void> {
    await Promise.all(Array.from({ length: times }, () => sendJson(sqs, queueUrl, body)));
    await waitFor('every copy to be handled', async () => {
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: queueUrl,
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return Attributes?.ApproximateNumberOfMessages === '0' &&
        Attributes?.ApproximateNumberOfMessagesNotVisible === '0'
        ? true
        : undefined;
    });
  }

  const emailsTo = async (to: string) =>
    (await mailbox.all()).filter((email) => email.destination.to.includes(to));

  // redis+postgres keeps send-email's records in Redis alone by default (DEDUP_REDIS_ONLY_SCOPES),
  // and in both layers with DEDUP_REDIS_ONLY_SCOPES=none.
  it.each([
    ['redis', undefined, 0],
    ['redis+postgres', undefined, 0],
    ['redis+postgres', 'none', 1],
  ] as const)(
    'DEDUP_STORE=%s (DEDUP_REDIS_ONLY_SCOPES=%s): a message delivered 4 times is sent once, its record on the cluster (%d Postgres rows)',
    async (store, redisOnlyScopes, postgresRows) => {
      const { worker, email, prefix, cluster } = await startWorker(store, redisOnlyScopes);
      try {
        expect(cluster.isCluster).toBe(true);
        const variant = `${store.replace('+', '-')}${redisOnlyScopes === 'none' ? '-layered' : ''}`;
        const eventId = `cluster:${variant}:${run}`;
        const to = `cluster-${variant}-${run}@example.com`;
        await sendRepeatedly(email.url, { eventId, to, subject: 'Once', text: 'Hello once' }, 4);
        await waitFor('the email', async () => ((await emailsTo(to)).length > 0 ? true : undefined));

        expect(await emailsTo(to)).toHaveLength(1);
        await expect(
          worker.get(IdempotencyService).get(eventId, { scope: 'send-email' }),
        ).resolves.toMatchObject({ state: 'COMPLETED', key: eventId, scope: 'send-email' });

        // The record is on one of the cluster's masters, and nothing of dedup's on the app's Redis.
        const onCluster = (
          await Promise.all(cluster.nodes('master').map((node) => scanKeys(node, `${prefix}dedup:*`)))
        ).flat();
        expect(onCluster.filter((key) => key.includes(eventId))).toHaveLength(1);
        const single = worker.get<Redis>(REDIS_CLIENT);
        expect(single.isCluster).toBe(false);
        expect(await scanKeys(single, `${prefix}dedup:*`)).toEqual([]);

        const rows = await worker
          .get<DataSource>(getDataSourceToken())
          .query(`SELECT state FROM dedup_records WHERE key LIKE $1`, [`${prefix}dedup:%${eventId}`]);
        expect(rows).toEqual(Array.from({ length: postgresRows }, () => ({ state: 'COMPLETED' })));

        const health = await fetch(`http://127.0.0.1:${worker.get(OpsHttpServer).port}/health`);
        expect(health.status).toBe(200);
        expect(await health.json()).toMatchObject({
          status: 'ok',
          info: { redis: { status: 'up' }, 'dedup-redis': { status: 'up' } },
        });
      } finally {
        await worker.close();
      }
      // Closed with the app: no connection of the cluster client is left open.
      expect(cluster.status).toBe('end');
    },
  );
});
