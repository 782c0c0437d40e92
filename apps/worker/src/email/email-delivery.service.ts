import { Inject, Injectable, Logger } from '@nestjs/common';
import { RetryAfterError } from '@once/dedup';
import { AdminErrorReporter, MailLedgerService, MailSendResult, MailService } from '@once/mail';
import { APP_CONFIG, type DedupEnv, METRICS_REGISTRY, type SendEmailMessage } from '@once/platform';
import { Counter, type Registry } from 'prom-client';
import { EMAIL_CONSUMER } from '../sqs/worker-queues';
import { SubscriptionReader } from './subscription.reader';

/**
 * Thrown to leave a message on the queue. With `retryAfterMs` (when the first send's in-flight
 * window ends, or a retry's backoff) `@Idempotent` defers the message until then without spending a
 * receive, `maxRetryDeferrals` times at most; unset: SQS redelivers it after the queue's own
 * visibility timeout.
 */
export class RetryLaterError extends RetryAfterError {
  constructor(
    message: string,
    readonly idempotencyKey: string,
    retryAfterMs?: number,
  ) {
    super(message, retryAfterMs);
  }
}

/**
 * Reported to the admins (never thrown) when a send-email message is acknowledged although its
 * email was not sent (`failed`, not retryable) or may not have been (`unknown`). The message names
 * only the outcome and the SES error's name, so one cause (a bad address, an SES outage) maps to
 * one fingerprint and is mailed once per throttling window; the details carry the rest.
 */
export class EmailLeftToOperatorError extends Error {
  constructor(
    message: string,
    readonly idempotencyKey: string,
  ) {
    super(message);
    this.name = 'EmailLeftToOperatorError';
  }
}

/**
 * How long a send SES certainly refused (rate limiter or ledger down, throttled, rate limited)
 * waits before its next attempt: min(60 s, 2^(attempts-1) s), half of it random. `@Idempotent`
 * defers the message that long by a delayed copy (at most its `maxRetryDeferrals` times), so a
 * short outage spends none of the receives the queue's redrive policy allows.
 */
function retryBackoffMs(attempts: number): number {
  const cap = Math.min(60_000, 1000 * 2 ** Math.min(Math.max(attempts, 1) - 1, 16));
  return Math.round(cap / 2 + (Math.random() * cap) / 2);
}

/** `MessageRejected` from `MessageRejected: Email address is not verified… (HTTP 400)`. */
function errorName(description: string | undefined): string {
  return /^([A-Za-z][\w.]*):/.exec(description ?? '')?.[1] ?? 'no SES error recorded';
}

/**
 * Sends a queued email through the mail ledger, so a redelivered or duplicated message never
 * reaches SES twice, and decides what the SQS message becomes:
 * - addressed to a user (`userId`) who is no longer subscribed: not sent, acknowledged and counted
 *   as skipped (`once_emails_skipped_total{reason="unsubscribed"}`), never failed: an email a
 *   fan-out enqueued before the user unsubscribed (a crashed fan-out rerun later) stays unsent;
 * - sent, duplicate of a sent email, suppressed: acknowledged;
 * - the first send still in flight elsewhere: deferred until its window ends; SES certainly did
 *   not take it (retryable): retried after a backoff (`retryBackoffMs`), both without spending
 *   receives up to `maxRetryDeferrals` times, then `maxReceiveCount` bounds it, then the DLQ;
 * - failed for good or `unknown` (SES may have accepted it): acknowledged, reported to the admins
 *   (`AdminErrorReporter`) and left to an operator in the ledger's admin API, never resent blindly.
 *
 * With @Idempotent on, this runs only while the worker holds the message's key, so whoever left
 * the key's row pending without calling SES is gone: the row is taken over and sent at once.
 */
@Injectable()
export class EmailDeliveryService {
  private readonly logger = new Logger(EmailDeliveryService.name);
  private readonly skipped: Counter;

  constructor(
    private readonly mail: MailService,
    private readonly ledger: MailLedgerService,
    private readonly reporter: AdminErrorReporter,
    @Inject(APP_CONFIG) private readonly config: DedupEnv,
    private readonly subscriptions: SubscriptionReader,
    @Inject(METRICS_REGISTRY) metrics: Registry,
  ) {
    this.skipped = new Counter({
      name: 'once_emails_skipped_total',
      help: 'Queued emails not sent on purpose, by reason (unsubscribed: the user left after the fan-out)',
      labelNames: ['reason'],
      registers: [metrics],
    });
  }

  /** `firstDelivery`: the message is received for the first time (`isFirstDelivery`), so its key is most likely new. */
  async deliver(
    email: SendEmailMessage,
    messageId: string | undefined,
    firstDelivery = false,
  ): Promise<MailSendResult> {
    const fields = { idempotencyKey: email.eventId, messageId };
    if (email.userId !== undefined && !(await this.subscriptions.isSubscribed(email.userId))) {
      this.skipped.inc({ reason: 'unsubscribed' });
      this.logger.log({ msg: 'email skipped: recipient unsubscribed', ...fields, userId: email.userId });
      return {
        status: 'suppressed',
        idempotencyKey: email.eventId,
        ledgerStatus: 'suppressed',
        suppressedRecipients: [email.to],
        attempts: 0,
      };
    }
    let result = await this.mail.send(
      {
        idempotencyKey: email.eventId,
        to: email.to,
        subject: email.subject,
        text: email.text,
        listUnsubscribe: {
          mailto: `mailto:unsubscribe@once.local?subject=unsubscribe%20${encodeURIComponent(email.userId ?? email.to)}`,
        },
      },
      { takeOverUnsent: this.config.DEDUP_ENABLED, likelyNew: firstDelivery },
    );
    if (result.status === 'duplicate' && result.inFlight) {
      throw new RetryLaterError(
        'the first send of this key is still in flight',
        email.eventId,
        result.retryAfterMs,
      );
    }
    if (result.status === 'duplicate' && result.ledgerStatus === 'failed') {
      const entry = await this.ledger.get(email.eventId);
      if (entry?.retryable) result = await this.ledger.resend(email.eventId, { actor: 'worker:redelivery' });
    }
    if (result.status === 'failed' && result.retryable) {
      throw new RetryLaterError(
        `SES did not accept the email: ${result.error ?? 'unknown error'}`,
        email.eventId,
        retryBackoffMs(result.attempts),
      );
    }
    if (result.status === 'duplicate' && result.inFlight) {
      throw new RetryLaterError('a resend of this key is in flight', email.eventId, result.retryAfterMs);
    }
    const log = {
      msg: `email ${result.status}`,
      ...fields,
      ledgerStatus: result.ledgerStatus,
      sesMessageId: result.sesMessageId,
    };
    const unsent =
      result.status === 'failed' ||
      result.status === 'unknown' ||
      (result.status === 'duplicate' &&
        (result.ledgerStatus === 'failed' || result.ledgerStatus === 'unknown'));
    if (unsent) {
      this.logger.error({
        ...log,
        msg: `${log.msg}; left to an operator (GET /admin/mail?status=${result.ledgerStatus})`,
        err: result.error,
      });
      this.reportToAdmins(result, messageId);
    } else this.logger.log(log);
    return result;
  }

  /** Mails the admins in the background (throttled per fingerprint; the reporter never rejects). */
  private reportToAdmins(result: MailSendResult, messageId: string | undefined): void {
    const outcome = result.status === 'duplicate' ? result.ledgerStatus : result.status;
    const cause = errorName(result.error);
    const message =
      outcome === 'unknown'
        ? `email acknowledged as unknown: SES may have accepted it (${cause}); an operator decides whether to resend`
        : `email acknowledged as failed: SES refused it (${cause}); resend it deliberately once the cause is fixed`;
    void this.reporter.reportWorkerFailure(new EmailLeftToOperatorError(message, result.idempotencyKey), {
      handler: 'EmailDeliveryService.deliver',
      queue: EMAIL_CONSUMER,
      messageId,
      idempotencyKey: result.idempotencyKey,
      ledgerStatus: result.ledgerStatus,
      sesError: result.error,
      adminApi: `GET /admin/mail?status=${outcome}`,
    });
  }
}
