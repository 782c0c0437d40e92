import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
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
import { type RetryPolicy, withRetry } from '../stores/store.retry';

/** The SQS client and queue URL a consumer polls with. */
export interface ConsumerQueue {
  sqs: SQSClient;
  queueUrl: string;
}

// SqsService#getQueueInfo exists at runtime in @ssut/nestjs-sqs 3.0.1 but is typed private.
interface QueueInfoSource {
  getQueueInfo(name: string): ConsumerQueue;
  readonly options?: {
    readonly consumers?: readonly { readonly name: string; readonly messageAttributeNames?: string[] }[];
  };
}

/** A queue's redrive policy as far as deferring in-flight duplicates cares. */
export interface Redrive {
  readonly deadLetterTargetArn: string;
  readonly maxReceiveCount: number;
}

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

/**
 * Message attribute on a copy the lib re-sent to defer an in-flight duplicate: the MessageId of the
 * message first received (kept across repeated deferrals).
 */
export const DEFERRED_FROM_ATTRIBUTE = 'once-deferred-from';

/** Deletes of redelivered completed duplicates: a few quick attempts (see `deleteSettled`). */
const DELETE_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 100, maxDelayMs: 400 };

/** SQS allows 12 hours at most. */
const MAX_VISIBILITY_SECONDS = 43_200;
/** SQS allows a per-message delay of 15 minutes at most. */
const MAX_DELAY_SECONDS = 900;
const MAX_MESSAGE_ATTRIBUTES = 10;
/** A queue's redrive policy is read again after this long (it can be changed at runtime). */
const REDRIVE_TTL_MS = 5 * 60_000;

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
  private readonly redrives = new Map<
    string,
    { readonly at: number; readonly policy: Promise<Redrive | null> }
  >();
  private readonly warnedNoAttributes = new Set<string>();

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

  /**
   * How an in-flight duplicate of `consumer` can be deferred (`undefined`: not an SQS consumer).
   * The redrive policy is read once per queue and {@link REDRIVE_TTL_MS}.
   */
  async deferralTarget(consumer: string): Promise<DeferralTarget | undefined> {
    const queue = this.queueOf(consumer);
    if (!queue) return undefined;
    const fifo = queue.queueUrl.endsWith('.fifo');
    const maxReceiveCount = await this.redriveOf(queue).then(
      (policy) => (policy ? policy.maxReceiveCount : null),
      () => undefined,
    );
    const names = this.sqsService?.options?.consumers?.find(
      (c) => c.name === consumer,
    )?.messageAttributeNames;
    const copiesAttributes = !!names?.some((name) => name === 'All' || name === '.*');
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
   * {@link DEFERRED_FROM_ATTRIBUTE}. Returns the messages whose copy was sent: only those may be
   * acknowledged (deleted); the rest must be deferred some other way. Standard queues only.
   */
  async resend(consumer: string, messages: readonly Message[], delaySeconds: number): Promise<Set<Message>> {
    const sent = new Set<Message>();
    const queue = this.queueOf(consumer);
    if (!queue || messages.length === 0) return sent;
    const delay = Math.min(MAX_DELAY_SECONDS, Math.max(0, Math.ceil(delaySeconds)));
    for (const batch of chunks(messages, 10)) {
      try {
        const { Successful, Failed } = await queue.sqs.send(
          new SendMessageBatchCommand({
            QueueUrl: queue.queueUrl,
            Entries: batch.map((message, i) => ({
              Id: String(i),
              MessageBody: message.Body ?? '',
              MessageAttributes: deferredAttributes(message),
              DelaySeconds: delay,
            })),
          }),
        );
        for (const entry of Successful ?? []) {
          const message = batch[Number(entry.Id)];
          if (!message) continue;
          sent.add(message);
          this.logger.log({
            msg: 'in-flight duplicate re-sent',
            consumer,
            messageId: message.MessageId,
            copyMessageId: entry.MessageId,
            delaySeconds: delay,
          });
        }
        for (const failure of Failed ?? []) {
          this.logger.warn({
            msg: 'in-flight duplicate not re-sent',
            consumer,
            messageId: batch[Number(failure.Id)]?.MessageId,
            code: failure.Code,
          });
        }
      } catch (error) {
        this.logger.warn({
          msg: 'in-flight duplicate not re-sent',
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
    for (const batch of chunks(held, 10)) {
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
      url = this.redriveOf(queue).then((policy) => {
        if (!policy) throw new Error(`queue ${queue.queueUrl} has no redrive policy`);
        return lookUpDlq(queue.sqs, policy.deadLetterTargetArn);
      });
      url.catch(() => this.dlqUrls.delete(queue.queueUrl));
      this.dlqUrls.set(queue.queueUrl, url);
    }
    return url;
  }

  /** The queue's redrive policy (`null`: none), cached; a failed read is not cached. */
  private redriveOf(queue: ConsumerQueue): Promise<Redrive | null> {
    const cached = this.redrives.get(queue.queueUrl);
    if (cached && Date.now() - cached.at < REDRIVE_TTL_MS) return cached.policy;
    const policy = readRedrive(queue);
    policy.catch(() => this.redrives.delete(queue.queueUrl));
    this.redrives.set(queue.queueUrl, { at: Date.now(), policy });
    return policy;
  }
}

async function readRedrive({ sqs, queueUrl }: ConsumerQueue): Promise<Redrive | null> {
  const { Attributes } = await sqs.send(
    new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['RedrivePolicy'] }),
  );
  if (!Attributes?.RedrivePolicy) return null;
  const policy = JSON.parse(Attributes.RedrivePolicy) as {
    deadLetterTargetArn?: string;
    maxReceiveCount?: number | string;
  };
  const maxReceiveCount = Number(policy.maxReceiveCount);
  if (!policy.deadLetterTargetArn || !Number.isFinite(maxReceiveCount))
    throw new Error(`queue ${queueUrl} has a malformed redrive policy`);
  return { deadLetterTargetArn: policy.deadLetterTargetArn, maxReceiveCount };
}

async function lookUpDlq(sqs: SQSClient, arn: string): Promise<string> {
  const [, , , , account, name] = arn.split(':');
  const { QueueUrl } = await sqs.send(
    new GetQueueUrlCommand({ QueueName: name, QueueOwnerAWSAccountId: account }),
  );
  if (!QueueUrl) throw new Error(`dead-letter queue ${name} not found`);
  return QueueUrl;
}

/** The copy's attributes: the message's own (as received) and where it was first deferred from. */
function deferredAttributes(message: Message): Record<string, MessageAttributeValue> {
  const attributes: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(message.MessageAttributes ?? {})) {
    attributes[name] = {
      DataType: value.DataType,
      ...(value.StringValue !== undefined && { StringValue: value.StringValue }),
      ...(value.BinaryValue !== undefined && { BinaryValue: value.BinaryValue }),
    };
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
