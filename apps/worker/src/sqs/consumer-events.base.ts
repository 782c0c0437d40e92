import type { Message } from '@aws-sdk/client-sqs';
import { SqsConsumerEventHandler } from '@ssut/nestjs-sqs';
import type { ConsumerErrorsService } from './consumer-errors.service';

/** What a consumer class extending {@link ConsumerEvents} provides: the service its events go to. */
export interface ConsumerEventsHost {
  readonly errors: ConsumerErrorsService;
}

/**
 * A base class for an @ssut/nestjs-sqs consumer class: it listens to the consumer's
 * `processing_error`, `timeout_error` and `error` events and hands them to ConsumerErrorsService
 * (a timeout counts as a processing failure). `handler` names the method in reports.
 * The subclass injects the service as `errors`.
 */
export function ConsumerEvents(consumer: string, handler: string) {
  abstract class ConsumerEventHandlers implements ConsumerEventsHost {
    abstract readonly errors: ConsumerErrorsService;

    @SqsConsumerEventHandler(consumer, 'processing_error')
    onProcessingError(error: Error, message: Message): void {
      this.errors.processingError(consumer, handler, error, message);
    }

    @SqsConsumerEventHandler(consumer, 'timeout_error')
    onTimeoutError(error: Error, message: Message): void {
      this.errors.processingError(consumer, handler, error, message);
    }

    @SqsConsumerEventHandler(consumer, 'error')
    onError(error: Error, message?: Message): void {
      this.errors.sqsError(consumer, error, message);
    }
  }
  return ConsumerEventHandlers;
}
