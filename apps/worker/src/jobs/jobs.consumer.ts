import type { Message } from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import { Idempotent } from '@once/dedup';
import { InFlightTracker, jobMessageSchema } from '@once/platform';
import { ConsumerErrorsService } from '../sqs/consumer-errors.service';
import { ConsumerEvents } from '../sqs/consumer-events.base';
import { DeadLetterService } from '../sqs/dead-letter.service';
import { validEventId } from '../sqs/valid-event-id.key';
import { JOBS_CONSUMER } from '../sqs/worker-queues';
import { JobFanoutService } from './job-fanout.service';

/**
 * Runs scheduled jobs taken from the jobs queue, once per `eventId`: the scope `jobs` is part of
 * every stored key, so it must never change.
 */
@Injectable()
export class JobsConsumer extends ConsumerEvents(JOBS_CONSUMER, 'JobsConsumer.handle') {
  private readonly logger = new Logger(JobsConsumer.name);

  constructor(
    private readonly fanout: JobFanoutService,
    private readonly inFlight: InFlightTracker,
    private readonly deadLetters: DeadLetterService,
    readonly errors: ConsumerErrorsService,
  ) {
    super();
  }

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
}
