import type { Message } from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { SqsConsumerEventHandler, SqsMessageHandler } from '@ssut/nestjs-sqs';
import { Idempotent } from '@once/dedup';
import { InFlightTracker, jobMessageSchema } from '@once/platform';
import { ConsumerErrorsService } from '../sqs/consumer-errors.service';
import { DeadLetterService } from '../sqs/dead-letter.service';
import { validEventId } from '../sqs/valid-event-id.key';
import { JOBS_CONSUMER } from '../sqs/worker-queues';
import { JobFanoutService } from './job-fanout.service';

/**
 * Runs scheduled jobs taken from the jobs queue, once per `eventId`: the scope `jobs` is part of
 * every stored key, so it must never change.
 */
@Injectable()
export class JobsConsumer {
  private readonly logger = new Logger(JobsConsumer.name);

  constructor(
    private readonly fanout: JobFanoutService,
    private readonly inFlight: InFlightTracker,
    private readonly deadLetters: DeadLetterService,
    private readonly errors: ConsumerErrorsService,
  ) {}

  @SqsMessageHandler(JOBS_CONSUMER, false)
  @Idempotent({ scope: 'jobs', key: validEventId(jobMessageSchema) })
  async handle(message: Message): Promise<void> {
    await this.inFlight.track(async () => {
      const job = await this.deadLetters.parseOrDeadLetter(JOBS_CONSUMER, jobMessageSchema, message);
      if (!job) return;
      const recipients = await this.fanout.fanOut(job);
      this.logger.log({
        msg: 'job fanned out',
        job: job.job,
        idempotencyKey: job.eventId,
        messageId: message.MessageId,
        recipients,
      });
    });
  }

  @SqsConsumerEventHandler(JOBS_CONSUMER, 'processing_error')
  onProcessingError(error: Error, message: Message): void {
    this.errors.processingError(JOBS_CONSUMER, 'JobsConsumer.handle', error, message);
  }

  @SqsConsumerEventHandler(JOBS_CONSUMER, 'timeout_error')
  onTimeoutError(error: Error, message: Message): void {
    this.errors.processingError(JOBS_CONSUMER, 'JobsConsumer.handle', error, message);
  }

  @SqsConsumerEventHandler(JOBS_CONSUMER, 'error')
  onError(error: Error, message?: Message): void {
    this.errors.sqsError(JOBS_CONSUMER, error, message);
  }
}
