import type { Message } from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import { Idempotent, RetryAfterError, retryLater } from '@once/dedup';
import { isFirstDelivery } from '@once/dedup/sqs';
import { InFlightTracker, sendEmailMessageSchema } from '@once/platform';
import { ConsumerErrorsService } from '../sqs/consumer-errors.service';
import { ConsumerEvents } from '../sqs/consumer-events.base';
import { DeadLetterService } from '../sqs/dead-letter.service';
import { validEventId } from '../sqs/valid-event-id.key';
import { EMAIL_CONSUMER } from '../sqs/worker-queues';
import { EmailDeliveryService } from './email-delivery.service';

/** How reports name the handler. */
const HANDLER = 'SendEmailConsumer.handleBatch';

/**
 * Sends the emails queued by fan-outs, a receive batch at a time: `@Idempotent` (scope
 * `send-email`, never to change) claims the batch's keys in one round trip and hands over only
 * fresh messages, whose emails go out concurrently (within the mail rate limiter) and are
 * acknowledged one by one, in one `DeleteMessageBatch`. Redelivered and duplicated messages are
 * turned away before they reach the mail ledger, which in turn keeps SES from seeing a key twice
 * (see EmailDeliveryService). A message whose send must wait (`RetryLaterError`) is deferred by
 * `retryLater` without spending a receive; one that fails otherwise is reported and left out of
 * the acknowledgements, so SQS redelivers it and the others of its batch are not held back.
 */
@Injectable()
export class SendEmailConsumer extends ConsumerEvents(EMAIL_CONSUMER, HANDLER) {
  constructor(
    private readonly delivery: EmailDeliveryService,
    private readonly inFlight: InFlightTracker,
    private readonly deadLetters: DeadLetterService,
    readonly errors: ConsumerErrorsService,
  ) {
    super();
  }

  @SqsMessageHandler(EMAIL_CONSUMER, true)
  @Idempotent({ scope: 'send-email', key: validEventId(sendEmailMessageSchema) })
  async handleBatch(messages: Message[]): Promise<Message[]> {
    const handled = await Promise.all(messages.map((message) => this.handle(message)));
    return messages.filter((_, i) => handled[i]);
  }

  /** One message of the batch; false leaves it unacknowledged (retried later). */
  private async handle(message: Message): Promise<boolean> {
    try {
      await this.inFlight.track(async () => {
        const email = await this.deadLetters.parseOrDeadLetter(
          EMAIL_CONSUMER,
          sendEmailMessageSchema,
          message,
        );
        if (!email) return;
        await this.delivery.deliver(email, message.MessageId, isFirstDelivery(message));
      });
      return true;
    } catch (error) {
      // The ledger knows when a pending first send stops being in flight, or a retry's backoff.
      if (error instanceof RetryAfterError && error.retryAfterMs !== undefined)
        retryLater(message, error.retryAfterMs);
      this.errors.processingError(EMAIL_CONSUMER, HANDLER, error as Error, message);
      return false;
    }
  }
}
