import { type Message, SQSClient } from '@aws-sdk/client-sqs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { DeadLetterSender, RedrivePolicyReader } from '@once/dedup/sqs';
import { MalformedMessageError, parseMessageBody } from '@once/platform';
import type { z } from 'zod';
import { WORKER_QUEUE_URLS, WORKER_SQS_CLIENT, WorkerQueueUrls } from './worker-queues';

/**
 * Moves a message that can never succeed (malformed body, no idempotency key) straight to its
 * queue's dead-letter queue, named by the queue's redrive policy, instead of letting it be
 * received maxReceiveCount times. The caller then returns normally so the original is deleted.
 * With @Idempotent on, the consumers' key function (validEventId) rejects such bodies first and
 * the dedup lib dead-letters them before any claim; this path serves DEDUP_ENABLED=false. Both
 * go through the one SQS adapter (@once/dedup/sqs): same attributes, same DLQ lookup.
 */
@Injectable()
export class DeadLetterService {
  private readonly logger = new Logger(DeadLetterService.name);
  private readonly sender = new DeadLetterSender(new RedrivePolicyReader());

  constructor(
    @Inject(WORKER_SQS_CLIENT) private readonly sqs: SQSClient,
    @Inject(WORKER_QUEUE_URLS) private readonly queueUrls: WorkerQueueUrls,
  ) {}

  /** Parses a body; a malformed one is dead-lettered and `undefined` is returned so the original is deleted. */
  async parseOrDeadLetter<S extends z.ZodType>(
    consumer: keyof WorkerQueueUrls,
    schema: S,
    message: Message,
  ): Promise<z.infer<S> | undefined> {
    try {
      return parseMessageBody(schema, message);
    } catch (error) {
      if (!(error instanceof MalformedMessageError)) throw error;
      await this.deadLetter(consumer, message, error.message);
      return undefined;
    }
  }

  /** Sends a copy of `message` to the consumer queue's DLQ; throws (the original stays) when that fails. */
  async deadLetter(consumer: keyof WorkerQueueUrls, message: Message, reason: string): Promise<void> {
    const queue = { sqs: this.sqs, queueUrl: this.queueUrls[consumer] };
    const { failed } = await this.sender.send(queue, [{ message, reason }]);
    if (failed[0]) throw new Error(`dead-letter send failed: ${failed[0].error}`);
    this.logger.warn({ msg: 'message dead-lettered', consumer, messageId: message.MessageId, reason });
  }
}
