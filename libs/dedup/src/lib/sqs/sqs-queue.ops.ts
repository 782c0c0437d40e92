import {
  ChangeMessageVisibilityBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  type Message,
  type MessageAttributeValue,
  SendMessageBatchCommand,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { SqsService } from '@ssut/nestjs-sqs';
import { DEAD_LETTER_ATTRIBUTES } from '../dedup.constants';

/** The SQS client and queue URL a consumer polls with. */
export interface ConsumerQueue {
  sqs: SQSClient;
  queueUrl: string;
}

// SqsService#getQueueInfo exists at runtime in @ssut/nestjs-sqs 3.0.1 but is typed private.
interface QueueInfoSource {
  getQueueInfo(name: string): ConsumerQueue;
}

/** SQS allows 12 hours at most. */
const MAX_VISIBILITY_SECONDS = 43_200;
const MAX_MESSAGE_ATTRIBUTES = 10;

const chunks = <T>(items: readonly T[], size: number): T[][] =>
  Array.from({ length: Math.ceil(items.length / size) }, (_, i) => items.slice(i * size, i * size + size));

/**
 * SQS calls on the queue of a @ssut/nestjs-sqs consumer, with that consumer's own client (so an
 * emulator endpoint is honoured): change visibility, dead-letter. Found lazily through SqsService;
 * without one (a plain method, a unit test) visibility changes are skipped and dead-lettering
 * reports failure.
 */
@Injectable()
export class SqsQueueOps {
  private readonly logger = new Logger('Idempotency');
  private sqsService?: QueueInfoSource;
  private readonly dlqUrls = new Map<string, Promise<string>>();

  constructor(private readonly moduleRef: ModuleRef) {}

  /** The consumer's client and queue URL, or `undefined` when there is no such consumer. */
  queueOf(consumer: string): ConsumerQueue | undefined {
    try {
      this.sqsService ??= this.moduleRef.get(SqsService, { strict: false }) as unknown as QueueInfoSource;
      return this.sqsService.getQueueInfo(consumer);
    } catch {
      return undefined;
    }
  }

  /** Sets the visibility timeout of messages (best effort: failures are logged, not thrown). */
  async changeVisibility(consumer: string, messages: readonly Message[], seconds: number): Promise<void> {
    const queue = this.queueOf(consumer);
    const held = messages.filter((message) => message.ReceiptHandle && message.MessageId);
    if (!queue || held.length === 0) return;
    const timeout = Math.min(MAX_VISIBILITY_SECONDS, Math.max(0, Math.ceil(seconds)));
    for (const batch of chunks(held, 10)) {
      try {
        const { Failed } = await queue.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: queue.queueUrl,
            Entries: batch.map((message, i) => ({
              Id: String(i),
              ReceiptHandle: message.ReceiptHandle,
              VisibilityTimeout: timeout,
            })),
          }),
        );
        for (const failure of Failed ?? []) {
          this.logger.warn({
            msg: 'visibility change failed',
            consumer,
            messageId: batch[Number(failure.Id)]?.MessageId,
            code: failure.Code,
          });
        }
      } catch (error) {
        this.logger.warn({ msg: 'visibility change failed', consumer, error: (error as Error).message });
      }
    }
  }

  /**
   * Sends copies of messages to the consumer queue's dead-letter queue (named by its redrive
   * policy), each tagged with its reason. Returns the messages that were sent; the caller acknowledges
   * only those, the rest stay with SQS redrive.
   */
  async deadLetter(
    consumer: string,
    entries: readonly { message: Message; reason: string }[],
  ): Promise<Set<Message>> {
    const sent = new Set<Message>();
    const queue = this.queueOf(consumer);
    if (!queue || entries.length === 0) return sent;
    let dlqUrl: string;
    try {
      dlqUrl = await this.dlqUrlFor(queue);
    } catch (error) {
      this.logger.error({
        msg: 'cannot dead-letter: no dead-letter queue',
        consumer,
        error: (error as Error).message,
      });
      return sent;
    }
    const fifo = dlqUrl.endsWith('.fifo');
    for (const batch of chunks(entries, 10)) {
      try {
        const { Successful } = await queue.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: dlqUrl,
            Entries: batch.map(({ message, reason }, i) => ({
              Id: String(i),
              MessageBody: message.Body ?? '',
              MessageAttributes: deadLetterAttributes(message, queue.queueUrl, reason),
              ...(fifo && {
                MessageGroupId: message.Attributes?.MessageGroupId ?? 'once-dedup',
                MessageDeduplicationId: message.MessageId,
              }),
            })),
          }),
        );
        for (const entry of Successful ?? []) {
          const sentEntry = batch[Number(entry.Id)];
          if (sentEntry) sent.add(sentEntry.message);
        }
      } catch (error) {
        this.logger.error({ msg: 'dead-letter send failed', consumer, error: (error as Error).message });
      }
    }
    return sent;
  }

  private dlqUrlFor(queue: ConsumerQueue): Promise<string> {
    let url = this.dlqUrls.get(queue.queueUrl);
    if (!url) {
      url = lookUpDlq(queue);
      url.catch(() => this.dlqUrls.delete(queue.queueUrl));
      this.dlqUrls.set(queue.queueUrl, url);
    }
    return url;
  }
}

async function lookUpDlq({ sqs, queueUrl }: ConsumerQueue): Promise<string> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }),
  );
  if (!Attributes?.RedrivePolicy) throw new Error(`queue ${queueUrl} has no redrive policy`);
  const arn = (JSON.parse(Attributes.RedrivePolicy) as { deadLetterTargetArn: string }).deadLetterTargetArn;
  const [, , , , account, name] = arn.split(':');
  const { QueueUrl } = await sqs.send(
    new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }),
  );
  if (!QueueUrl) throw new Error(`dead-letter queue ${name} not found`);
  return QueueUrl;
}

function deadLetterAttributes(
  message: Message,
  queueUrl: string,
  reason: string,
): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = { ...message.MessageAttributes };
  const ours: Record<string, string> = {
    [DEAD_LETTER_ATTRIBUTES.reason]: reason.slice(0, 1024),
    [DEAD_LETTER_ATTRIBUTES.sourceQueue]: queueUrl,
    [DEAD_LETTER_ATTRIBUTES.sourceMessageId]: message.MessageId ?? 'unknown',
  };
  for (const [name, value] of Object.entries(ours)) {
    if (Object.keys(attributes).length < MAX_MESSAGE_ATTRIBUTES || name in attributes) {
      attributes[name] = { DataType: 'String', StringValue: value };
    }
  }
  return attributes;
}
