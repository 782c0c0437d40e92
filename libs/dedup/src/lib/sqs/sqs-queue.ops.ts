import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  SendMessageBatchCommand,
} from '@aws-sdk/client-sqs';
import { Injectable, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { type RetryPolicy, withRetry } from '../stores/store.retry';
import { DeadLetterSender } from './dead-letter.sender';
import {
  copyAttributes,
  DEFERRED_FROM_ATTRIBUTE,
  MAX_MESSAGE_ATTRIBUTES,
  RETRY_DEFERRALS_ATTRIBUTE,
} from './message-attributes';
import { NestjsSqsConsumers } from './nestjs-sqs.consumers';
import { RedrivePolicyReader } from './redrive-policy.reader';
import { chunks, isFifoQueue, type SqsQueueRef } from './sqs-queue.ref';
import { clampDelaySeconds, clampVisibilitySeconds } from './visibility';

export type { Redrive } from './redrive-policy.reader';

/** The SQS client and queue URL a consumer polls with. */
export type ConsumerQueue = SqsQueueRef;

/**
 * What the runner needs to know to defer an in-flight duplicate without spending its receives.
 * `maxReceiveCount`: `null` when the queue has no redrive policy (receives never dead-letter),
 * `undefined` when the policy could not be read (assume the worst).
 */
export interface DeferralTarget {
  readonly fifo: boolean;
  readonly maxReceiveCount: number | null | undefined;
  /** The consumer receives every message attribute, so a copy can carry them all. */
  readonly copiesAttributes: boolean;
}

export { DEFERRED_FROM_ATTRIBUTE, RETRY_DEFERRALS_ATTRIBUTE };

/** Deletes of redelivered completed duplicates: a few quick attempts (see `deleteSettled`). */
const DELETE_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 400 };

/**
 * SQS calls on the queue of a @ssut/nestjs-sqs consumer, by consumer name, with that consumer's
 * own client (so an emulator endpoint is honoured): defer, delete, change visibility, dead-letter.
 * The consumer is found through {@link NestjsSqsConsumers}; without one (a plain method, a unit
 * test) visibility changes are skipped and dead-lettering reports failure. The SQS work itself is
 * the adapter's ({@link RedrivePolicyReader}, {@link DeadLetterSender}, the visibility clamps).
 */
@Injectable()
export class SqsQueueOps {
  private readonly logger = new Logger('Idempotency');
  private readonly consumers: NestjsSqsConsumers;
  private readonly redrive = new RedrivePolicyReader();
  private readonly deadLetters = new DeadLetterSender(this.redrive);
  private readonly warnedNoAttributes = new Set<string>();

  constructor(moduleRef: ModuleRef) {
    this.consumers = new NestjsSqsConsumers(moduleRef);
  }

  /** The consumer's client and queue URL, or `undefined` when there is no such consumer. */
  queueOf(consumer: string): ConsumerQueue | undefined {
    return this.consumers.queueOf(consumer);
  }

  /**
   * How an in-flight duplicate of `consumer` can be deferred (`undefined`: not an SQS consumer).
   * The redrive policy is read once per queue and {@link REDRIVE_TTL_MS}.
   */
  async deferralTarget(consumer: string): Promise<DeferralTarget | undefined> {
    const queue = this.queueOf(consumer);
    if (!queue) return undefined;
    const fifo = isFifoQueue(queue.queueUrl);
    const maxReceiveCount = await this.redrive.policyOf(queue).then(
      (policy) => (policy ? policy.maxReceiveCount : null),
      () => undefined,
    );
    const copiesAttributes = this.consumers.receivesAllAttributes(consumer);
    if (!copiesAttributes && !fifo && maxReceiveCount !== null && !this.warnedNoAttributes.has(consumer)) {
      this.warnedNoAttributes.add(consumer);
      this.logger.warn({
        msg: "in-flight duplicates are deferred by visibility and spend receives: the consumer does not receive all message attributes (messageAttributeNames: ['All']), so a copy would lose them",
        consumer,
      });
    }
    return { fifo, maxReceiveCount, copiesAttributes };
  }

  /**
   * Sends a copy of each message to its own queue, delayed by `delaySeconds` (≤ 900), tagged with
   * {@link DEFERRED_FROM_ATTRIBUTE}. With `retryDeferrals` (a retry the handler asked for), the
   * copy carries that count as {@link RETRY_DEFERRALS_ATTRIBUTE}; a message with no room left for
   * it under SQS's attribute cap is not copied (an uncounted retry could come back forever).
   * Returns the messages whose copy was sent: only those may be acknowledged (deleted); the rest
   * must be deferred some other way. Standard queues only.
   */
  async resend(
    consumer: string,
    messages: readonly Message[],
    delaySeconds: number,
    retryDeferrals?: number,
  ): Promise<Set<Message>> {
    const sent = new Set<Message>();
    const queue = this.queueOf(consumer);
    if (!queue || messages.length === 0) return sent;
    const delay = clampDelaySeconds(delaySeconds);
    const what = retryDeferrals === undefined ? 'in-flight duplicate' : 'message to retry';
    const copies = messages.flatMap((message) => {
      const attributes = deferredAttributes(message, retryDeferrals);
      if (attributes) return [{ message, attributes }];
      this.logger.warn({
        msg: `${what} not re-sent: no room for the ${RETRY_DEFERRALS_ATTRIBUTE} attribute under SQS's cap of ${MAX_MESSAGE_ATTRIBUTES}`,
        consumer,
        messageId: message.MessageId,
      });
      return [];
    });
    for (const batch of chunks(copies)) {
      try {
        const { Successful, Failed } = await queue.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queue.queueUrl,
            Entries: batch.map(({ message, attributes }, i) => ({
              Id: String(i),
              MessageBody: message.Body ?? '',
              MessageAttributes: attributes,
              DelaySeconds: delay,
            })),
          }),
        );
        for (const entry of Successful ?? []) {
          const message = batch[Number(entry.Id)]?.message;
          if (!message) continue;
          sent.add(message);
          this.logger.log({
            msg: `${what} re-sent`,
            consumer,
            messageId: message.MessageId,
            copyMessageId: entry.MessageId,
            delaySeconds: delay,
            ...(retryDeferrals === undefined ? {} : { retryDeferrals }),
          });
        }
        for (const failure of Failed ?? []) {
          this.logger.warn({
            msg: `${what} not re-sent`,
            consumer,
            messageId: batch[Number(failure.Id)]?.message.MessageId,
            code: failure.Code,
          });
        }
      } catch (error) {
        this.logger.warn({
          msg: `${what} not re-sent`,
          consumer,
          error: (error as Error).message,
        });
      }
    }
    return sent;
  }

  /**
   * Deletes messages whose work is done (duplicates of a completed key), with a few retries of
   * the call and of entries SQS reports failed. sqs-consumer deletes an acknowledged message once
   * and gives up: a redelivered duplicate shows that its delete already failed, and every receive
   * counts toward `maxReceiveCount`. Best effort: failures are logged, not thrown; the consumer's
   * own delete still follows (deleting twice is harmless).
   */
  async deleteSettled(consumer: string, messages: readonly Message[]): Promise<void> {
    const queue = this.queueOf(consumer);
    const held = messages.filter((message) => message.ReceiptHandle);
    if (!queue || held.length === 0) return;
    for (const batch of chunks(held)) {
      let pending = batch;
      try {
        await withRetry(
          DELETE_RETRY,
          () => true,
          async () => {
            const { Failed = [] } = await queue.sqs.send(
              new DeleteMessageBatchCommand({
                QueueUrl: queue.queueUrl,
                Entries: pending.map((message, i) => ({
                  Id: String(i),
                  ReceiptHandle: message.ReceiptHandle,
                })),
              }),
            );
            pending = Failed.map((failure) => pending[Number(failure.Id)]).filter(
              (message): message is Message => message !== undefined,
            );
            if (pending.length > 0) throw new Error(`${pending.length} deletes failed`);
          },
        );
      } catch (error) {
        this.logger.warn({
          msg: 'delete of a settled duplicate failed',
          consumer,
          error: (error as Error).message,
        });
      }
    }
  }

  /** Sets the visibility timeout of messages (best effort: failures are logged, not thrown). */
  async changeVisibility(consumer: string, messages: readonly Message[], seconds: number): Promise<void> {
    const queue = this.queueOf(consumer);
    const held = messages.filter((message) => message.ReceiptHandle && message.MessageId);
    if (!queue || held.length === 0) return;
    const timeout = clampVisibilitySeconds(seconds);
    for (const batch of chunks(held)) {
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
   * policy), each tagged with its reason (see `deadLetterAttributes` for what survives SQS's
   * 10-attribute cap). Returns the messages that were sent; the caller acknowledges only those,
   * the rest stay with SQS redrive.
   */
  async deadLetter(
    consumer: string,
    entries: readonly { message: Message; reason: string }[],
  ): Promise<Set<Message>> {
    const queue = this.queueOf(consumer);
    if (!queue || entries.length === 0) return new Set();
    try {
      const { sent, failed } = await this.deadLetters.send(queue, entries);
      if (failed.length > 0)
        this.logger.error({
          msg: 'dead-letter send failed',
          consumer,
          messageIds: failed.map(({ message }) => message.MessageId),
          error: failed[0]?.error,
        });
      return sent;
    } catch (error) {
      this.logger.error({
        msg: 'cannot dead-letter: no dead-letter queue',
        consumer,
        error: (error as Error).message,
      });
      return new Set();
    }
  }
}

/**
 * The copy's attributes: the message's own (as received), where it was first deferred from, and
 * with `retryDeferrals` that count. `undefined` when the count does not fit under SQS's cap.
 */
function deferredAttributes(
  message: Message,
  retryDeferrals?: number,
): Record<string, MessageAttributeValue> | undefined {
  const attributes = copyAttributes(message);
  if (retryDeferrals !== undefined) {
    if (
      !(RETRY_DEFERRALS_ATTRIBUTE in attributes) &&
      Object.keys(attributes).length >= MAX_MESSAGE_ATTRIBUTES
    )
      return undefined;
    attributes[RETRY_DEFERRALS_ATTRIBUTE] = { DataType: 'Number', StringValue: String(retryDeferrals) };
  }
  const origin = attributes[DEFERRED_FROM_ATTRIBUTE]?.StringValue ?? message.MessageId;
  // At SQS's cap the copy goes without the tag: its cause is then reported like any other message's.
  if (
    origin &&
    (DEFERRED_FROM_ATTRIBUTE in attributes || Object.keys(attributes).length < MAX_MESSAGE_ATTRIBUTES)
  )
    attributes[DEFERRED_FROM_ATTRIBUTE] = { DataType: 'String', StringValue: origin };
  return attributes;
}
