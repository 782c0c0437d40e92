import { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamicModule, Inject, Injectable, Logger, Module, OnApplicationShutdown } from '@nestjs/common';
import type Redis from 'ioredis';
import type { AwsEnv } from '../config/config.schemas';
import { jobEventId, JobMessage, jobMessageSchema, JobName } from '../messages/job.message';
import { REDIS_CLIENT } from '../redis/redis.module';
import { createSqsClient, resolveQueueUrl } from '../sqs/sqs-client.factory';

export interface JobPublisherOptions {
  aws: AwsEnv;
  /** Jobs queue name or URL. */
  jobsQueue: string;
  keyPrefix: string;
  /** How long an enqueued slot is remembered (must exceed any catch-up window). */
  rememberMs?: number;
  /** How long a publisher may hold a slot before another may try (covers a crash mid-send). */
  leaseMs?: number;
}

export type PublishResult =
  | { status: 'enqueued'; eventId: string; messageId: string | undefined; message: JobMessage }
  | { status: 'duplicate'; eventId: string; enqueuedBy: string | null };

const JOB_PUBLISHER_OPTIONS = Symbol('JOB_PUBLISHER_OPTIONS');

/**
 * Enqueues one logical job per (job, slot), however many scheduler replicas, restarts or manual
 * triggers ask: the slot is claimed in Redis with SET NX before SendMessage and released if the
 * send fails. The worker's @Idempotent consumer stays the guarantee; this saves the duplicate
 * message and the fan-out round trip in the common case.
 */
@Injectable()
export class JobPublisher implements OnApplicationShutdown {
  private readonly logger = new Logger(JobPublisher.name);
  private readonly sqs: SQSClient;
  private queueUrl?: Promise<string>;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis,
    @Inject(JOB_PUBLISHER_OPTIONS) private readonly options: JobPublisherOptions,
  ) {
    this.sqs = createSqsClient(options.aws);
  }

  async publish(
    job: JobName,
    slot: Date,
    trigger: JobMessage['trigger'],
    by: string = trigger,
  ): Promise<PublishResult> {
    const eventId = jobEventId(job, slot);
    const key = `${this.options.keyPrefix}enqueue:${eventId}`;
    const claimed = await this.redis.set(key, `pending:${by}`, 'PX', this.options.leaseMs ?? 60_000, 'NX');
    if (claimed !== 'OK') {
      const holder = await this.redis.get(key);
      this.logger.log({ msg: 'job slot already enqueued', job, eventId, trigger, holder });
      return { status: 'duplicate', eventId, enqueuedBy: holder };
    }
    const message: JobMessage = jobMessageSchema.parse({
      eventId,
      job,
      slot: slot.toISOString(),
      firedAt: new Date().toISOString(),
      trigger,
    });
    try {
      this.queueUrl ??= resolveQueueUrl(this.sqs, this.options.jobsQueue);
      const { MessageId } = await this.sqs.send(
        new SendMessageCommand({ QueueUrl: await this.queueUrl, MessageBody: JSON.stringify(message) }),
      );
      await this.redis.set(
        key,
        `enqueued:${by}:${MessageId}`,
        'PX',
        this.options.rememberMs ?? 7 * 86_400_000,
      );
      this.logger.log({ msg: 'job enqueued', job, eventId, messageId: MessageId, trigger });
      return { status: 'enqueued', eventId, messageId: MessageId, message };
    } catch (error) {
      this.queueUrl = undefined;
      await this.redis.del(key).catch(() => undefined);
      throw error;
    }
  }

  onApplicationShutdown(): void {
    this.sqs.destroy();
  }
}

/** Provides {@link JobPublisher} (needs the global REDIS_CLIENT). */
@Module({})
export class JobPublisherModule {
  static forRoot(options: JobPublisherOptions): DynamicModule {
    return {
      module: JobPublisherModule,
      providers: [{ provide: JOB_PUBLISHER_OPTIONS, useValue: options }, JobPublisher],
      exports: [JobPublisher],
    };
  }
}
