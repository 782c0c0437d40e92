import type { Message } from '@aws-sdk/client-sqs';
import { Injectable } from '@nestjs/common';
import { SqsMessageHandler } from '@ssut/nestjs-sqs';
import { Idempotent } from '@once/dedup';
import { isFirstDelivery } from '@once/dedup/sqs';
import { InFlightTracker, sendEmailMessageSchema } from '@once/platform';
import { ConsumerErrorsService } from '../sqs/consumer-errors.service';
import { ConsumerEvents } from '../sqs/consumer-events.base';
import { DeadLetterService } from '../sqs/dead-letter.service';
import { validEventId } from '../sqs/valid-event-id.key';
import { EMAIL_CONSUMER } from '../sqs/worker-queues';
import { EmailDeliveryService } from './email-delivery.service';

/**
 * Sends the emails queued by fan-outs. `@Idempotent` (scope `send-email`, never to change)
 * turns redelivered and duplicated messages away before they reach the mail ledger, which in
 * turn keeps SES from seeing a key twice (see EmailDeliveryService).
 */
@Injectable()
export class SendEmailConsumer extends ConsumerEvents(EMAIL_CONSUMER, 'SendEmailConsumer.handle') {
  constructor(
    private readonly delivery: EmailDeliveryService,
    private readonly inFlight: InFlightTracker,
    private readonly deadLetters: DeadLetterService,
    readonly errors: ConsumerErrorsService,
  ) {
    super();
  }

  @SqsMessageHandler(EMAIL_CONSUMER, false)
  @Idempotent({ scope: 'send-email', key: validEventId(sendEmailMessageSchema) })
  async handle(message: Message): Promise<void> {
    await this.inFlight.track(async () => {
      const email = await this.deadLetters.parseOrDeadLetter(EMAIL_CONSUMER, sendEmailMessageSchema, message);
      if (!email) return;
      // A RetryLaterError with retryAfterMs (the ledger knows when a pending first send stops being
      // in flight) is deferred by @Idempotent until then, without spending a receive.
      await this.delivery.deliver(email, message.MessageId, isFirstDelivery(message));
    });
  }
}
