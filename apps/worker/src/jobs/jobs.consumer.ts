import type { Message } from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { SqsConsumerEventHandler, SqsMessageHandler } from '@ssut/nestjs-sqs';
import { AdminErrorReporter } from '@once/mail';
import { InFlightTracker, jobMessageSchema } from '@once/platform';
import { DeadLetterService } from '../sqs/dead-letter.service';
import { JOBS_CONSUMER } from '../sqs/worker-queues';
import { JobFanoutService } from './job-fanout.service';

/** Runs scheduled jobs taken from the jobs queue. */
@Injectable()
export class JobsConsumer {
  private readonly logger = new Logger(JobsConsumer.name);

  constructor(
    private readonly fanout: JobFanoutService,
    private readonly inFlight: InFlightTracker,
    private readonly deadLetters: DeadLetterService,
    private readonly reporter: AdminErrorReporter,
  ) {}

  @SqsMessageHandler(JOBS_CONSUMER, false)
  async handle(message: Message): Promise<void> {
    await this.inFlight.track(async () => {
      const job = await this.deadLetters.parseOrDeadLetter(JOBS_CONSUMER, jobMessageSchema, message);
      if (!job) return;
      const recipients = await this.fanout.fanOut(job);
      this.logger.log({
        msg: 'job fanned out',
        job: job.job,
        eventId: job.eventId,
        messageId: message.MessageId,
        recipients,
      });
    });
  }

  @SqsConsumerEventHandler(JOBS_CONSUMER, 'processing_error')
  onProcessingError(error: Error, message: Message): void {
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? 0);
    this.logger.error({ msg: 'job failed', messageId: message.MessageId, receiveCount, err: error.message });
    void this.reporter.reportWorkerFailure(error, {
      handler: 'JobsConsumer.handle',
      queue: JOBS_CONSUMER,
      messageId: message.MessageId,
      receiveCount,
    });
  }
}
