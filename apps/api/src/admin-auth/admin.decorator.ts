import { applyDecorators, createParamDecorator, ExecutionContext, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiSecurity,
  ApiTooManyRequestsResponse,
  ApiUnauthorizedResponse,
} from '@nestjs/swagger';
import { AdminAuthGuard } from './admin-auth.guard';
import type { AdminActor } from './admin-token.verifier';
import { AdminRateLimitGuard } from './admin-rate-limit.guard';

/** Marks a controller or route as admin-only: rate limited (per token, failures per client IP), then token-checked. */
export function AdminOnly(): ClassDecorator & MethodDecorator {
  return applyDecorators(
    UseGuards(AdminRateLimitGuard, AdminAuthGuard),
    ApiBearerAuth(),
    ApiSecurity('api-key'),
    ApiUnauthorizedResponse({ description: 'missing or invalid admin token' }),
    ApiTooManyRequestsResponse({ description: 'rate limited' }),
  );
}

/** The authenticated admin's actor id, for audit log lines. */
export const Admin = createParamDecorator(
  (_data: unknown, context: ExecutionContext): string =>
    context.switchToHttp().getRequest<{ admin?: AdminActor }>().admin?.actor ?? 'unknown',
);
