import { type Message, type MessageAttributeValue, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { DEAD_LETTER_ATTRIBUTES } from '../dedup.constants';
import { copyAttributes, MAX_MESSAGE_ATTRIBUTES } from './message-attributes';
import type { RedrivePolicyReader } from './redrive-policy.reader';
import { chunks, isFifoQueue, type SqsQueueRef } from './sqs-queue.ref';

/** A message to dead-letter and why. */
export interface DeadLetterEntry {
  readonly message: Message;
  readonly reason: string;
}

/** What a dead-lettering did: the messages whose copy reached the DLQ, and the others with the cause. */
export interface DeadLetterOutcome {
  readonly sent: Set<Message>;
  readonly failed: readonly { readonly message: Message; readonly error: string }[];
}

/** Longest reason kept on a dead letter, in characters. */
export const MAX_REASON_LENGTH = 1024;

/** MessageGroupId of a dead letter on a FIFO DLQ when the original carries none. */
export const DEFAULT_DEAD_LETTER_GROUP = 'once-dedup';

const OUR_NAMES: readonly string[] = Object.values(DEAD_LETTER_ATTRIBUTES);

/**
 * The attributes of a dead-lettered copy, within SQS's 10: ours ({@link DEAD_LETTER_ATTRIBUTES}:
 * reason, source queue, source message id) always, then the original's in the order received
 * while places are left (7). Originals beyond those are dropped, as is an original that bears
 * one of our names (ours replace it).
 */
export function deadLetterAttributes(
  message: Message,
  sourceQueueUrl: string,
  reason: string,
): Record<string, MessageAttributeValue> {
  const ours: Record<string, MessageAttributeValue> = {
    [DEAD_LETTER_ATTRIBUTES.reason]: { DataType: 'String', StringValue: reason.slice(0, MAX_REASON_LENGTH) },
    [DEAD_LETTER_ATTRIBUTES.sourceQueue]: { DataType: 'String', StringValue: sourceQueueUrl },
    [DEAD_LETTER_ATTRIBUTES.sourceMessageId]: {
      DataType: 'String',
      StringValue: message.MessageId ?? 'unknown',
    },
  };
  const originals = Object.entries(copyAttributes(message))
    .filter(([name]) => !OUR_NAMES.includes(name))
    .slice(0, MAX_MESSAGE_ATTRIBUTES - OUR_NAMES.length);
  return { ...Object.fromEntries(originals), ...ours };
}

/**
 * Sends copies of messages to their queue's dead-letter queue (named by its redrive policy), in
 * batches of 10. On a FIFO DLQ a copy keeps the original's MessageGroupId (or
 * {@link DEFAULT_DEAD_LETTER_GROUP}) and is deduplicated by the original's MessageId.
 */
export class DeadLetterSender {
  constructor(private readonly redrive: RedrivePolicyReader) {}

  /**
   * Dead-letters `entries` from `queue`. A failed batch is reported in `failed`, not thrown.
   * @throws when the dead-letter queue cannot be found (no or a malformed redrive policy, a failed read).
   */
  async send(queue: SqsQueueRef, entries: readonly DeadLetterEntry[]): Promise<DeadLetterOutcome> {
    const sent = new Set<Message>();
    const failed: { message: Message; error: string }[] = [];
    if (entries.length === 0) return { sent, failed };
    const dlqUrl = await this.redrive.requireDeadLetterUrl(queue);
    const fifo = isFifoQueue(dlqUrl);
    for (const batch of chunks(entries)) {
      try {
        const { Successful = [], Failed = [] } = await queue.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: dlqUrl,
            Entries: batch.map(({ message, reason }, i) => ({
              Id: String(i),
              MessageBody: message.Body ?? '',
              MessageAttributes: deadLetterAttributes(message, queue.queueUrl, reason),
              ...(fifo && {
                MessageGroupId: message.Attributes?.MessageGroupId ?? DEFAULT_DEAD_LETTER_GROUP,
                MessageDeduplicationId: message.MessageId,
              }),
            })),
          }),
        );
        for (const entry of Successful) {
          const done = batch[Number(entry.Id)];
          if (done) sent.add(done.message);
        }
        for (const failure of Failed) {
          const entry = batch[Number(failure.Id)];
          if (entry)
            failed.push({ message: entry.message, error: `${failure.Code}: ${failure.Message ?? ''}` });
        }
      } catch (error) {
        for (const { message } of batch) failed.push({ message, error: (error as Error).message });
      }
    }
    return { sent, failed };
  }
}
