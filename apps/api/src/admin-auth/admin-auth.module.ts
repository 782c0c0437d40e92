import { Module } from '@nestjs/common';
import { AdminAuthGuard } from './admin-auth.guard';
import { AdminRateLimitGuard } from './admin-rate-limit.guard';

/**
 * Authentication and rate limiting of the `/admin/*` routes (see {@link AdminOnly}). The throttler is
 * wired inside {@link AdminRateLimitGuard} from APP_CONFIG and REDIS_CLIENT rather than through a
 * ThrottlerModule, so `@AdminOnly()` works in any module of an app that has those two (DailyModule too).
 */
@Module({
  providers: [AdminAuthGuard, AdminRateLimitGuard],
  exports: [AdminAuthGuard, AdminRateLimitGuard],
})
export class AdminAuthModule {}
