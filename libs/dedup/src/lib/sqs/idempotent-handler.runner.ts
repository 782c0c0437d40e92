import type { Message } from '@aws-sdk/client-sqs';
import { Logger } from '@nestjs/common';
import type { EntityManager } from 'typeorm';
import {
  DuplicateInFlightError,
  MissingIdempotencyKeyError,
  PayloadMismatchError,
  RetryAfterError,
  StaleClaimError,
} from '../dedup.errors';
import type { DedupCounter, DedupMetrics, DuplicateCause } from '../dedup-metrics.service';
import type { IdempotencyKeyFn } from '../idempotency-key.extractor';
import { messageIdOf, resolveIdempotencyKey } from '../idempotency-key.extractor';
import type { PayloadMismatchPolicy } from '../dedup.types';
import type { HandlerSettings } from '../engine/dedup.settings';
import type { ExecOutcome, IdempotencyEngine, ResolvedRunOptions } from '../engine/engine.types';
import { payloadFingerprint } from '../payload.fingerprint';
import { ackList, acknowledgedInBatch, isAcknowledged, type KeyedGroup, planBatch } from './batch.planner';
import { takeRetryLater } from '../retry-later';
import { DEFERRED_FROM_ATTRIBUTE, receiveCountOf, retryDeferralsOf } from './message-attributes';
import type { QueueOps } from './queue-ops.lazy';
import type { DeferralTarget } from './sqs-queue.ops';

/** How many leases a heartbeat keeps a message being handled invisible for (see holdVisibility). */
const HELD_VISIBILITY_LEASES = 2;

/** What `@Idempotent` resolved at decoration time. @internal */
export interface IdempotentSpec {
  readonly scope: string;
  readonly key?: IdempotencyKeyFn<never>;
  readonly ttlMs?: number;
  readonly leaseMs?: number;
  readonly transactional?: boolean;
  readonly onPayloadMismatch?: PayloadMismatchPolicy;
}

/** Messages of one key that were turned away as duplicates, and as which. */
interface TurnedAway {
  readonly key: string;
  readonly counter: Extract<DedupCounter, 'duplicate-completed' | 'duplicate-in-flight'>;
  readonly messages: readonly Message[];
  /** The MessageId the key's record was made by, when known without a read (an in-batch leader's). */
  readonly holderMessageId?: string;
}

/** One call of a decorated method. @internal */
export interface IdempotentCall {
  readonly spec: IdempotentSpec;
  /** `@SqsMessageHandler` metadata when the method is an SQS handler. */
  readonly handler?: { readonly name: string; readonly batch?: boolean };
  readonly thisArg: unknown;
  readonly original: (...args: unknown[]) => unknown;
  readonly args: readonly unknown[];
}

/**
 * What `@Idempotent` does per call: SQS single handlers, SQS batch handlers (partial
 * acknowledgement), and plain methods (`IdempotencyEngine.run`). @internal
 */
export class IdempotentHandlerRunner {
  private readonly logger = new Logger('Idempotency');

  constructor(
    private readonly engine: IdempotencyEngine,
    private readonly queueOps: QueueOps,
    private readonly metrics: DedupMetrics,
    private readonly settings: HandlerSettings,
  ) {}

  /** Entry point of `@Idempotent` wrappers. */
  invoke(call: IdempotentCall): Promise<unknown> {
    if (!this.settings.enabled)
      return Promise.resolve().then(() => call.original.apply(call.thisArg, [...call.args]));
    if (call.handler?.batch) return this.batch(call, call.handler.name);
    if (call.handler) return this.single(call, call.handler.name);
    return this.plain(call);
  }

  /** A plain method: key from the first argument, result stored and returned to duplicates. */
  private async plain(call: IdempotentCall): Promise<unknown> {
    const [first] = call.args;
    const { spec } = call;
    let key: string;
    try {
      key = resolveIdempotencyKey(first, spec.scope, spec.key as IdempotencyKeyFn<unknown> | undefined);
    } catch (error) {
      if (error instanceof MissingIdempotencyKeyError) this.noteMissing(error);
      throw error;
    }
    return this.engine.run(key, (context) => this.callOriginal(call, call.args, context.manager), {
      scope: spec.scope,
      ttlMs: spec.ttlMs,
      leaseMs: spec.leaseMs,
      transactional: spec.transactional,
      onPayloadMismatch: spec.onPayloadMismatch,
      messageId: messageIdOf(first),
      payload: first,
    });
  }

  /**
   * sqs-consumer `handleMessage`: completed duplicate → returns `undefined` (deleted); in flight →
   * defers the message to the end of the lease (see {@link inFlightDeferral}): re-sent as a delayed
   * copy → returns `undefined` (the original is deleted), else its visibility is changed and
   * DuplicateInFlightError thrown (kept); fresh → runs and returns the handler's result (its
   * acknowledgement decides complete vs release).
   */
  private async single(call: IdempotentCall, consumer: string): Promise<unknown> {
    const message = call.args[0] as Message;
    const opts = this.handlerOptions(call);
    let key: string;
    try {
      key = resolveIdempotencyKey(
        message,
        opts.scope,
        call.spec.key as IdempotencyKeyFn<Message> | undefined,
      );
    } catch (error) {
      if (!(error instanceof MissingIdempotencyKeyError)) throw error;
      const sent = await this.deadLetterMissing(consumer, [{ message, error }]);
      if (sent.has(message)) return undefined;
      throw error;
    }
    let returned: unknown;
    let outcome: ExecOutcome | undefined;
    try {
      [outcome] = await this.engine.execute(
        [
          {
            key,
            messageId: message.MessageId,
            payloadHash: payloadFingerprint(message.Body),
            payload: message,
          },
        ],
        { ...opts, callerCountsDuplicates: true },
        async (_fresh, context) => {
          returned = await this.callOriginal(call, call.args, context.manager);
          return { acked: [isAcknowledged(returned, message)] };
        },
        { onHeartbeat: (fresh) => this.holdVisibility(consumer, fresh, opts.leaseMs) },
      );
    } catch (error) {
      // The handler asked to come back later: wait without spending a receive (a bounded number of times).
      const wait = error instanceof RetryAfterError ? error.retryAfterMs : undefined;
      if (wait !== undefined && Number.isFinite(wait) && wait >= 0) {
        if (await this.deferRetry(consumer, opts.scope, key, message, wait)) return undefined;
      }
      throw error;
    }
    const counter = outcome && duplicateCounter(outcome);
    if (counter) await this.countDuplicates(opts.scope, [{ key, counter, messages: [message] }]);
    if (outcome && refusesPayload(outcome, opts)) {
      const sent = await this.deadLetterMismatched(consumer, opts.scope, key, [message]);
      if (sent.has(message)) return undefined;
      throw new PayloadMismatchError(opts.scope, key, message.MessageId);
    }
    switch (outcome?.status) {
      case 'executed':
      case 'not-acked':
        return returned;
      case 'completed':
        if (isRedelivered(message)) await this.queueOps.deleteSettled(consumer, [message]);
        return undefined;
      case 'in-flight': {
        const resent = await this.deferInFlight(consumer, [message], outcome.retryAfterMs);
        if (resent.has(message)) return undefined;
        throw new DuplicateInFlightError(opts.scope, key, outcome.retryAfterMs, message.MessageId);
      }
      default:
        throw new StaleClaimError(opts.scope, key, message.MessageId);
    }
  }

  /**
   * sqs-consumer `handleMessageBatch`: one claim round trip for the whole batch, in-batch
   * duplicates collapsed onto their first message, only fresh messages passed to the handler.
   * Returns the acknowledgement list: completed duplicates, fresh messages the handler
   * acknowledged and that completed, their in-batch duplicates, and dead-lettered keyless ones.
   */
  private async batch(call: IdempotentCall, consumer: string): Promise<Message[]> {
    const messages = call.args[0] as Message[];
    const opts = this.handlerOptions(call);
    const keyFn = call.spec.key as IdempotencyKeyFn<Message> | undefined;
    const plan = planBatch(messages, (message) => resolveIdempotencyKey(message, opts.scope, keyFn));
    const waiting = plan.missing.map((entry) => entry.message);
    const hashes = plan.groups.map((group) => payloadFingerprint(group.leader.Body));
    const outcomes =
      plan.groups.length === 0
        ? []
        : await this.engine.execute<KeyedGroup<Message>>(
            plan.groups.map((group, i) => ({
              key: group.key,
              messageId: group.leader.MessageId,
              payloadHash: hashes[i],
              payload: group,
            })),
            { ...opts, callerCountsDuplicates: true },
            async (groups, context) => {
              const leaders = groups.map((group) => group.leader);
              const returned = await this.callOriginal(
                call,
                [leaders, ...call.args.slice(1)],
                context.manager,
              );
              return { acked: acknowledgedInBatch(returned, leaders) };
            },
            {
              // The whole batch: duplicates and keyless messages are settled only after the
              // handler returns, and must not reappear to another consumer meanwhile.
              onHeartbeat: () => this.holdVisibility(consumer, messages, opts.leaseMs),
            },
          );
    await this.countDuplicates(
      opts.scope,
      plan.groups.flatMap((group, i): TurnedAway[] => {
        const outcome = outcomes[i];
        const counter = outcome && duplicateCounter(outcome);
        if (counter) return [{ key: group.key, counter, messages: [group.leader, ...group.followers] }];
        // Followers of a leader that ran ride on its completion: duplicates of a now completed key.
        if (outcome?.status === 'executed' && group.followers.length > 0) {
          return [
            {
              key: group.key,
              counter: 'duplicate-completed',
              messages: group.followers,
              holderMessageId: group.leader.MessageId,
            },
          ];
        }
        return [];
      }),
    );

    const ack: Message[] = [];
    const deferrals: Promise<Set<Message>>[] = [];
    const refused: { key: string; messages: Message[] }[] = [];
    const redelivered: Message[] = [];
    plan.groups.forEach((group, i) => {
      const outcome = outcomes[i];
      // An in-batch repeat with another body than its leader's is a payload mismatch of its own.
      const strays = group.followers.filter((message) => payloadFingerprint(message.Body) !== hashes[i]);
      if (strays.length > 0) this.noteStrayPayloads(opts, group.key, strays);
      const refuseStrays = strays.length > 0 && opts.onPayloadMismatch === 'dead-letter';
      if (refuseStrays) refused.push({ key: group.key, messages: strays });
      const all = [
        group.leader,
        ...group.followers.filter((message) => !refuseStrays || !strays.includes(message)),
      ];
      // A refused key's messages all share it: they go to the DLQ together.
      if (outcome && refusesPayload(outcome, opts)) refused.push({ key: group.key, messages: all });
      else if (outcome?.status === 'executed' || outcome?.status === 'completed') {
        ack.push(...all);
        if (outcome.status === 'completed') redelivered.push(...all.filter(isRedelivered));
      } else if (outcome?.status === 'in-flight')
        deferrals.push(this.deferInFlight(consumer, all, outcome.retryAfterMs));
      else if (outcome?.status === 'not-acked') {
        // The handler asked for the leader to come back later (retryLater): its in-batch repeats
        // go with it, acknowledged once its copy stands in for them.
        const wait = takeRetryLater(group.leader);
        if (wait !== undefined)
          deferrals.push(
            this.deferRetry(consumer, opts.scope, group.key, group.leader, wait).then(
              (resent) => new Set(resent ? all : []),
            ),
          );
      }
      if (outcome?.status !== 'not-acked') takeRetryLater(group.leader);
    });
    if (redelivered.length > 0) await this.queueOps.deleteSettled(consumer, redelivered);
    // Re-sent in-flight duplicates and retries are acknowledged: their delayed copies stand in for them.
    for (const resent of await Promise.all(deferrals)) ack.push(...resent);
    for (const { key, messages: mismatched } of refused)
      ack.push(...(await this.deadLetterMismatched(consumer, opts.scope, key, mismatched)));
    if (plan.missing.length > 0) {
      const sent = await this.deadLetterMissing(consumer, plan.missing);
      ack.push(...waiting.filter((message) => sent.has(message)));
    }
    return ackList(ack);
  }

  private handlerOptions(call: IdempotentCall): ResolvedRunOptions {
    const { spec } = call;
    const opts = this.engine.resolve({
      scope: spec.scope,
      ttlMs: spec.ttlMs,
      leaseMs: spec.leaseMs,
      transactional: spec.transactional,
      onPayloadMismatch: spec.onPayloadMismatch,
    });
    // An SQS handler's return value is an acknowledgement for sqs-consumer, not a result to replay.
    return { ...opts, storeResult: false };
  }

  private async callOriginal(
    call: IdempotentCall,
    args: readonly unknown[],
    manager?: EntityManager,
  ): Promise<unknown> {
    return call.original.apply(call.thisArg, manager ? [...args, manager] : [...args]);
  }

  /**
   * Keeps messages invisible while their handler runs, for {@link HELD_VISIBILITY_LEASES} leases
   * from this heartbeat: beats come every third of a lease only while the store answers at once; a
   * slow or failing lease extension (up to `redisTimeoutMs`, or a Postgres round trip) delays the
   * next beat, and the message must not reappear meanwhile (another consumer would receive it while
   * it is being handled). The price: after a crash, the message reappears up to one lease later.
   */
  private async holdVisibility(
    consumer: string,
    messages: readonly Message[],
    leaseMs: number,
  ): Promise<void> {
    if (this.settings.manageVisibility)
      await this.queueOps.changeVisibility(consumer, messages, (leaseMs * HELD_VISIBILITY_LEASES) / 1000);
  }

  /**
   * Lets in-flight duplicates reappear just after the holder's lease ends, not before, without
   * spending the receives their redrive policy allows ({@link inFlightDeferral}). Returns the
   * messages re-sent as delayed copies: the caller acknowledges those (only after the copy was
   * sent); the others got a visibility change (also when their copy could not be sent).
   */
  private async deferInFlight(
    consumer: string,
    messages: readonly Message[],
    retryAfterMs: number,
    retryDeferrals?: number,
  ): Promise<Set<Message>> {
    if (!this.settings.manageVisibility) return new Set();
    const seconds = deferralSeconds(retryAfterMs);
    const target = await this.queueOps.deferralTarget(consumer);
    const toResend = target && inFlightDeferral(target) === 'resend' ? messages : [];
    const resent =
      toResend.length > 0
        ? await this.queueOps.resend(consumer, toResend, seconds, retryDeferrals)
        : new Set<Message>();
    const kept = messages.filter((message) => !resent.has(message));
    if (kept.length > 0) await this.queueOps.changeVisibility(consumer, kept, seconds);
    return resent;
  }

  /**
   * Defers a message whose handler threw `RetryAfterError`: like an in-flight duplicate, counting
   * the copy's retries (attribute `once-retry-deferrals`). Once `maxRetryDeferrals` are spent, only
   * the visibility changes, so each further retry spends a receive and redrive ends the loop in the
   * DLQ. True when a copy stands in for the message (the caller acknowledges it).
   */
  private async deferRetry(
    consumer: string,
    scope: string,
    key: string,
    message: Message,
    retryAfterMs: number,
  ): Promise<boolean> {
    const used = retryDeferralsOf(message);
    if (used < this.settings.maxRetryDeferrals)
      return (await this.deferInFlight(consumer, [message], retryAfterMs, used + 1)).has(message);
    this.logger.warn({
      msg: 'retry deferrals used up: this retry spends a receive',
      consumer,
      scope,
      idempotencyKey: key,
      messageId: message.MessageId,
      retryDeferrals: used,
    });
    if (this.settings.manageVisibility)
      await this.queueOps.changeVisibility(consumer, [message], deferralSeconds(retryAfterMs));
    return false;
  }

  /**
   * Keyless messages are never processed. Policy 'dead-letter': copied to the queue's DLQ now
   * (then acknowledged); the ones that could not be sent, or policy 'throw', stay for SQS redrive.
   */
  private async deadLetterMissing(
    consumer: string,
    missing: readonly { message: Message; error: MissingIdempotencyKeyError }[],
  ): Promise<Set<Message>> {
    for (const { error } of missing) this.noteMissing(error);
    if (this.settings.missingKey !== 'dead-letter') return new Set();
    const sent = await this.queueOps.deadLetter(
      consumer,
      missing.map(({ message, error }) => ({
        message,
        reason: `${error.name}: ${error.reason}`,
      })),
    );
    for (const message of sent) {
      this.logger.warn({
        msg: 'message dead-lettered',
        consumer,
        messageId: message.MessageId,
        reason: 'missing idempotency key',
      });
    }
    return sent;
  }

  private noteStrayPayloads(opts: ResolvedRunOptions, key: string, strays: readonly Message[]): void {
    this.metrics.increment('payload-mismatch', { scope: opts.scope }, strays.length);
    if (opts.onPayloadMismatch === 'ignore') return;
    for (const message of strays) {
      this.logger.warn({
        msg: 'payload mismatch: a repeat of the key in the same batch has another body',
        scope: opts.scope,
        idempotencyKey: key,
        messageId: message.MessageId,
        policy: opts.onPayloadMismatch,
      });
    }
  }

  /**
   * `onPayloadMismatch: 'dead-letter'`: messages whose key was used before for another body go to
   * the queue's DLQ (then acknowledged); those that could not be sent stay for SQS redrive.
   */
  private async deadLetterMismatched(
    consumer: string,
    scope: string,
    key: string,
    messages: readonly Message[],
  ): Promise<Set<Message>> {
    const reason = new PayloadMismatchError(scope, key).message;
    const sent = await this.queueOps.deadLetter(
      consumer,
      messages.map((message) => ({ message, reason: `PayloadMismatchError: ${reason}` })),
    );
    for (const message of messages) {
      this.logger.warn({
        msg: sent.has(message) ? 'message dead-lettered' : 'payload mismatch left to redrive',
        consumer,
        scope,
        idempotencyKey: key,
        messageId: message.MessageId,
        reason: 'payload mismatch',
      });
    }
    return sent;
  }

  /**
   * Counts turned-away messages with their cause (execute() was told `callerCountsDuplicates`, so
   * the engine counted none of them). The record is read only when a message lacks `ApproximateReceiveCount` and
   * someone listens; a failed read leaves the cause out.
   */
  private async countDuplicates(scope: string, turnedAway: readonly TurnedAway[]): Promise<void> {
    for (const { key, counter, messages, holderMessageId } of turnedAway) {
      let recordMessageId: string | null | undefined = holderMessageId;
      if (recordMessageId === undefined && this.metrics.listening && messages.some(lacksReceiveCount)) {
        recordMessageId = await this.engine.get(key, { scope }).then(
          (record) => record?.messageId ?? null,
          () => undefined,
        );
      }
      for (const message of messages) {
        const cause = duplicateCause(message, recordMessageId);
        this.metrics.increment(counter, {
          scope,
          ...(cause ? { cause } : {}),
          ...(message.MessageId ? { messageId: message.MessageId } : {}),
        });
        this.logger.debug({
          msg: 'duplicate cause',
          scope,
          idempotencyKey: key,
          messageId: message.MessageId,
          cause,
        });
      }
    }
  }

  private noteMissing(error: MissingIdempotencyKeyError): void {
    this.metrics.increment('missing-key', { scope: error.scope });
    this.logger.error({
      msg: 'missing idempotency key',
      scope: error.scope,
      messageId: error.messageId,
      reason: error.reason,
    });
  }
}

/** A duplicate whose payload differs from its record's, under `onPayloadMismatch: 'dead-letter'`. */
function refusesPayload(outcome: ExecOutcome, opts: ResolvedRunOptions): boolean {
  return (
    opts.onPayloadMismatch === 'dead-letter' &&
    (outcome.status === 'completed' || outcome.status === 'in-flight') &&
    outcome.payloadMismatch === true
  );
}

/** Whole seconds past `retryAfterMs` (SQS delays and visibility timeouts count in seconds). */
const deferralSeconds = (retryAfterMs: number): number => Math.max(1, Math.ceil(retryAfterMs / 1000) + 1);

function duplicateCounter(outcome: ExecOutcome): TurnedAway['counter'] | undefined {
  if (outcome.status === 'completed') return 'duplicate-completed';
  if (outcome.status === 'in-flight') return 'duplicate-in-flight';
  return undefined;
}

/**
 * How to defer an in-flight duplicate. Every receive counts towards the queue's
 * `maxReceiveCount`, so a duplicate deferred by visibility again and again while a long holder keeps
 * its lease would be dead-lettered, although it is well-formed and needed if the holder fails.
 *
 * - `resend` (a delayed copy, then the original deleted: the copy starts again at receive count 0)
 *   whenever the queue has a redrive policy (or it could not be read). Deferring by visibility only
 *   while receives are to spare was not enough: receives spent on deferrals early leave none for
 *   failed deletes later (seen in chaos at 10,000 users). A copy's delay is capped at SQS's 15
 *   minutes: one that comes back before a longer lease ends is deferred again.
 * - `visibility` (ChangeMessageVisibility; same message, one cheap call) when the queue has no
 *   redrive policy: receives never dead-letter there.
 * - Always `visibility` where a copy cannot stand in for the message: FIFO queues (no per-message
 *   delay, and a copy would lose its place in the group and its deduplication id), and a consumer
 *   that does not receive all message attributes (the copy would lose them). There, give the queue
 *   a `maxReceiveCount` above the longest holder run divided by the lease, plus the retries wanted.
 * @internal
 */
export function inFlightDeferral(target: DeferralTarget): 'visibility' | 'resend' {
  if (target.fifo || !target.copiesAttributes) return 'visibility';
  return target.maxReceiveCount === null ? 'visibility' : 'resend';
}

const lacksReceiveCount = (message: Message): boolean => !Number.isFinite(receiveCountOf(message));

/**
 * A message SQS has handed over before: for a duplicate of a completed key, the delete after its
 * earlier receive failed, and the lib deletes it itself with retries (`deleteSettled`).
 */
const isRedelivered = (message: Message): boolean => receiveCountOf(message) > 1;

/**
 * `redelivery` when SQS has handed this very message over before (receive count above 1, or the
 * record was made by its MessageId), or it is a copy the lib re-sent to defer it (tagged with
 * {@link DEFERRED_FROM_ATTRIBUTE}: the same delivery coming back), else `producer-duplicate`. A first
 * receive (count 1) of an untagged message cannot be the message the record was made by; without a
 * count and a record, the cause is unknown.
 * @internal
 */
export function duplicateCause(
  message: Message,
  recordMessageId: string | null | undefined,
): DuplicateCause | undefined {
  if (receiveCountOf(message) > 1) return 'redelivery';
  if (message.MessageAttributes?.[DEFERRED_FROM_ATTRIBUTE]?.StringValue) return 'redelivery';
  if (message.MessageId !== undefined && message.MessageId === recordMessageId) return 'redelivery';
  if (!lacksReceiveCount(message) || recordMessageId !== undefined) return 'producer-duplicate';
  return undefined;
}
