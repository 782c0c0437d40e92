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
import { AdminActor, AdminTokenVerifier } from './admin-token.verifier';

export type { AdminActor } from './admin-token.verifier';

/**
 * Admits requests carrying one of the configured tokens (see {@link AdminTokenVerifier}) and records
 * the actor on the request; refuses the others with 401. Runs after {@link AdminRateLimitGuard}.
 */
@Injectable()
export class AdminAuthGuard implements CanActivate {
  private readonly logger = new Logger(AdminAuthGuard.name);
  private readonly verifier: AdminTokenVerifier;

  constructor(@Inject(APP_CONFIG) config: Pick<ApiConfig, 'ADMIN_TOKENS'>) {
    this.verifier = new AdminTokenVerifier(config.ADMIN_TOKENS);
  }

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<Request & { admin?: AdminActor }>();
    const identity = this.verifier.identify(request.headers);
    if (identity.kind === 'missing')
      throw new UnauthorizedException('admin token required (Authorization: Bearer or X-Api-Key)');
    if (identity.kind === 'invalid') {
      this.logger.warn({ msg: 'admin token rejected', ip: request.ip, path: request.path });
      throw new UnauthorizedException('invalid admin token');
    }
    request.admin = { actor: identity.actor };
    return true;
  }
}
