import { Logger } from '@nestjs/common';
import { DedupMetrics } from '@once/dedup';
import type Redis from 'ioredis';
import { DedupStatsService } from './dedup-stats.service';

/** The four commands DedupStatsService uses, in memory; `down` makes every write fail. */
class FakeRedis {
  readonly sets = new Map<string, Set<string>>();
  readonly hashes = new Map<string, Map<string, number>>();
  down = false;

  async sadd(key: string, member: string): Promise<number> {
    if (this.down) throw new Error('ECONNREFUSED');
    const set = this.sets.get(key) ?? new Set<string>();
    this.sets.set(key, set.add(member));
    return 1;
  }

  async hincrby(key: string, field: string, by: number): Promise<number> {
    if (this.down) throw new Error('ECONNREFUSED');
    const hash = this.hashes.get(key) ?? new Map<string, number>();
    this.hashes.set(key, hash.set(field, (hash.get(field) ?? 0) + by));
    return hash.get(field) ?? 0;
  }

  async smembers(key: string): Promise<string[]> {
    return [...(this.sets.get(key) ?? [])];
  }

  async hgetall(key: string): Promise<Record<string, string>> {
    return Object.fromEntries([...(this.hashes.get(key) ?? [])].map(([field, n]) => [field, String(n)]));
  }
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('DedupStatsService', () => {
  let warnings: unknown[];

  beforeEach(() => {
    warnings = [];
    jest
      .spyOn(Logger.prototype, 'warn')
      .mockImplementation((message: unknown) => void warnings.push(message));
  });

  afterEach(() => jest.restoreAllMocks());

  it('counts duplicate events per scope by kind and cause, ignoring other events', async () => {
    const redis = new FakeRedis();
    const metrics = new DedupMetrics();
    const stats = new DedupStatsService(redis as unknown as Redis, { keyPrefix: 'p:stats:dedup:' }, metrics);

    metrics.increment('duplicate-completed', { scope: 'jobs', cause: 'producer-duplicate', messageId: 'm1' });
    metrics.increment('duplicate-completed', { scope: 'jobs', cause: 'redelivery', messageId: 'm2' });
    metrics.increment('duplicate-in-flight', { scope: 'send-email', cause: 'redelivery' }, 2);
    metrics.increment('duplicate-completed', { scope: 'send-email' });
    metrics.increment('payload-mismatch', { scope: 'send-email' }, 3);
    metrics.increment('claimed', { scope: 'jobs' });
    await settle();

    expect([...redis.hashes.keys()].sort()).toEqual([
      'p:stats:dedup:duplicates:jobs',
      'p:stats:dedup:duplicates:send-email',
    ]);
    expect(await stats.duplicates()).toEqual([
      {
        scope: 'jobs',
        suppressed: { redelivery: 1, producerDuplicate: 1, unknown: 0, total: 2 },
        deferred: { redelivery: 0, producerDuplicate: 0, unknown: 0, total: 0 },
        payloadMismatches: 0,
      },
      {
        scope: 'send-email',
        suppressed: { redelivery: 0, producerDuplicate: 0, unknown: 1, total: 1 },
        deferred: { redelivery: 2, producerDuplicate: 0, unknown: 0, total: 2 },
        payloadMismatches: 3,
      },
    ]);

    stats.onModuleDestroy();
    metrics.increment('duplicate-completed', { scope: 'jobs', cause: 'redelivery' });
    await settle();
    expect((await stats.duplicates())[0]?.suppressed.total).toBe(2);
  });

  it('never fails the caller when Redis is down, and logs the outage once', async () => {
    const redis = new FakeRedis();
    const metrics = new DedupMetrics();
    new DedupStatsService(redis as unknown as Redis, { keyPrefix: 'p:' }, metrics);
    redis.down = true;

    expect(() => {
      metrics.increment('duplicate-completed', { scope: 'jobs', cause: 'redelivery', messageId: 'm1' });
      metrics.increment('duplicate-completed', { scope: 'jobs', cause: 'redelivery', messageId: 'm2' });
    }).not.toThrow();
    await settle();
    expect(warnings).toEqual([
      expect.objectContaining({ msg: 'duplicate stats not recorded', scope: 'jobs', messageId: 'm1' }),
    ]);
    expect(metrics.snapshot()['duplicate-completed']).toBe(2);
  });
});
