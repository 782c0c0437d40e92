import { Inject, Injectable, Logger } from '@nestjs/common';
import { MailLedgerService, MailSendResult, MailService } from '@once/mail';
import { APP_CONFIG, type DedupEnv, type SendEmailMessage } from '@once/platform';

/** Thrown to leave a message on the queue: SQS redelivers it after its visibility timeout. */
export class RetryLaterError extends Error {
  constructor(
    message: string,
    readonly idempotencyKey: string,
    /** When the answer can change (the first send's in-flight window ends); unset: the queue's own timeout. */
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'RetryLaterError';
  }
}

/**
 * Sends a queued email through the mail ledger, so a redelivered or duplicated message never
 * reaches SES twice, and decides what the SQS message becomes:
 * - sent, duplicate of a sent email, suppressed: acknowledged;
 * - the first send still in flight elsewhere, or SES certainly did not take it (retryable):
 *   left on the queue for redelivery (`maxReceiveCount` bounds it, then the DLQ);
 * - failed for good or `unknown` (SES may have accepted it): acknowledged and left to an operator
 *   in the ledger's admin API, never resent blindly.
 *
 * With @Idempotent on, this runs only while the worker holds the message's key, so whoever left
 * the key's row pending without calling SES is gone: the row is taken over and sent at once.
 */
@Injectable()
export class EmailDeliveryService {
  private readonly logger = new Logger(EmailDeliveryService.name);

  constructor(
    private readonly mail: MailService,
    private readonly ledger: MailLedgerService,
    @Inject(APP_CONFIG) private readonly config: DedupEnv,
  ) {}

  async deliver(email: SendEmailMessage, messageId: string | undefined): Promise<MailSendResult> {
    const fields = { idempotencyKey: email.eventId, messageId };
    let result = await this.mail.send(
      {
        idempotencyKey: email.eventId,
        to: email.to,
        subject: email.subject,
        text: email.text,
        listUnsubscribe: {
          mailto: `mailto:unsubscribe@once.local?subject=unsubscribe%20${email.userId ?? email.to}`,
        },
      },
      { takeOverUnsent: this.config.DEDUP_ENABLED },
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
    if (result.status === 'failed' || result.status === 'unknown' || result.ledgerStatus === 'unknown') {
      this.logger.error({
        ...log,
        msg: `${log.msg}; left to an operator (GET /admin/mail?status=${result.ledgerStatus})`,
        err: result.error,
      });
    } else this.logger.log(log);
    return result;
  }
}
