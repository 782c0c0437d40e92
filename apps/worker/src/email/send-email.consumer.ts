import type { Message } from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { SqsConsumerEventHandler, SqsMessageHandler } from '@ssut/nestjs-sqs';
import { AdminErrorReporter } from '@once/mail';
import { InFlightTracker, sendEmailMessageSchema } from '@once/platform';
import { DeadLetterService } from '../sqs/dead-letter.service';
import { EMAIL_CONSUMER } from '../sqs/worker-queues';
import { EmailDeliveryService, RetryLaterError } from './email-delivery.service';

/** Sends the emails queued by fan-outs, each exactly once (see EmailDeliveryService). */
@Injectable()
export class SendEmailConsumer {
  private readonly logger = new Logger(SendEmailConsumer.name);

  constructor(
    private readonly delivery: EmailDeliveryService,
    private readonly inFlight: InFlightTracker,
    private readonly deadLetters: DeadLetterService,
    private readonly reporter: AdminErrorReporter,
  ) {}

  @SqsMessageHandler(EMAIL_CONSUMER, false)
  async handle(message: Message): Promise<void> {
    await this.inFlight.track(async () => {
      const email = await this.deadLetters.parseOrDeadLetter(EMAIL_CONSUMER, sendEmailMessageSchema, message);
      if (email) await this.delivery.deliver(email, message.MessageId);
    });
  }

  @SqsConsumerEventHandler(EMAIL_CONSUMER, 'processing_error')
  onProcessingError(error: Error, message: Message): void {
    const receiveCount = Number(message.Attributes?.ApproximateReceiveCount ?? 0);
    if (error instanceof RetryLaterError) {
      this.logger.warn({
        msg: 'email left for redelivery',
        idempotencyKey: error.idempotencyKey,
        messageId: message.MessageId,
        reason: error.message,
        receiveCount,
      });
      return;
    }
    this.logger.error({
      msg: 'send-email failed',
      messageId: message.MessageId,
      receiveCount,
      err: error.message,
    });
    void this.reporter.reportWorkerFailure(error, {
      handler: 'SendEmailConsumer.handle',
      queue: EMAIL_CONSUMER,
      messageId: message.MessageId,
      receiveCount,
    });
  }
}
