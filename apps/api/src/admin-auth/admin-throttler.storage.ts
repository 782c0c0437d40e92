import { Logger, OnApplicationShutdown } from '@nestjs/common';
import { ThrottlerStorageRedisService } from '@nest-lab/throttler-storage-redis';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import type Redis from 'ioredis';
import { redisCall } from '@once/mail';

/** What a storage's increment answers (the package does not export the type by name). */
type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** Longest the admin throttle waits for Redis before it counts in this process instead. */
export const ADMIN_THROTTLE_REDIS_TIMEOUT_MS = 500;

/**
 * The admin throttle's counters: in Redis (shared by every replica) while it answers, in this process
 * (same limits, per replica) while it fails or takes longer than {@link ADMIN_THROTTLE_REDIS_TIMEOUT_MS},
 * so a Redis outage never turns an admin request into a 500. Logs once when an outage starts and once
 * when Redis counts again. The in-process counters start from zero and are kept for the next outage.
 */
export class AdminThrottlerStorage implements ThrottlerStorage, OnApplicationShutdown {
  private readonly logger = new Logger('AdminRateLimit');
  private readonly shared: ThrottlerStorageRedisService;
  private readonly local = new ThrottlerStorageService();
  private down = false;

  constructor(private readonly redis: Redis) {
    this.shared = new ThrottlerStorageRedisService(redis);
  }

  async increment(
    key: string,
    ttl: number,
    limit: number,
    blockDuration: number,
    throttlerName: string,
  ): Promise<ThrottlerStorageRecord> {
    let record: ThrottlerStorageRecord;
    try {
      record = await this.boundedRedisCall(() =>
        this.shared.increment(key, ttl, limit, blockDuration, throttlerName),
      );
    } catch (error) {
      if (!this.down) {
        this.down = true;
        this.logger.warn({
          msg: 'admin rate limits count in-process per replica: Redis is unavailable',
          err: error instanceof Error ? error.message : String(error),
        });
      }
      return this.local.increment(key, ttl, limit, blockDuration, throttlerName);
    }
    if (this.down) {
      this.down = false;
      this.logger.log({ msg: 'admin rate limits count in Redis again' });
    }
    return record;
  }

  onApplicationShutdown(): void {
    this.local.onApplicationShutdown();
  }

  private boundedRedisCall<T>(call: () => Promise<T>): Promise<T> {
    return redisCall(this.redis, call, ADMIN_THROTTLE_REDIS_TIMEOUT_MS);
  }
}
