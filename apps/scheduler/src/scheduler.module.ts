import { DynamicModule, Module } from '@nestjs/common';
import { ScheduleModule } from '@nestjs/schedule';
import { JobPublisherModule, PlatformModule } from '@once/platform';
import { SchedulerConfig } from './config/scheduler.config';
import { DedupPurgeJob } from './housekeeping/dedup-purge.job';
import { CronJobsRegistrar } from './jobs/cron-jobs.registrar';

@Module({})
export class SchedulerModule {
  static forRoot(config: SchedulerConfig): DynamicModule {
    return {
      module: SchedulerModule,
      imports: [
        // Job failures are mailed to ADMIN_EMAILS through the mail ledger, hence Postgres here too.
        PlatformModule.forRoot({
          appName: 'scheduler',
          config,
          health: ['postgres', 'redis', 'sqs'],
          probeQueue: config.SQS_JOBS_QUEUE,
          opsPort: config.OPS_PORT,
          maxPoolSize: 3,
          // DedupPurgeJob needs the dedup stores.
          dedup: true,
          mail: true,
        }),
        JobPublisherModule.forRoot({
          aws: config,
          jobsQueue: config.SQS_JOBS_QUEUE,
          keyPrefix: config.REDIS_KEY_PREFIX,
          timeZone: config.SCHEDULER_TIMEZONE,
        }),
        ScheduleModule.forRoot(),
      ],
      providers: [CronJobsRegistrar, DedupPurgeJob],
    };
  }
}
