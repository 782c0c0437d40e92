import { ExecutionContext, Inject, Injectable, OnApplicationShutdown } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ThrottlerGuard, type ThrottlerLimitDetail, type ThrottlerRequest } from '@nestjs/throttler';
import { APP_CONFIG, REDIS_CLIENT } from '@once/platform';
import type { Request } from 'express';
import type Redis from 'ioredis';
import { adminLimitsEnvSchema, ApiConfig } from '../config/api.config';
import { AdminThrottlerStorage } from './admin-throttler.storage';
import { AdminTokenVerifier } from './admin-token.verifier';

const WINDOW_MS = 60_000;
const FAILED_TRACKER = 'failed-auth:';

/**
 * Limits the admin routes in one-minute windows counted in Redis (@nestjs/throttler with
 * @nest-lab/throttler-storage-redis, so every api replica shares the counters), in two separate buckets:
 * requests with a valid token per token (ADMIN_RATE_LIMIT_PER_MINUTE), requests with a missing or
 * wrong token per client IP (ADMIN_AUTH_FAILURES_PER_MINUTE). Junk from an address, or from everyone
 * behind one proxy, therefore never refuses a valid token. Over a limit: 429 with Retry-After; every
 * answer carries RateLimit-Limit, RateLimit-Remaining and RateLimit-Reset. Runs before
 * {@link AdminAuthGuard}, which answers 401 to the failures still under their limit. While Redis fails
 * or is slow, the same limits are counted per replica in memory (see {@link AdminThrottlerStorage}).
 */
@Injectable()
export class AdminRateLimitGuard extends ThrottlerGuard implements OnApplicationShutdown {
  protected override headerPrefix = 'RateLimit';
  private readonly storage: AdminThrottlerStorage;
  private readonly verifier: AdminTokenVerifier;
  private readonly keyPrefix: string;
  private readonly limits: { admin: number; failures: number };

  constructor(
    @Inject(APP_CONFIG) config: Pick<ApiConfig, 'ADMIN_TOKENS' | 'REDIS_KEY_PREFIX'>,
    @Inject(REDIS_CLIENT) redis: Redis,
    reflector: Reflector,
  ) {
    const limits = adminLimitsEnvSchema.parse(config);
    const storage = new AdminThrottlerStorage(redis);
    super(
      {
        throttlers: [{ name: 'default', ttl: WINDOW_MS, limit: limits.ADMIN_RATE_LIMIT_PER_MINUTE }],
        errorMessage: (_context: ExecutionContext, detail: ThrottlerLimitDetail) =>
          detail.tracker.startsWith(FAILED_TRACKER)
            ? 'too many failed admin authentications from this address, retry later'
            : 'too many admin requests, retry later',
      },
      storage,
      reflector,
    );
    this.storage = storage;
    this.verifier = new AdminTokenVerifier(config.ADMIN_TOKENS);
    this.keyPrefix = `${config.REDIS_KEY_PREFIX}admin-rate:`;
    this.limits = {
      admin: limits.ADMIN_RATE_LIMIT_PER_MINUTE,
      failures: limits.ADMIN_AUTH_FAILURES_PER_MINUTE,
    };
  }

  protected override async handleRequest(request: ThrottlerRequest): Promise<boolean> {
    const req = request.context.switchToHttp().getRequest<Request>();
    const identity = this.verifier.identify(req.headers);
    const tracker =
      identity.kind === 'admin'
        ? `admin:${identity.actor}`
        : `${FAILED_TRACKER}${await this.getTracker(req)}`;
    return super.handleRequest({
      ...request,
      limit: identity.kind === 'admin' ? this.limits.admin : this.limits.failures,
      getTracker: () => tracker,
    });
  }

  onApplicationShutdown(): void {
    this.storage.onApplicationShutdown();
  }

  /** A 429 carries the RateLimit-* headers too (the library sets only Retry-After). */
  protected override async throwThrottlingException(
    context: ExecutionContext,
    detail: ThrottlerLimitDetail,
  ): Promise<void> {
    const { res } = this.getRequestResponse(context);
    this.setResponseHeader(res, `${this.headerPrefix}-Limit`, detail.limit);
    this.setResponseHeader(res, `${this.headerPrefix}-Remaining`, 0);
    this.setResponseHeader(res, `${this.headerPrefix}-Reset`, detail.timeToBlockExpire);
    return super.throwThrottlingException(context, detail);
  }

  /** One bucket per tracker for all admin routes (the default is one per route). */
  protected override generateKey(_context: ExecutionContext, tracker: string): string {
    return `${this.keyPrefix}${tracker}`;
  }
}
