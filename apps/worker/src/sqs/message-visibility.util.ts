import { ChangeMessageVisibilityCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '@nestjs/common';

/** SQS's ceiling for a message's visibility timeout (12 h). */
const MAX_VISIBILITY_SECONDS = 43_200;

/**
 * Hides a message until `afterMs` from now (+1 s), so a redelivery comes when its answer can have
 * changed instead of spending a receive (`maxReceiveCount`) on the same answer every visibility
 * timeout. Best effort: a failure leaves the queue's own timeout in place.
 */
export async function deferMessage(
  sqs: SQSClient,
  queueUrl: string,
  message: Message,
  afterMs: number,
  logger: Logger,
  idempotencyKey?: string,
): Promise<void> {
  if (!message.ReceiptHandle) return;
  const seconds = Math.min(MAX_VISIBILITY_SECONDS, Math.max(1, Math.ceil(afterMs / 1000) + 1));
  try {
    await sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: queueUrl,
        ReceiptHandle: message.ReceiptHandle,
        VisibilityTimeout: seconds,
      }),
    );
  } catch (error) {
    logger.warn({
      msg: 'could not defer the message; it reappears after the visibility timeout',
      messageId: message.MessageId,
      idempotencyKey,
      err: (error as Error).message,
    });
  }
}
