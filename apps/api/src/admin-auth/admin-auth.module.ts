import { Module } from '@nestjs/common';
import { AdminAuthGuard } from './admin-auth.guard';
import { AdminRateLimitGuard } from './admin-rate-limit.guard';

/** Authentication and rate limiting of the `/admin/*` routes (see {@link AdminOnly}). */
@Module({
  providers: [AdminAuthGuard, AdminRateLimitGuard],
  exports: [AdminAuthGuard, AdminRateLimitGuard],
})
export class AdminAuthModule {}
