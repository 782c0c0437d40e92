import type { Message } from '@aws-sdk/client-sqs';
import type { ModuleRef } from '@nestjs/core';
import { loadNestjsSqs } from './nestjs-sqs.consumers';
import type { ConsumerQueue, DeferralTarget, SqsQueueOps } from './sqs-queue.ops';

/** The SQS operations the `@Idempotent` runner uses. */
export type QueueOps = Pick<
  SqsQueueOps,
  'queueOf' | 'deferralTarget' | 'resend' | 'deleteSettled' | 'changeVisibility' | 'deadLetter'
>;

/**
 * {@link SqsQueueOps}, loaded on first use. The adapter imports `@aws-sdk/client-sqs`, an optional
 * peer: an app without @ssut/nestjs-sqs has no SQS consumer, so every call answers as
 * SqsQueueOps does for an unknown consumer (nothing to defer, change or dead-letter) and the SDK is
 * never required. A Redis-only app that calls `IdempotencyService.run` installs no SQS packages.
 */
export class LazyQueueOps implements QueueOps {
  private adapter?: SqsQueueOps | null;

  constructor(private readonly moduleRef: ModuleRef) {}

  queueOf(consumer: string): ConsumerQueue | undefined {
    return this.ops()?.queueOf(consumer);
  }

  async deferralTarget(consumer: string): Promise<DeferralTarget | undefined> {
    return this.ops()?.deferralTarget(consumer);
  }

  async resend(
    consumer: string,
    messages: readonly Message[],
    delaySeconds: number,
    retryDeferrals?: number,
  ): Promise<Set<Message>> {
    return (await this.ops()?.resend(consumer, messages, delaySeconds, retryDeferrals)) ?? new Set();
  }

  async deleteSettled(consumer: string, messages: readonly Message[]): Promise<void> {
    await this.ops()?.deleteSettled(consumer, messages);
  }

  async changeVisibility(consumer: string, messages: readonly Message[], seconds: number): Promise<void> {
    await this.ops()?.changeVisibility(consumer, messages, seconds);
  }

  async deadLetter(
    consumer: string,
    entries: readonly { message: Message; reason: string }[],
  ): Promise<Set<Message>> {
    return (await this.ops()?.deadLetter(consumer, entries)) ?? new Set();
  }

  private ops(): SqsQueueOps | undefined {
    if (this.adapter === undefined) {
      if (!loadNestjsSqs()) this.adapter = null;
      else {
        // Required here, not imported: the adapter (and the SQS SDK) load only where SQS is in use.
        const { SqsQueueOps } = require('./sqs-queue.ops') as typeof import('./sqs-queue.ops');
        this.adapter = new SqsQueueOps(this.moduleRef);
      }
    }
    return this.adapter ?? undefined;
  }
}
