import { INestApplication } from '@nestjs/common';
import request from 'supertest';
import { bootstrap } from '../src/bootstrap';
import { runCli } from '../src/cli/cli';

describe('api', () => {
  let app: INestApplication;

  beforeAll(async () => {
    await expect(runCli(['migrate'])).resolves.toMatch(/^migrations applied: /);
    app = await bootstrap({ env: { PORT: '0' } });
  });

  afterAll(async () => {
    await app?.close();
  });

  it('reports Postgres, Redis, SQS and SES healthy and serves Prometheus metrics', async () => {
    const response = await request(app.getHttpServer()).get('/health').expect(200);
    expect(response.body).toMatchObject({
      status: 'ok',
      info: {
        postgres: { status: 'up' },
        redis: { status: 'up' },
        sqs: { status: 'up' },
        ses: { status: 'up' },
      },
    });
    const metrics = await request(app.getHttpServer()).get('/metrics').expect(200);
    expect(metrics.text).toContain('process_cpu_user_seconds_total{app="api"}');
  });

  it('answers 503 naming the dependency that is down', async () => {
    const broken = await bootstrap({
      env: { PORT: '0', SQS_ENDPOINT: 'http://127.0.0.1:9', SQS_JOBS_QUEUE: 'once-jobs' },
    });
    try {
      const response = await request(broken.getHttpServer()).get('/health').expect(503);
      expect(response.body.status).toBe('error');
      expect(Object.keys(response.body.error)).toEqual(['sqs']);
      expect(response.body.info.postgres.status).toBe('up');
    } finally {
      await broken.close();
    }
  });

  it('refuses to boot with invalid configuration, naming the variable', async () => {
    await expect(bootstrap({ env: { PORT: '0', DATABASE_URL: 'mysql://db/x' } })).rejects.toThrow(
      /DATABASE_URL: must be a postgres: or postgresql: URL/,
    );
    await expect(bootstrap({ env: { PORT: 'http' } })).rejects.toThrow(/PORT:/);
  });

  it('migrates idempotently and seeds users from the command line', async () => {
    await expect(runCli(['migrate'])).resolves.toBe('migrations applied: none pending');
    await expect(runCli(['seed', '4'])).resolves.toBe('users in database: 4');
    await expect(runCli(['seed', 'many'])).rejects.toThrow('seed count must be a whole number');
    await expect(runCli(['drop-everything'])).rejects.toThrow('usage: cli <migrate | revert | seed [count]>');
  });
});
