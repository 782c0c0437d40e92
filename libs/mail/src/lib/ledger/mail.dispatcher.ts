import { setTimeout as sleep } from 'node:timers/promises';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { MAIL_OPTIONS, type ResolvedMailOptions } from '../mail.options';
import type { MailSendResult } from '../mail.types';
import { MailRateLimiter, type RateReservation } from '../rate-limit/mail-rate.limiter';
import { classifySesError, describeSesError, isRetryableSesErrorKind } from '../ses/ses-error.classifier';
import { SesTransport } from '../ses/ses.transport';
import {
  type LedgerOutcome,
  type LedgerRow,
  MailLedgerRepository,
  type SesCallStamp,
} from './mail-ledger.repository';

/** What the dispatcher needs of a ledger row: the attempt it sends and what to send. */
export type DispatchRow = Pick<LedgerRow, 'idempotency_key' | 'claim_token' | 'attempts' | 'message'>;

/** A rate-limit slot held for a send, or why there is none (SES certainly not called). */
export type SlotReservation = { readonly slot: RateReservation } | { readonly error: string };

/**
 * The least of its deadline an SES call must have left after the stamp (half of it); the stamp's
 * own budget is the other half (see `MailLedgerRepository.markSesCall`).
 */
export function minSesCallMs(options: Pick<ResolvedMailOptions, 'sesRequestTimeoutMs'>): number {
  return Math.ceil(options.sesRequestTimeoutMs / 2);
}

/**
 * Delivers a claimed ledger row: waits for a rate-limit slot, stamps the row right before each SES
 * call (only while it still holds the row's claim token, re-checking the suppression list: each
 * call goes only to recipients not suppressed when it was stamped), calls SES under a hard deadline
 * (retrying only throttling, which SES certainly refused) if at least half of it is left after the
 * stamp, and records the outcome (see `SesErrorKind`; a call that hit its deadline is `unknown`,
 * and becomes `sent` if SES's answer still arrives later). Internal to the module.
 */
@Injectable()
export class MailDispatcher {
  private readonly logger = new Logger(MailDispatcher.name);

  constructor(
    @Inject(MAIL_OPTIONS) private readonly options: ResolvedMailOptions,
    private readonly repository: MailLedgerRepository,
    private readonly limiter: MailRateLimiter,
    private readonly transport: SesTransport,
  ) {}

  /**
   * Waits for a rate-limit slot for `recipients`; when none can be had (rate limited past
   * `maxWaitMs`, or the limiter is down) the error, logged: SES certainly was not called.
   */
  async reserve(idempotencyKey: string, recipients: readonly string[]): Promise<SlotReservation> {
    let slot: RateReservation;
    try {
      slot = await this.limiter.acquire(recipients);
    } catch (error) {
      const description = `rate limiter unavailable: ${(error as Error).message}`;
      this.logger.error({
        msg: 'mail not sent: rate limiter unavailable',
        idempotencyKey,
        error: description,
      });
      return { error: description };
    }
    if (!slot.granted) {
      const error = `rate limit: no send slot within ${this.options.rateLimit.maxWaitMs} ms (needed ${slot.waitMs} ms)`;
      this.logger.warn({ msg: 'mail not sent: rate limited', idempotencyKey, waitMs: slot.waitMs });
      return { error };
    }
    return { slot };
  }

  /** When an SES call that starts its deadline now must end; it starts before the stamp. */
  deadlineFromNow(): number {
    return Date.now() + this.options.sesRequestTimeoutMs;
  }

  /**
   * `recipients`: the row's addresses minus suppressed ones (never empty). `reserved`: a slot
   * reserved already (or the reason there is none); else one is reserved here. `first`: the first
   * call's stamp when the row was inserted stamped (`MailLedgerRepository.claimAndStamp`), with the
   * deadline taken before it.
   */
  async deliver(
    row: DispatchRow,
    recipients: string[],
    suppressed: string[],
    reserved?: SlotReservation,
    first?: { readonly stamp: SesCallStamp; readonly deadlineAt: number },
  ): Promise<MailSendResult> {
    const idempotencyKey = row.idempotency_key;
    let base: Pick<MailSendResult, 'idempotencyKey' | 'attempts' | 'suppressedRecipients'> = {
      idempotencyKey,
      attempts: row.attempts,
      suppressedRecipients: suppressed.length > 0 ? suppressed : undefined,
    };

    const reservation = reserved ?? (await this.reserve(idempotencyKey, recipients));
    if ('error' in reservation) {
      return this.finish(row, base, { status: 'failed', error: reservation.error, retryable: true });
    }
    const { slot } = reservation;

    const { maxAttempts, baseDelayMs, maxDelayMs } = this.options.throttleRetry;
    let to = recipients;
    for (let attempt = 1; ; attempt++) {
      // The deadline starts before the stamp, so the call ends (aborted at the latest) no later than
      // `ses_called_at` + the request timeout, and the stale window (longer) never sees it open.
      const stamped = attempt === 1 ? first : undefined;
      const deadlineAt = stamped?.deadlineAt ?? this.deadlineFromNow();
      let stamp: SesCallStamp;
      try {
        stamp = stamped?.stamp ?? (await this.repository.markSesCall(idempotencyKey, row.claim_token, to));
      } catch (error) {
        const description = `could not stamp the SES call: ${(error as Error).message}`;
        this.logger.error({ msg: 'mail not sent: ledger unavailable', idempotencyKey, error: description });
        return this.finish(row, base, { status: 'failed', error: description, retryable: true });
      }
      if (stamp.status === 'not-owned') return this.takenOver(row, base);
      if (stamp.suppressed.length > 0) {
        base = { ...base, suppressedRecipients: [...(base.suppressedRecipients ?? []), ...stamp.suppressed] };
        this.logger.log({
          msg: 'recipients suppressed while the mail waited to be sent; left out',
          idempotencyKey,
          suppressedCount: stamp.suppressed.length,
          remaining: stamp.status === 'stamped' ? stamp.recipients.length : 0,
        });
      }
      if (stamp.status === 'suppressed') return this.suppressed(row, base);
      to = stamp.recipients;
      const sent = { ...base, slotAt: slot.slotAt };
      const deadlineMs = deadlineAt - Date.now();
      // A call with only a sliver of its deadline left would most likely be aborted, and so be unknown.
      if (deadlineMs < minSesCallMs(this.options)) {
        const error = `the ledger stamp left ${Math.max(0, deadlineMs)} ms of the ${this.options.sesRequestTimeoutMs} ms SES deadline (less than half); SES was not called`;
        this.logger.error({
          msg: 'mail not sent: too little time left for the SES call',
          idempotencyKey,
          error,
        });
        return this.finish(row, sent, { status: 'failed', error, retryable: true, sesNotCalled: true });
      }
      // A client that ignores the abort may still get SES's answer after the deadline (only then is
      // the call ambiguous): it is recorded once the `unknown` is, so the late `sent` comes after it.
      let unknownRecorded!: () => void;
      const recorded = new Promise<void>((resolve) => (unknownRecorded = resolve));
      const onLateAnswer = (sesMessageId: string) => void this.recordLateSent(row, recorded, sesMessageId);
      try {
        const sesMessageId = await this.transport.send({ ...row.message, to }, deadlineMs, onLateAnswer);
        this.logger.log({ msg: 'mail sent', idempotencyKey, sesMessageId, attempt: row.attempts });
        return this.finish(row, sent, { status: 'sent', sesMessageId });
      } catch (error) {
        const kind = classifySesError(error);
        const description = describeSesError(error);
        if (kind === 'throttled' && attempt < maxAttempts) {
          const cap = Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
          const delayMs = Math.round(cap / 2 + Math.random() * (cap / 2));
          this.logger.warn({
            msg: 'SES throttled; backing off',
            idempotencyKey,
            attempt,
            delayMs,
            error: description,
          });
          await sleep(delayMs);
          continue;
        }
        if (kind === 'ambiguous') {
          this.logger.error({
            msg: 'mail outcome unknown: SES may have accepted it',
            idempotencyKey,
            error: description,
          });
          const result = await this.finish(row, sent, { status: 'unknown', error: description });
          unknownRecorded();
          return result;
        }
        // Throttled out, SES unreachable or an account-level refusal: SES certainly did not take
        // it, and only the caller (e.g. a queue redelivery) retries it, later. Rejected: final.
        const retryable = isRetryableSesErrorKind(kind);
        this.logger.error({ msg: 'mail failed', idempotencyKey, error: description, kind, retryable });
        return this.finish(row, sent, { status: 'failed', error: description, retryable });
      }
    }
  }

  /** Every recipient was suppressed before SES was called; the row records it. */
  private suppressed(
    row: DispatchRow,
    base: Pick<MailSendResult, 'idempotencyKey' | 'attempts' | 'suppressedRecipients'>,
  ): MailSendResult {
    this.logger.log({ msg: 'mail suppressed before SES was called', idempotencyKey: row.idempotency_key });
    return {
      ...base,
      status: 'suppressed',
      ledgerStatus: 'suppressed',
      suppressedRecipients: base.suppressedRecipients ?? row.message.to,
    };
  }

  /**
   * The attempt lost the row before it called SES: another sender took it over (nothing was sent
   * here), or a suppression of every recipient stopped this very attempt (`suppressed`).
   */
  private async takenOver(
    row: DispatchRow,
    base: Pick<MailSendResult, 'idempotencyKey' | 'attempts' | 'suppressedRecipients'>,
  ): Promise<MailSendResult> {
    const current = await this.repository.find(row.idempotency_key);
    if (current?.status === 'suppressed' && current.claim_token === row.claim_token) {
      return this.suppressed(row, { ...base, suppressedRecipients: row.message.to });
    }
    this.logger.warn({
      msg: 'mail not sent: the row was taken over before this sender called SES',
      idempotencyKey: row.idempotency_key,
      ledgerStatus: current?.effective_status,
    });
    const inFlight = !current || current.effective_status === 'pending';
    return {
      ...base,
      status: 'duplicate',
      ledgerStatus: current?.effective_status ?? 'pending',
      sesMessageId: current?.ses_message_id ?? undefined,
      inFlight: inFlight || undefined,
      retryAfterMs: inFlight ? (current?.pending_for_ms ?? undefined) : undefined,
      attempts: current?.attempts ?? row.attempts,
    };
  }

  /** SES answered after the deadline with a MessageId: the email was accepted (see `recordLateSent`). */
  private async recordLateSent(
    row: DispatchRow,
    recorded: Promise<void>,
    sesMessageId: string,
  ): Promise<void> {
    const idempotencyKey = row.idempotency_key;
    await recorded;
    try {
      const settled = await this.repository.recordLateSent(idempotencyKey, row.claim_token, sesMessageId);
      this.logger.warn({
        msg: settled
          ? 'SES accepted the mail after its deadline; the row is now sent'
          : 'SES accepted the mail after its deadline, but a resend took the row over; kept in its history',
        idempotencyKey,
        sesMessageId,
        attempt: row.attempts,
      });
    } catch (error) {
      this.logger.error({
        msg: 'could not record the late SES answer; the row stays unknown',
        idempotencyKey,
        sesMessageId,
        error: (error as Error).message,
      });
    }
  }

  private async finish(
    row: DispatchRow,
    base: Pick<MailSendResult, 'idempotencyKey' | 'attempts' | 'suppressedRecipients' | 'slotAt'>,
    outcome: Exclude<LedgerOutcome, { status: 'suppressed' }>,
  ): Promise<MailSendResult> {
    const recorded = await this.record(row, outcome);
    const ledgerStatus = recorded ? outcome.status : 'pending';
    switch (outcome.status) {
      case 'sent':
        return { ...base, status: 'sent', ledgerStatus, sesMessageId: outcome.sesMessageId };
      case 'failed':
        return {
          ...base,
          status: 'failed',
          ledgerStatus,
          error: outcome.error,
          retryable: outcome.retryable,
        };
      case 'unknown':
        return { ...base, status: 'unknown', ledgerStatus, error: outcome.error };
    }
  }

  /**
   * Records an outcome; false when it could not be recorded as the row's state (taken over by a
   * resend, or the database failed). The row then stays as it was, which reads as `unknown` later.
   */
  private async record(row: DispatchRow, outcome: LedgerOutcome): Promise<boolean> {
    try {
      const owned = await this.repository.complete(row.idempotency_key, row.claim_token, outcome);
      if (!owned) {
        this.logger.error({
          msg: 'mail ledger row was taken over by a resend; outcome kept in its history only',
          idempotencyKey: row.idempotency_key,
          outcome: outcome.status,
          sesMessageId: outcome.status === 'sent' ? outcome.sesMessageId : undefined,
        });
      }
      return owned;
    } catch (error) {
      this.logger.error({
        msg: 'could not record mail outcome; the row stays pending and will read as unknown',
        idempotencyKey: row.idempotency_key,
        outcome: outcome.status,
        sesMessageId: outcome.status === 'sent' ? outcome.sesMessageId : undefined,
        error: (error as Error).message,
      });
      return false;
    }
  }
}
