import { CanActivate, ExecutionContext, HttpException, HttpStatus, Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, REDIS_CLIENT } from '@once/platform';
import type { Request, Response } from 'express';
import type Redis from 'ioredis';
import { ApiConfig } from '../config/api.config';

const WINDOW_MS = 60_000;

/** Fixed one-minute window per client IP, shared by every api replica through Redis. */
@Injectable()
export class AdminRateLimitGuard implements CanActivate {
  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(APP_CONFIG) private readonly config: ApiConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const http = context.switchToHttp();
    const request = http.getRequest<Request>();
    const window = Math.floor(Date.now() / WINDOW_MS);
    const key = `${this.config.REDIS_KEY_PREFIX}admin-rate:${request.ip ?? 'unknown'}:${window}`;
    const [[, count]] = (await this.redis.multi().incr(key).pexpire(key, WINDOW_MS).exec()) as [
      [null, number],
    ];
    const limit = this.config.ADMIN_RATE_LIMIT_PER_MINUTE;
    const response = http.getResponse<Response>();
    response.setHeader('RateLimit-Limit', limit);
    response.setHeader('RateLimit-Remaining', Math.max(0, limit - count));
    if (count > limit) {
      response.setHeader('Retry-After', Math.ceil(((window + 1) * WINDOW_MS - Date.now()) / 1000));
      throw new HttpException('too many admin requests, retry later', HttpStatus.TOO_MANY_REQUESTS);
    }
    return true;
  }
}
