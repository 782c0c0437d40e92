import { createHash, timingSafeEqual } from 'node:crypto';
import {
  CanActivate,
  ExecutionContext,
  Inject,
  Injectable,
  Logger,
  UnauthorizedException,
} from '@nestjs/common';
import { APP_CONFIG } from '@once/platform';
import type { Request } from 'express';
import { ApiConfig } from '../config/api.config';

/** The caller an admin request was authenticated as: a short, non-secret token fingerprint. */
export interface AdminActor {
  actor: string;
}

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * Admits requests carrying one of the configured tokens as `Authorization: Bearer <token>` or
 * `X-Api-Key: <token>`. Compares SHA-256 digests with timingSafeEqual, so neither the token's
 * content nor its length leaks through timing.
 */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  private readonly logger = new Logger(AdminAuthGuard.name);
  private readonly tokens: Array<{ digest: Buffer; actor: string }>;

  constructor(@Inject(APP_CONFIG) config: ApiConfig) {
    this.tokens = config.ADMIN_TOKENS.map((token) => ({
      digest: digest(token),
      actor: `token:${digest(token).toString('hex').slice(0, 8)}`,
    }));
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request & { admin?: AdminActor }>();
    const presented = this.presentedToken(request);
    if (presented === undefined)
      throw new UnauthorizedException('admin token required (Authorization: Bearer or X-Api-Key)');
    const candidate = digest(presented);
    let match: string | undefined;
    for (const token of this.tokens) {
      if (timingSafeEqual(candidate, token.digest)) match = token.actor;
    }
    if (!match) {
      this.logger.warn({ msg: 'admin token rejected', ip: request.ip, path: request.path });
      throw new UnauthorizedException('invalid admin token');
    }
    request.admin = { actor: match };
    return true;
  }

  private presentedToken(request: Request): string | undefined {
    const authorization = request.headers.authorization;
    if (authorization?.toLowerCase().startsWith('bearer ')) return authorization.slice(7).trim();
    const apiKey = request.headers['x-api-key'];
    return typeof apiKey === 'string' && apiKey.length > 0 ? apiKey : undefined;
  }
}
