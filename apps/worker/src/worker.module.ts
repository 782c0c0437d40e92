import { DynamicModule, Module } from '@nestjs/common';
import { InFlightTracker, PlatformModule, trackingOptionsFromEnv } from '@once/platform';
import { TrackingModule } from '@once/tracking';
import { WorkerConfig } from './config/worker.config';
import { JobFanoutService } from './jobs/job-fanout.service';
import { JobsConsumer } from './jobs/jobs.consumer';
import { SendEmailConsumer } from './email/send-email.consumer';
import { EmailDeliveryService } from './email/email-delivery.service';
import { SubscriptionReader } from './email/subscription.reader';
import { DrainOnShutdown } from './lifecycle/drain-on-shutdown.service';
import { ConsumerErrorsService } from './sqs/consumer-errors.service';
import { DeadLetterService } from './sqs/dead-letter.service';
import { WorkerSqsModule } from './sqs/worker-sqs.module';

@Module({})
export class WorkerModule {
  static forRoot(config: WorkerConfig): DynamicModule {
    return {
      module: WorkerModule,
      imports: [
        PlatformModule.forRoot({
          appName: 'worker',
          config,
          health: ['postgres', 'redis', 'sqs', 'ses'],
          probeQueue: config.SQS_EMAIL_QUEUE,
          opsPort: config.OPS_PORT,
          // Exactly-once consumers that send email.
          dedup: true,
          mail: true,
        }),
        WorkerSqsModule.forRoot(config),
        TrackingModule.forRoot(trackingOptionsFromEnv(config)),
      ],
      providers: [
        InFlightTracker,
        DrainOnShutdown,
        DeadLetterService,
        ConsumerErrorsService,
        JobFanoutService,
        JobsConsumer,
        SubscriptionReader,
        EmailDeliveryService,
        SendEmailConsumer,
      ],
    };
  }
}
