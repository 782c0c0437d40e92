import { ServiceUnavailableException } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { TerminusModule } from '@nestjs/terminus';
import { DataSource } from 'typeorm';
import { DEDUP_REDIS } from '../dedup/dedup-redis.module';
import { HealthService } from './health.service';
import { OPS_OPTIONS, type OpsOptions } from './ops.options';

const CONFIGURED = 'Configured-Db-Secret-4f1a';

async function healthFailingWith(message: string): Promise<unknown> {
  const options: OpsOptions = {
    app: 'test',
    dependencies: ['postgres'],
    aws: { AWS_REGION: 'us-east-1' } as OpsOptions['aws'],
    probeQueue: 'once-jobs',
    secrets: [CONFIGURED],
  };
  const moduleRef = await Test.createTestingModule({
    imports: [TerminusModule],
    providers: [
      HealthService,
      { provide: OPS_OPTIONS, useValue: options },
      { provide: DataSource, useValue: { query: () => Promise.reject(new Error(message)) } },
    ],
  }).compile();
  try {
    await moduleRef.get(HealthService).check();
    throw new Error('expected the check to fail');
  } catch (error) {
    if (!(error instanceof ServiceUnavailableException)) throw error;
    return error.getResponse();
  } finally {
    await moduleRef.close();
  }
}

describe('HealthService', () => {
  it('names the dependency that is down without the secrets its driver put in the message', async () => {
    const answer = JSON.stringify(
      await healthFailingWith(
        `connect to postgres://once:${CONFIGURED}@db.internal:5432/once failed; auth Bearer abcdef123456789 password=hunter2hunter2`,
      ),
    );
    expect(answer).toContain('"postgres"');
    expect(answer).toContain('db.internal');
    for (const secret of [CONFIGURED, 'abcdef123456789', 'hunter2hunter2'])
      expect(answer).not.toContain(secret);
  });

  it('cuts a long message', async () => {
    const answer = JSON.stringify(await healthFailingWith(`failed: ${'x'.repeat(5_000)}`));
    expect(answer.length).toBeLessThan(1_000);
  });
});

describe('HealthService with a dedup Redis Cluster', () => {
  const options: OpsOptions = {
    app: 'test',
    dependencies: ['postgres'],
    aws: { AWS_REGION: 'us-east-1' } as OpsOptions['aws'],
    probeQueue: 'once-jobs',
  };
  const master = (ping: () => Promise<string>) => ({ ping });
  const up = () => Promise.resolve('PONG');

  /** The health answer (200 body, or the 503's) with `dedupRedis` as DEDUP_REDIS (none when undefined). */
  async function answer(dedupRedis?: unknown): Promise<{ status: number; body: unknown }> {
    const moduleRef = await Test.createTestingModule({
      imports: [TerminusModule],
      providers: [
        HealthService,
        { provide: OPS_OPTIONS, useValue: options },
        { provide: DataSource, useValue: { query: () => Promise.resolve([{}]) } },
        ...(dedupRedis ? [{ provide: DEDUP_REDIS, useValue: dedupRedis }] : []),
      ],
    }).compile();
    try {
      return { status: 200, body: await moduleRef.get(HealthService).check() };
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      return { status: 503, body: error.getResponse() };
    } finally {
      await moduleRef.close();
    }
  }

  it('probes every master of the cluster as dedup-redis, beside the dependencies', async () => {
    const pings: number[] = [];
    const cluster = {
      isCluster: true,
      status: 'ready',
      nodes: () => [1, 2, 3].map((n) => master(() => (pings.push(n), up()))),
    };
    expect(await answer(cluster)).toEqual({
      status: 200,
      body: expect.objectContaining({
        status: 'ok',
        info: { postgres: { status: 'up' }, 'dedup-redis': { status: 'up' } },
      }),
    });
    expect(pings.sort()).toEqual([1, 2, 3]);
  });

  it('is unhealthy when a master does not answer or the cluster is not ready, naming dedup-redis', async () => {
    const failing = {
      isCluster: true,
      status: 'ready',
      nodes: () => [
        master(up),
        master(() => Promise.reject(new Error('connect ECONNREFUSED 10.0.0.2:7001'))),
      ],
    };
    expect(await answer(failing)).toEqual({
      status: 503,
      body: expect.objectContaining({
        status: 'error',
        info: { postgres: { status: 'up' } },
        error: { 'dedup-redis': { status: 'down', message: 'connect ECONNREFUSED 10.0.0.2:7001' } },
      }),
    });
    const connecting = { isCluster: true, status: 'connecting', nodes: () => [] };
    expect(await answer(connecting)).toMatchObject({
      status: 503,
      body: { error: { 'dedup-redis': { status: 'down', message: 'redis cluster connecting' } } },
    });
  });

  it('adds no probe when dedup shares REDIS_CLIENT or the app has no dedup', async () => {
    const single = { isCluster: false, status: 'ready', ping: up };
    for (const dedupRedis of [single, undefined])
      expect(await answer(dedupRedis)).toEqual({
        status: 200,
        body: expect.objectContaining({ info: { postgres: { status: 'up' } } }),
      });
  });
});
