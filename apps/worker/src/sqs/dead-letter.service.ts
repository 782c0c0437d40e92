import {
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  Message,
  MessageAttributeValue,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { DEAD_LETTER_ATTRIBUTES } from '@once/dedup';
import { MalformedMessageError, parseMessageBody } from '@once/platform';
import type { z } from 'zod';
import { WORKER_QUEUE_URLS, WORKER_SQS_CLIENT, WorkerQueueUrls } from './worker-queues';

/**
 * Moves a message that can never succeed (malformed body, no idempotency key) straight to its
 * queue's dead-letter queue, named by the queue's redrive policy, instead of letting it be
 * received maxReceiveCount times. The caller then returns normally so the original is deleted.
 * With @Idempotent on, the consumers' key function (validEventId) rejects such bodies first and
 * the dedup lib dead-letters them before any claim; this path serves DEDUP_ENABLED=false.
 */
@Injectable()
export class DeadLetterService {
  private readonly logger = new Logger(DeadLetterService.name);
  private readonly dlqUrls = new Map<string, Promise<string>>();

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

  async deadLetter(consumer: keyof WorkerQueueUrls, message: Message, reason: string): Promise<void> {
    const queueUrl = this.queueUrls[consumer];
    const dlqUrl = await this.dlqUrlFor(queueUrl);
    // SQS allows 10 attributes: keep the reason and sources, and as many of the original's as fit.
    const kept = Object.entries(message.MessageAttributes ?? {})
      .filter(([name]) => !(Object.values(DEAD_LETTER_ATTRIBUTES) as string[]).includes(name))
      .slice(0, 10 - Object.keys(DEAD_LETTER_ATTRIBUTES).length);
    const attributes: Record<string, MessageAttributeValue> = {
      ...Object.fromEntries(kept),
      [DEAD_LETTER_ATTRIBUTES.reason]: { DataType: 'String', StringValue: reason.slice(0, 1024) },
      [DEAD_LETTER_ATTRIBUTES.sourceQueue]: { DataType: 'String', StringValue: queueUrl },
      [DEAD_LETTER_ATTRIBUTES.sourceMessageId]: {
        DataType: 'String',
        StringValue: message.MessageId ?? 'unknown',
      },
    };
    await this.sqs.send(
      new SendMessageCommand({
        QueueUrl: dlqUrl,
        MessageBody: message.Body ?? '',
        MessageAttributes: attributes,
      }),
    );
    this.logger.warn({ msg: 'message dead-lettered', consumer, messageId: message.MessageId, reason });
  }

  private dlqUrlFor(queueUrl: string): Promise<string> {
    let url = this.dlqUrls.get(queueUrl);
    if (!url) {
      url = this.lookUpDlq(queueUrl);
      url.catch(() => this.dlqUrls.delete(queueUrl));
      this.dlqUrls.set(queueUrl, url);
    }
    return url;
  }

  private async lookUpDlq(queueUrl: string): Promise<string> {
    const { Attributes } = await this.sqs.send(
      new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }),
    );
    const policy = Attributes?.RedrivePolicy;
    if (!policy) throw new Error(`queue ${queueUrl} has no redrive policy: configure a dead-letter queue`);
    const arn = (JSON.parse(policy) as { deadLetterTargetArn: string }).deadLetterTargetArn;
    const name = arn.slice(arn.lastIndexOf(':') + 1);
    const { QueueUrl } = await this.sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!QueueUrl) throw new Error(`dead-letter queue ${name} not found`);
    return QueueUrl;
  }
}
