import { INestApplication } from '@nestjs/common';
import { IdempotencyService } from '@once/dedup';
import { DEDUP_REDIS, REDIS_CLIENT } from '@once/platform';
import { OwnRedisCluster, scanKeys } from '@once/testing';
import type { Cluster, Redis } from 'ioredis';
import { randomUUID } from 'node:crypto';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';

const TOKEN = 'e2e-idempotency-cluster-token-0123';

describe('admin API on DEDUP_REDIS_CLUSTER_NODES: idempotency records read from the cluster', () => {
  const run = randomUUID().slice(0, 8);
  const scope = `cluster-admin-${run}`;
  const prefix = `${process.env.REDIS_KEY_PREFIX}idempotency-cluster-${run}:`;
  const admin = { Authorization: `Bearer ${TOKEN}` };
  const keys = Array.from({ length: 12 }, (_, n) => `order-${String(n).padStart(2, '0')}`);
  let ownCluster: OwnRedisCluster;
  let app: INestApplication;
  let cluster: Cluster;
  const server = () => app.getHttpServer();

  beforeAll(async () => {
    ownCluster = await OwnRedisCluster.start();
    app = await bootstrap({
      env: {
        PORT: '0',
        ADMIN_TOKENS: TOKEN,
        DATABASE_MIGRATE_ON_BOOT: 'true',
        REDIS_KEY_PREFIX: prefix,
        ADMIN_RATE_LIMIT_PER_MINUTE: '10000',
        DEDUP_STORE: 'redis',
        DEDUP_REDIS_CLUSTER_NODES: ownCluster.nodes.map(({ host, port }) => `${host}:${port}`).join(','),
      },
    });
    cluster = app.get<Cluster>(DEDUP_REDIS);
    if (cluster.status !== 'ready') await new Promise((resolve) => cluster.once('ready', resolve));
    const idempotency = app.get(IdempotencyService);
    for (const key of keys) await idempotency.run(key, async () => `result of ${key}`, { scope });
  });

  afterAll(async () => {
    await app?.close();
    await ownCluster?.stop();
  });

  it('keeps the records on the cluster, spread over its masters, and none on REDIS_URL', async () => {
    const perMaster = await Promise.all(
      cluster.nodes('master').map(async (node) => (await scanKeys(node, `${prefix}dedup:*${scope}*`)).length),
    );
    expect(perMaster).toHaveLength(3);
    expect(perMaster.reduce((sum, n) => sum + n, 0)).toBe(keys.length);
    expect(perMaster.filter((n) => n > 0).length).toBeGreaterThan(1);
    expect(await scanKeys(app.get<Redis>(REDIS_CLIENT), `${prefix}dedup:*`)).toEqual([]);
  });

  it('lists them page by page across the masters, reads one and forgets one', async () => {
    const listed: string[] = [];
    let cursor: string | null = null;
    do {
      const response: request.Response = await request(server())
        .get('/admin/idempotency')
        .query({ scope, limit: 5, ...(cursor ? { cursor } : {}) })
        .set(admin)
        .expect(200);
      listed.push(...response.body.items.map((item: { key: string }) => item.key));
      cursor = response.body.nextCursor;
    } while (cursor);
    // Each master in turn (the dedup README's "list() across masters"): every key once, not in key order.
    expect([...listed].sort()).toEqual(keys);

    const one = await request(server()).get(`/admin/idempotency/${scope}/order-03`).set(admin).expect(200);
    expect(one.body).toMatchObject({ scope, key: 'order-03', state: 'COMPLETED' });

    await request(server()).delete(`/admin/idempotency/${scope}/order-03`).set(admin).expect(200);
    await request(server()).get(`/admin/idempotency/${scope}/order-03`).set(admin).expect(404);
  });

  it('reports the cluster as dedup-redis in /health', async () => {
    const health = await request(server()).get('/health').expect(200);
    expect(health.body).toMatchObject({
      status: 'ok',
      info: { redis: { status: 'up' }, 'dedup-redis': { status: 'up' } },
    });
  });
});
