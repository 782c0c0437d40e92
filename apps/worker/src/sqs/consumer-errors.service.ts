import type { Message } from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { DuplicateInFlightError } from '@once/dedup';
import { AdminErrorReporter } from '@once/mail';
import { RetryLaterError } from '../email/email-delivery.service';

/** sqs-consumer wraps handler errors in its own; the handler's error is the innermost `cause`. */
export function rootCause(error: unknown): unknown {
  let current = error;
  for (let depth = 0; depth < 5 && current instanceof Error && current.cause !== undefined; depth++) {
    current = current.cause;
  }
  return current;
}

const receiveCountOf = (message: Message | undefined): number =>
  Number(message?.Attributes?.ApproximateReceiveCount ?? 0);

/**
 * What the worker does with errors its consumers emit. Expected outcomes (a duplicate still in
 * flight elsewhere, a send to retry later) are logged at warn and left to SQS redelivery; real
 * failures are logged and mailed to the admins. SQS call failures (a lost DeleteMessage, a poll
 * that timed out) must be listened to, or the consumer's EventEmitter would crash the process.
 */
@Injectable()
export class ConsumerErrorsService {
  private readonly logger = new Logger('Consumer');

  constructor(private readonly reporter: AdminErrorReporter) {}

  processingError(consumer: string, handler: string, error: Error, message: Message): void {
    const cause = rootCause(error);
    const fields = { consumer, messageId: message.MessageId, receiveCount: receiveCountOf(message) };
    if (cause instanceof DuplicateInFlightError) {
      this.logger.warn({ ...fields, msg: 'duplicate left for redelivery: first delivery still in flight' });
      return;
    }
    if (cause instanceof RetryLaterError) {
      this.logger.warn({
        ...fields,
        msg: 'message left for redelivery',
        idempotencyKey: cause.idempotencyKey,
        reason: cause.message,
        retryAfterMs: cause.retryAfterMs,
      });
      return;
    }
    const err = cause instanceof Error ? cause : error;
    this.logger.error({ ...fields, msg: `${consumer} handler failed`, err: err.message });
    void this.reporter.reportWorkerFailure(err, {
      handler,
      queue: consumer,
      messageId: message.MessageId,
      receiveCount: fields.receiveCount,
    });
  }

  sqsError(consumer: string, error: Error, message: Message | undefined): void {
    this.logger.warn({
      consumer,
      messageId: message?.MessageId,
      msg: message
        ? 'SQS call for a message failed; it reappears after its visibility timeout and dedup absorbs the repeat'
        : 'SQS call failed; polling continues',
      err: error.message,
    });
  }
}
