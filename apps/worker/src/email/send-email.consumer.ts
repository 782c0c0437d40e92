import type { Message, SQSClient } from '@aws-sdk/client-sqs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { SqsConsumerEventHandler, SqsMessageHandler } from '@ssut/nestjs-sqs';
import { Idempotent } from '@once/dedup';
import { InFlightTracker, sendEmailMessageSchema } from '@once/platform';
import { ConsumerErrorsService } from '../sqs/consumer-errors.service';
import { DeadLetterService } from '../sqs/dead-letter.service';
import { validEventId } from '../sqs/valid-event-id.key';
import { deferMessage } from '../sqs/message-visibility.util';
import {
  EMAIL_CONSUMER,
  WORKER_QUEUE_URLS,
  WORKER_SQS_CLIENT,
  type WorkerQueueUrls,
} from '../sqs/worker-queues';
import { EmailDeliveryService, RetryLaterError } from './email-delivery.service';

/**
 * Sends the emails queued by fan-outs. `@Idempotent` (scope `send-email`, never to change)
 * turns redelivered and duplicated messages away before they reach the mail ledger, which in
 * turn keeps SES from seeing a key twice (see EmailDeliveryService).
 */
@Injectable()
export class SendEmailConsumer {
  private readonly logger = new Logger(SendEmailConsumer.name);

  constructor(
    private readonly delivery: EmailDeliveryService,
    private readonly inFlight: InFlightTracker,
    private readonly deadLetters: DeadLetterService,
    private readonly errors: ConsumerErrorsService,
    @Inject(WORKER_SQS_CLIENT) private readonly sqs: SQSClient,
    @Inject(WORKER_QUEUE_URLS) private readonly queueUrls: WorkerQueueUrls,
  ) {}

  @SqsMessageHandler(EMAIL_CONSUMER, false)
  @Idempotent({ scope: 'send-email', key: validEventId(sendEmailMessageSchema) })
  async handle(message: Message): Promise<void> {
    await this.inFlight.track(async () => {
      const email = await this.deadLetters.parseOrDeadLetter(EMAIL_CONSUMER, sendEmailMessageSchema, message);
      if (!email) return;
      try {
        await this.delivery.deliver(email, message.MessageId);
      } catch (error) {
        // The ledger knows when a pending first send stops being in flight; come back then.
        if (error instanceof RetryLaterError && error.retryAfterMs !== undefined) {
          await deferMessage(
            this.sqs,
            this.queueUrls[EMAIL_CONSUMER],
            message,
            error.retryAfterMs,
            this.logger,
            error.idempotencyKey,
          );
        }
        throw error;
      }
    });
  }

  @SqsConsumerEventHandler(EMAIL_CONSUMER, 'processing_error')
  onProcessingError(error: Error, message: Message): void {
    this.errors.processingError(EMAIL_CONSUMER, 'SendEmailConsumer.handle', error, message);
  }

  @SqsConsumerEventHandler(EMAIL_CONSUMER, 'timeout_error')
  onTimeoutError(error: Error, message: Message): void {
    this.errors.processingError(EMAIL_CONSUMER, 'SendEmailConsumer.handle', error, message);
  }

  @SqsConsumerEventHandler(EMAIL_CONSUMER, 'error')
  onError(error: Error, message?: Message): void {
    this.errors.sqsError(EMAIL_CONSUMER, error, message);
  }
}
