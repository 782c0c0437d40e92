import { DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { JobPublisherModule, PlatformModule, REDIS_CLIENT, trackingOptionsFromEnv } from '@once/platform';
import type Redis from 'ioredis';
import { ClickSummaryService, TrackingClick } from '@once/tracking';
import { ApiConfig } from './config/api.config';
import { AdminAuthModule } from './admin-auth/admin-auth.module';
import { HttpInputModule } from './common/http-input.module';
import { DatabaseOutageFilter } from './common/database-outage.filter';
import { DailyModule } from './daily/daily.module';
import { HealthController } from './health/health.controller';
import { IdempotencyAdminController } from './idempotency/idempotency-admin.controller';
import { JobsAdminController } from './jobs/jobs-admin.controller';
import { MailLedgerAdminController } from './mail-ledger/mail-ledger-admin.controller';
import { QueueAdminService } from './queues/queue-admin.service';
import { QueuesAdminController } from './queues/queues-admin.controller';
import { SesNotificationsModule } from './ses-notifications/ses-notifications.module';
import { AdminStatsService } from './stats/admin-stats.service';
import { StatsAdminController } from './stats/stats-admin.controller';

@Module({})
export class AppModule {
  static forRoot(config: ApiConfig): DynamicModule {
    return {
      module: AppModule,
      imports: [
        PlatformModule.forRoot({
          appName: 'api',
          config,
          health: ['postgres', 'redis', 'sqs', 'ses'],
          probeQueue: config.SQS_JOBS_QUEUE,
          // Admin reads of dedup records and stats; SES feedback, the mail ledger and admin error mail.
          dedup: true,
          mail: true,
          // `/daily/` needs no database: the api boots and redirects while Postgres is unreachable.
          connectDatabaseInBackground: true,
          // The redirect's hot path: at warn, pino-http would redact a child logger per click for nothing.
          quietRoutes: ['daily'],
        }),
        // Clicks Postgres cannot take wait in a Redis stream, shared by every api replica.
        DailyModule.forRootAsync({
          inject: [REDIS_CLIENT],
          useFactory: (redis: Redis) => ({
            ...trackingOptionsFromEnv(config),
            clickSpill: { redis, streamKey: `${config.REDIS_KEY_PREFIX}tracking:clicks` },
          }),
        }),
        SesNotificationsModule.forRoot({ topicArns: config.SES_SNS_TOPIC_ARNS }),
        JobPublisherModule.forRoot({
          aws: config,
          jobsQueue: config.SQS_JOBS_QUEUE,
          keyPrefix: config.REDIS_KEY_PREFIX,
          timeZone: config.SCHEDULER_TIMEZONE,
        }),
        // The stats reuse the clicks summary of DailyModule, whose TrackingModule is not global.
        TypeOrmModule.forFeature([TrackingClick]),
        AdminAuthModule,
        HttpInputModule,
      ],
      controllers: [
        HealthController,
        QueuesAdminController,
        JobsAdminController,
        MailLedgerAdminController,
        IdempotencyAdminController,
        StatsAdminController,
      ],
      providers: [
        QueueAdminService,
        ClickSummaryService,
        AdminStatsService,
        // 503 while Postgres is away; reports 5xx and unexpected errors to ADMIN_EMAILS, redacted, throttled.
        { provide: APP_FILTER, useClass: DatabaseOutageFilter },
      ],
    };
  }
}
