import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { addressKey } from './address/mail-address';
import { type PreparedMail, prepareMail } from './headers/mail-message.builder';
import { type DispatchRow, MailDispatcher, type SlotReservation } from './ledger/mail.dispatcher';
import type { StoredMailMessage } from './ledger/mail-ledger.entity';
import { type LedgerRow, MailLedgerRepository } from './ledger/mail-ledger.repository';
import { MAIL_OPTIONS, type ResolvedMailOptions } from './mail.options';
import type { MailSendResult, SendMailInput, SendMailOptions } from './mail.types';
import { MailSuppressionService } from './suppression/mail-suppression.service';

/**
 * Sends email at most once per idempotency key. The key's ledger row is inserted before SES is
 * called; a second send with the same key returns the first one's result (`duplicate`) and never
 * reaches SES, whether the first has finished or is still in flight.
 */
@Injectable()
export class MailService {
  private readonly logger = new Logger(MailService.name);

  constructor(
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
    private readonly repository: MailLedgerRepository,
    private readonly suppressions: MailSuppressionService,
    private readonly dispatcher: MailDispatcher,
  ) {}

  /**
   * Sends `input` unless its key was used before (see {@link SendMailOptions.takeOverUnsent} for a
   * first send that never reached SES, {@link SendMailOptions.likelyNew} for the two-commit path).
   * @throws MailValidationError when the input can never be sent (nothing is recorded).
   * @returns `sent`; `duplicate` (see `ledgerStatus`, `inFlight`); `suppressed`; `failed` (SES refused;
   * `retryable` when a deliberate resend is safe); `unknown` (SES may have accepted it).
   */
  async send(input: SendMailInput, options: SendMailOptions = {}): Promise<MailSendResult> {
    const mail = prepareMail(input, this.options.defaultFrom);
    const message: StoredMailMessage = {
      to: mail.to,
      from: mail.from,
      subject: mail.subject,
      text: mail.text,
      html: mail.html,
      headers: mail.headers,
    };
    if (!options.likelyNew) return this.claimThenDeliver(mail, message, options);
    const reserved = await this.dispatcher.reserve(mail.idempotencyKey, mail.to);
    if ('slot' in reserved) {
      // The usual first send: one statement checks the suppression list and inserts the row
      // already stamped, so the email costs two commits (this and its outcome).
      const claimToken = randomUUID();
      const deadlineAt = this.dispatcher.deadlineFromNow();
      const stamp = await this.repository
        .claimAndStamp({
          idempotencyKey: mail.idempotencyKey,
          recipients: mail.recipientKeys,
          message,
          contentHash: mail.contentHash,
          claimToken,
        })
        .catch((error: unknown) => {
          this.logger.warn({
            msg: 'could not claim and stamp in one statement; claiming, then stamping',
            idempotencyKey: mail.idempotencyKey,
            error: (error as Error).message,
          });
          return undefined;
        });
      const row = { idempotency_key: mail.idempotencyKey, claim_token: claimToken, attempts: 1, message };
      if (stamp?.status === 'suppressed') return this.allSuppressed(row, stamp.suppressed);
      if (stamp?.status === 'stamped') {
        return this.settle(
          row,
          await this.dispatcher.deliver(row, mail.to, [], reserved, { stamp, deadlineAt }),
        );
      }
      if (stamp === undefined) {
        // The statement may have committed before its answer was lost: a row under this token is
        // ours, SES not called yet, so it is sent from here (stamped again, suppressions re-read).
        const mine = await this.repository.find(mail.idempotencyKey).catch(() => undefined);
        if (mine?.claim_token === claimToken && mine.status === 'pending')
          return this.settle(mine, await this.dispatcher.deliver(mine, mail.to, [], reserved));
        if (mine?.claim_token === claimToken && mine.status === 'suppressed')
          return this.allSuppressed(mine, mine.message.to);
      }
    }
    return this.claimThenDeliver(mail, message, options, reserved);
  }

  /**
   * The send without `likelyNew` (or a `likelyNew` one whose key existed, whose one-statement
   * claim failed, or that got no rate slot: `reserved`): the suppression check and the claim
   * apart, then the answer for a duplicate, the take-over of a send that never reached SES, or
   * the delivery (or recorded failure) of a new row.
   */
  private async claimThenDeliver(
    mail: PreparedMail,
    message: StoredMailMessage,
    options: SendMailOptions,
    reserved?: SlotReservation,
  ): Promise<MailSendResult> {
    const suppressedSet = await this.suppressions.findSuppressed(mail.recipientKeys);
    const suppressed = mail.to.filter((_, i) => suppressedSet.has(mail.recipientKeys[i]));
    const recipients = mail.to.filter((_, i) => !suppressedSet.has(mail.recipientKeys[i]));

    const claim = await this.repository.claim({
      idempotencyKey: mail.idempotencyKey,
      status: recipients.length > 0 ? 'pending' : 'suppressed',
      recipients: mail.recipientKeys,
      message,
      contentHash: mail.contentHash,
      claimToken: randomUUID(),
      suppressed,
    });
    if (!claim.inserted) {
      const unsent = claim.row.status === 'pending' && claim.row.ses_called_at === null;
      if (!options.takeOverUnsent || !unsent) return this.duplicate(claim.row, mail.contentHash);
      const taken = await this.repository.takeOverUnsent(mail.idempotencyKey, randomUUID());
      if (!taken) {
        const current = await this.repository.find(mail.idempotencyKey);
        return this.duplicate(current ?? claim.row, mail.contentHash);
      }
      this.logger.warn({
        msg: 'taking over a send whose first sender stopped before calling SES',
        idempotencyKey: mail.idempotencyKey,
        attempt: taken.attempts,
      });
      // The stored message's recipients may not be this call's: its slot is reserved for them.
      return this.deliverStored(taken);
    }

    if (recipients.length === 0) return this.allSuppressed(claim.row, suppressed);
    return this.settle(claim.row, await this.dispatcher.deliver(claim.row, recipients, suppressed, reserved));
  }

  private allSuppressed(row: DispatchRow, suppressed: string[]): MailSendResult {
    this.logger.log({ msg: 'mail suppressed', idempotencyKey: row.idempotency_key });
    return this.suppressedResult(row, suppressed);
  }

  private suppressedResult(row: DispatchRow, suppressed: string[]): MailSendResult {
    return {
      status: 'suppressed',
      idempotencyKey: row.idempotency_key,
      ledgerStatus: 'suppressed',
      suppressedRecipients: suppressed,
      attempts: row.attempts,
    };
  }

  /** Sends a row's stored message (what its key was first sent with), minus recipients suppressed since. */
  private async deliverStored(row: LedgerRow): Promise<MailSendResult> {
    const suppressedSet = await this.suppressions.findSuppressed(row.message.to);
    const suppressed = row.message.to.filter((address) => suppressedSet.has(addressKey(address)));
    const recipients = row.message.to.filter((address) => !suppressedSet.has(addressKey(address)));
    if (recipients.length === 0) {
      await this.repository.complete(row.idempotency_key, row.claim_token, {
        status: 'suppressed',
        suppressed,
      });
      return this.suppressedResult(row, suppressed);
    }
    return this.settle(row, await this.dispatcher.deliver(row, recipients, suppressed));
  }

  /**
   * A hard bounce or complaint recorded while this send waited for its slot suppresses the row
   * before SES is called (see `SesFeedbackService`); the dispatcher then sees its row taken. To
   * the caller that is this send's own outcome, `suppressed`, not a duplicate.
   */
  private settle(row: DispatchRow, result: MailSendResult): MailSendResult {
    if (result.status !== 'duplicate' || result.ledgerStatus !== 'suppressed') return result;
    this.logger.log({ msg: 'mail suppressed before SES was called', idempotencyKey: row.idempotency_key });
    return {
      status: 'suppressed',
      idempotencyKey: row.idempotency_key,
      ledgerStatus: 'suppressed',
      suppressedRecipients: row.message.to,
      attempts: result.attempts,
    };
  }

  private duplicate(row: LedgerRow, contentHash: string): MailSendResult {
    const contentMismatch = row.content_hash !== contentHash;
    const inFlight = row.effective_status === 'pending';
    if (contentMismatch) {
      this.logger.warn({
        msg: 'idempotency key reused for different content; not sent',
        idempotencyKey: row.idempotency_key,
      });
    }
    return {
      status: 'duplicate',
      idempotencyKey: row.idempotency_key,
      ledgerStatus: row.effective_status,
      sesMessageId: row.ses_message_id ?? undefined,
      error: row.error ?? undefined,
      retryable: row.retryable ?? undefined,
      inFlight: inFlight || undefined,
      retryAfterMs: inFlight ? (row.pending_for_ms ?? undefined) : undefined,
      contentMismatch: contentMismatch || undefined,
      attempts: row.attempts,
    };
  }
}
