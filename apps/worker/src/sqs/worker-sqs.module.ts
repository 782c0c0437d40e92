import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamicModule, Inject, Injectable, Module, OnApplicationShutdown } from '@nestjs/common';
import { SqsModule } from '@ssut/nestjs-sqs';
import { createSqsClient, resolveQueueUrl } from '@once/platform';
import { WorkerConfig } from '../config/worker.config';
import {
  EMAIL_CONSUMER,
  EMAIL_PRODUCER,
  JOBS_CONSUMER,
  WORKER_QUEUE_URLS,
  WORKER_SQS_CLIENT,
  WorkerQueueUrls,
} from './worker-queues';

// The package does not export its option types from the index.
type SqsOptions = Awaited<
  ReturnType<NonNullable<Parameters<typeof SqsModule.registerAsync>[0]['useFactory']>>
>;

@Injectable()
class SqsClientCloser implements OnApplicationShutdown {
  constructor(@Inject(WORKER_SQS_CLIENT) private readonly sqs: SQSClient) {}

  onApplicationShutdown(): void {
    this.sqs.destroy();
  }
}

/** Consumers for the jobs and send-email queues and the send-email producer, on one explicit SQSClient. */
@Module({})
export class WorkerSqsModule {
  static forRoot(config: WorkerConfig): DynamicModule {
    const connection: DynamicModule = {
      module: class WorkerSqsConnectionModule {},
      providers: [
        { provide: WORKER_SQS_CLIENT, useFactory: () => createSqsClient(config) },
        {
          provide: WORKER_QUEUE_URLS,
          inject: [WORKER_SQS_CLIENT],
          useFactory: async (sqs: SQSClient): Promise<WorkerQueueUrls> => {
            const [jobs, email] = await Promise.all([
              resolveQueueUrl(sqs, config.SQS_JOBS_QUEUE),
              resolveQueueUrl(sqs, config.SQS_EMAIL_QUEUE),
            ]);
            return { [JOBS_CONSUMER]: jobs, [EMAIL_CONSUMER]: email };
          },
        },
        SqsClientCloser,
      ],
      exports: [WORKER_SQS_CLIENT, WORKER_QUEUE_URLS],
    };
    return {
      module: WorkerSqsModule,
      global: true,
      imports: [
        connection,
        SqsModule.registerAsync({
          imports: [connection],
          inject: [WORKER_SQS_CLIENT, WORKER_QUEUE_URLS],
          useFactory: (sqs: SQSClient, urls: WorkerQueueUrls): SqsOptions => {
            const polling = {
              sqs,
              batchSize: config.SQS_BATCH_SIZE,
              waitTimeSeconds: config.SQS_WAIT_TIME_SECONDS,
              pollingCompleteWaitTimeMs: config.SHUTDOWN_TIMEOUT_MS,
              messageSystemAttributeNames: ['ApproximateReceiveCount' as const],
              messageAttributeNames: ['All'],
            };
            return {
              consumers: [
                { name: JOBS_CONSUMER, queueUrl: urls[JOBS_CONSUMER], ...polling, batchSize: 1 },
                { name: EMAIL_CONSUMER, queueUrl: urls[EMAIL_CONSUMER], ...polling },
              ],
              producers: [{ name: EMAIL_PRODUCER, queueUrl: urls[EMAIL_CONSUMER], sqs }],
            };
          },
        }),
      ],
      exports: [connection],
    };
  }
}
